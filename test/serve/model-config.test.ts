/**
 * Triton's model configuration extension over REST and gRPC: what perf_analyzer and
 * tritonclient's get_model_config read. Each answer is parsed by protobuf's own JSON parser
 * (Debian's protoc and python3-protobuf) into the ModelConfig of the package's .proto, written
 * from Triton's model_config.proto, which refuses a field or enum value Triton does not have.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { grpcClient, statusOf } from '../helpers/grpc.js';
import { HAVE_PROTOBUF, type ModelConfigParser, int64AsNumbers, modelConfigParser } from '../helpers/model-config.js';
import { makeRegistry } from '../helpers/registry.js';
import { serveRegistry } from '../helpers/serve.js';

const REQUIRE_TOOLS = Boolean(process.env.MAAS_REQUIRE_TOOLS);
if (!HAVE_PROTOBUF && !REQUIRE_TOOLS) {
  console.warn("SKIPPED: parsing served model configs with protobuf's JSON parser needs protoc and /usr/bin/python3 with google.protobuf (apt-get install protobuf-compiler python3-protobuf)");
}

let parser: ModelConfigParser | undefined;
beforeAll(() => {
  if (HAVE_PROTOBUF || REQUIRE_TOOLS) parser = modelConfigParser();
});
afterAll(() => parser?.dispose());

/** Each config as protobuf parsed it, 64-bit fields as numbers; fails with protobuf's message when one does not parse. */
function parsedByProtobuf(configs: unknown[], format: 'json' | 'text' = 'json'): any[] {
  return parser!.parse(format === 'json' ? configs.map((c) => JSON.stringify(c)) : (configs as string[]), format);
}

/**
 * A gRPC answer as REST writes it: proto-loader fills in every field at its default and names
 * each oneof's choice; REST leaves out what is not set.
 */
function asRest(config: unknown): unknown {
  return int64AsNumbers(JSON.parse(JSON.stringify(config), (key, v) => {
    if (v === null || v === '' || (Array.isArray(v) && v.length === 0 && key !== 'shape') || key.endsWith('_choice')) return undefined;
    return v;
  }));
}

async function served(flags: Record<string, number> = {}) {
  const reg = await makeRegistry();
  for (const [file, name] of [['mlp.onnx', 'mlp'], ['all_types.onnx', 'types'], ['multi_io.onnx', 'ranker']]) {
    const r = await reg.cli('register', reg.fixture(file!), '--name', name!);
    expect(r.exitCode, r.stderr).toBe(0);
  }
  expect((await reg.cli('register', reg.fixture('mlp.onnx'), '--name', 'mlp', '--version', '3', '--no-load-check')).exitCode).toBe(0);
  await reg.cli('tag', 'mlp@1', 'prod');
  const server = await serveRegistry(reg, { grpcPort: 0, flags: { batchDelayMs: 5, maxQueue: 64, workers: 1, ...flags } });
  return { reg, server, client: grpcClient(server.grpc!.address) };
}

describe("Triton's model configuration extension", () => {
  it("describes each served version as Triton's ModelConfig, the same over REST and gRPC", async () => {
    const { server, client } = await served();
    expect((await server.get('/v2')).json.extensions).toContain('model_configuration');
    const mlp = (await server.get('/v2/models/mlp/config')).json;
    expect(mlp).toEqual({
      name: 'mlp', platform: 'onnxruntime_onnx', backend: 'onnxruntime',
      version_policy: { specific: { versions: [1, 3] } },
      max_batch_size: 32,
      input: [{ name: 'input', data_type: 'TYPE_FP32', dims: [4] }],
      output: [{ name: 'output', data_type: 'TYPE_FP32', dims: [3] }],
      dynamic_batching: { max_queue_delay_microseconds: 5000, default_queue_policy: { max_queue_size: 64 } },
      instance_group: [{ kind: 'KIND_CPU', count: 1 }],
    });
    expect((await server.get('/v2/models/mlp/versions/prod/config')).json).toEqual(mlp);
    const types = (await server.get('/v2/models/types/config')).json;
    expect(types.input.map((i: { data_type: string }) => i.data_type)).toEqual(['TYPE_BOOL', 'TYPE_UINT8', 'TYPE_UINT16', 'TYPE_UINT32', 'TYPE_UINT64', 'TYPE_INT8', 'TYPE_INT16', 'TYPE_INT32', 'TYPE_INT64', 'TYPE_FP16', 'TYPE_FP32', 'TYPE_FP64', 'TYPE_STRING']);
    const ranker = (await server.get('/v2/models/ranker/config')).json;

    for (const [name, rest] of [['mlp', mlp], ['types', types], ['ranker', ranker]] as const) {
      expect(asRest((await client.call('ModelConfig', { name })).config), name).toEqual(rest);
    }
    if (parser) {
      // protobuf's JSON leaves out fields at their default (a reshape to [] is an empty reshape).
      const [parsedMlp, parsedTypes, parsedRanker] = parsedByProtobuf([mlp, types, ranker]);
      expect(parsedMlp).toEqual(mlp);
      expect(parsedTypes).toEqual(types);
      expect(parsedRanker.input[1]).toEqual({ name: 'ids', data_type: 'TYPE_INT64', dims: [1], reshape: {} });
    }

    // A Triton client sends what the config says: ranker's [batch] ids as [N, 1] (dims [1], reshaped to []).
    const features = [0.5, -1, 2, 1, 0, -0.5];
    const asModel = await server.post('/v2/models/ranker/infer', { inputs: [{ name: 'features', shape: [2, 3], datatype: 'FP32', data: features }, { name: 'ids', shape: [2], datatype: 'INT64', data: [3, 7] }] });
    const asConfig = await server.post('/v2/models/ranker/infer', { inputs: [{ name: 'features', shape: [2, 3], datatype: 'FP32', data: features }, { name: 'ids', shape: [2, 1], datatype: 'INT64', data: [3, 7] }] });
    expect(asConfig.status, JSON.stringify(asConfig.json)).toBe(200);
    expect(asConfig.json.outputs).toEqual(asModel.json.outputs);

    expect((await server.get('/v2/models/nope/config')).status).toBe(404);
    expect((await server.get('/v2/models/mlp/versions/2/config')).status).toBe(404);
    expect(await statusOf(client.call('ModelConfig', { name: 'nope' }))).toBe('NOT_FOUND');
  });

  it('says max_batch_size 0, with the batch dim in dims and no batching queue, when requests are not merged', async () => {
    const { server, client } = await served({ maxBatch: 1 });
    const mlp = (await server.get('/v2/models/mlp/config')).json;
    expect(mlp).toMatchObject({ max_batch_size: 0, input: [{ name: 'input', data_type: 'TYPE_FP32', dims: [-1, 4] }], output: [{ name: 'output', data_type: 'TYPE_FP32', dims: [-1, 3] }] });
    expect(mlp.dynamic_batching).toBeUndefined();
    expect(asRest((await client.call('ModelConfig', { name: 'mlp', version: '3' })).config)).toEqual(mlp);
    if (parser) expect(parsedByProtobuf([mlp])).toEqual([{ ...mlp, max_batch_size: undefined }]);
  });

  it.skipIf(!HAVE_PROTOBUF && !REQUIRE_TOOLS)("says what `maas export --format triton` writes in config.pbtxt for the same version", async () => {
    // maas.yaml's serving defaults for both: no flag on the server.
    const reg = await makeRegistry();
    expect((await reg.cli('register', reg.fixture('multi_io.onnx'), '--name', 'ranker')).exitCode).toBe(0);
    const server = await serveRegistry(reg, { flags: {} });
    const exported = await reg.cli('export', 'ranker@1', '--format', 'triton', '-o', 'triton', '--json');
    expect(exported.exitCode, exported.stderr).toBe(0);
    const [fromFile] = parsedByProtobuf([JSON.parse(exported.stdout).config], 'text') as Record<string, unknown>[];
    const [fromServer] = parsedByProtobuf([(await server.get('/v2/models/ranker/config')).json]) as Record<string, unknown>[];
    for (const field of ['name', 'platform', 'max_batch_size', 'input', 'output', 'dynamic_batching']) expect(fromServer![field], field).toEqual(fromFile![field]);
  });
});
