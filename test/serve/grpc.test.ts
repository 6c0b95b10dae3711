/**
 * The Open Inference Protocol over gRPC, next to REST on the same server: a client built from
 * the same .proto (and Python's grpcio, where Debian's is installed) gets what REST gives, and
 * so does a client that knows only the address and asks server reflection for the rest.
 */
import { execFile, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import * as grpc from '@grpc/grpc-js';
import descriptor, { type IDescriptorProto, type IFileDescriptorProto } from 'protobufjs/ext/descriptor/index.js';
import { describe, expect, it, vi } from 'vitest';
import { ALL_TYPES, deepMlp, randomFloats, writeModel } from '../../fixtures/models.js';
import { decodeModelInfer } from '../../src/serve/grpc/codec.js';
import { PROTO_FILE } from '../../src/serve/grpc/proto.js';
import { SERVICE_METHODS, grpcClient, healthClient, reflect, reflectedServices, statusOf } from '../helpers/grpc.js';
import { makeRegistry, type TestRegistry } from '../helpers/registry.js';
import { runCli } from '../helpers/run-cli.js';
import { type ServeOverrides, serveRegistry } from '../helpers/serve.js';
import { DATATYPE, SAMPLES, binaryOf } from '../helpers/tensors.js';

const execFileAsync = promisify(execFile);

const FIXTURE_MODELS = [['mlp.onnx', 'mlp'], ['mlp_external.onnx', 'external'], ['multi_io.onnx', 'ranker'], ['all_types.onnx', 'types']] as const;

async function fixtures(): Promise<TestRegistry> {
  const reg = await makeRegistry();
  for (const [file, name] of FIXTURE_MODELS) {
    if (file === 'mlp_external.onnx') reg.fixture('mlp_external.onnx.data');
    const r = await reg.cli('register', reg.fixture(file), '--name', name);
    expect(r.exitCode, r.stderr).toBe(0);
  }
  await reg.cli('tag', 'mlp@1', 'prod');
  return reg;
}

async function served(overrides: ServeOverrides = {}, reg?: TestRegistry) {
  const server = await serveRegistry(reg ?? (await fixtures()), { grpcPort: 0, ...overrides });
  expect(server.grpc?.address).toMatch(/^127\.0\.0\.1:\d+$/);
  return { server, client: grpcClient(server.grpc!.address) };
}

/** A request for each fixture model, as REST JSON (with binary outputs) and as the same tensors raw for gRPC. */
const REQUESTS: Record<string, { name: string; datatype: string; shape: number[]; data: unknown[]; raw: Buffer }[]> = {
  mlp: [{ name: 'input', datatype: 'FP32', shape: [2, 4], data: [1, 2, 3, 4, -1, 0.5, 0.25, 8], raw: Buffer.from(Float32Array.from([1, 2, 3, 4, -1, 0.5, 0.25, 8]).buffer) }],
  external: [{ name: 'input', datatype: 'FP32', shape: [1, 4], data: [0.1, 0.2, 0.3, 0.4], raw: Buffer.from(Float32Array.from([0.1, 0.2, 0.3, 0.4]).buffer) }],
  ranker: [
    { name: 'features', datatype: 'FP32', shape: [2, 3], data: [1, -1, 0, 2, 0.5, -0.5], raw: Buffer.from(Float32Array.from([1, -1, 0, 2, 0.5, -0.5]).buffer) },
    { name: 'ids', datatype: 'INT64', shape: [2], data: [7, -3], raw: Buffer.from(BigInt64Array.from([7n, -3n]).buffer) },
  ],
  types: ALL_TYPES.map(([t]) => ({ name: `x_${t}`, datatype: DATATYPE[t]!, shape: [2, 2], data: SAMPLES[t]!.json, raw: binaryOf(t) })),
};

/** REST's binary answer, split into its outputs' bytes. */
function restOutputs(post: { json: any; raw: Buffer; headers: Headers }): Record<string, { datatype: string; shape: number[]; bytes: Buffer }> {
  let offset = Number(post.headers.get('inference-header-content-length'));
  const out: Record<string, { datatype: string; shape: number[]; bytes: Buffer }> = {};
  for (const o of post.json.outputs) {
    out[o.name] = { datatype: o.datatype, shape: o.shape, bytes: post.raw.subarray(offset, offset + o.parameters.binary_data_size) };
    offset += o.parameters.binary_data_size;
  }
  return out;
}

function rawRequest(model: string, version = '') {
  const inputs = REQUESTS[model]!;
  return { model_name: model, model_version: version, id: `${model}-1`, inputs: inputs.map(({ name, datatype, shape }) => ({ name, datatype, shape })), raw_input_contents: inputs.map((i) => i.raw) };
}

describe('gRPC (Open Inference Protocol)', () => {
  it('answers ServerLive, ServerReady, ServerMetadata, ModelReady and ModelMetadata as REST does', async () => {
    const { server, client } = await served();
    expect(await client.call('ServerLive', {})).toEqual({ live: true });
    expect(await client.call('ServerReady', {})).toEqual({ ready: true });
    expect(await client.call('ServerMetadata', {})).toEqual({ name: 'maas', version: 'test', extensions: ['binary_tensor_data', 'model_configuration', 'model_repository', 'statistics'] });
    expect(await client.call('ModelReady', { name: 'mlp', version: 'prod' })).toEqual({ ready: true });
    for (const [, name] of FIXTURE_MODELS) {
      const meta = await client.call('ModelMetadata', { name, version: '' });
      const rest = (await server.get(`/v2/models/${name}`)).json;
      expect({ ...meta, inputs: meta.inputs.map((t: any) => ({ ...t, shape: t.shape.map(Number) })), outputs: meta.outputs.map((t: any) => ({ ...t, shape: t.shape.map(Number) })) }).toEqual(rest);
    }
  });

  it('ModelInfer equals REST infer on every fixture model and every datatype, BYTES and FP16 included', async () => {
    const { server, client } = await served();
    for (const [, model] of FIXTURE_MODELS) {
      const inputs = REQUESTS[model]!;
      // REST with the binary tensor extension both ways (FP16 has no JSON form), so bytes compare to bytes.
      const chunks = inputs.map((i) => i.raw);
      const header = Buffer.from(JSON.stringify({ id: `${model}-1`, inputs: inputs.map(({ name, datatype, shape }, i) => ({ name, datatype, shape, parameters: { binary_data_size: chunks[i]!.length } })), parameters: { binary_data_output: true } }));
      const binary = await server.post(`/v2/models/${model}/infer`, Buffer.concat([header, ...chunks]), { 'inference-header-content-length': String(header.length) });
      expect(binary.status, JSON.stringify(binary.json)).toBe(200);
      const expected = restOutputs(binary);
      const answer = await client.call('ModelInfer', rawRequest(model));
      expect(answer.model_name).toBe(model);
      expect(answer.model_version).toBe('1');
      expect(answer.id).toBe(`${model}-1`);
      expect(answer.outputs.map((o: any) => o.name)).toEqual(Object.keys(expected));
      answer.outputs.forEach((o: any, i: number) => {
        const want = expected[o.name]!;
        expect({ datatype: o.datatype, shape: o.shape.map(Number), bytes: Buffer.from(answer.raw_output_contents[i]) }, `${model}/${o.name}`).toEqual(want);
      });
    }
  });

  it('takes typed contents for every datatype that has a field, and FP16 only raw', async () => {
    const { client } = await served();
    const answer = await client.call('ModelInfer', {
      model_name: 'ranker',
      inputs: [
        { name: 'features', datatype: 'FP32', shape: [2, 3], contents: { fp32_contents: [1, -1, 0, 2, 0.5, -0.5] } },
        { name: 'ids', datatype: 'INT64', shape: [2], contents: { int64_contents: ['7', '-3'] } },
      ],
      outputs: [{ name: 'ids_doubled' }],
    });
    expect(answer.outputs).toEqual([{ name: 'ids_doubled', datatype: 'INT64', shape: ['2'], parameters: {}, contents: null }]);
    expect(Array.from(new BigInt64Array(Uint8Array.from(answer.raw_output_contents[0]).buffer))).toEqual([14n, -6n]);
    // Every typed field decodes to the bytes raw contents carry.
    const signature = { inputs: ALL_TYPES.map(([t]) => ({ name: `x_${t}`, dtype: t, shape: [2, 2] })), outputs: [] };
    const FIELDS: Record<string, string> = { bool: 'bool_contents', int64: 'int64_contents', uint64: 'uint64_contents', float32: 'fp32_contents', float64: 'fp64_contents', string: 'bytes_contents', int8: 'int_contents', int16: 'int_contents', int32: 'int_contents', uint8: 'uint_contents', uint16: 'uint_contents', uint32: 'uint_contents' };
    for (const [t] of ALL_TYPES.filter(([t]) => t !== 'float16')) {
      const values = SAMPLES[t]!.json.map((v) => (t === 'int64' || t === 'uint64' ? String(v) : t === 'string' ? Buffer.from(v as string) : v));
      const typed = decodeModelInfer({ model_name: 'types', model_version: '', id: '', inputs: [{ name: `x_${t}`, datatype: DATATYPE[t]!, shape: ['2', '2'], contents: { [FIELDS[t]!]: values } }], outputs: [], raw_input_contents: [] }, { ...signature, inputs: signature.inputs.filter((i) => i.name === `x_${t}`) } as never);
      const raw = decodeModelInfer({ model_name: 'types', model_version: '', id: '', inputs: [{ name: `x_${t}`, datatype: DATATYPE[t]!, shape: ['2', '2'] }], outputs: [], raw_input_contents: [binaryOf(t)] }, { ...signature, inputs: signature.inputs.filter((i) => i.name === `x_${t}`) } as never);
      expect(typed.feeds, t).toEqual(raw.feeds);
    }
    const fp16 = await statusOf(client.call('ModelInfer', { model_name: 'types', inputs: ALL_TYPES.map(([t]) => ({ name: `x_${t}`, datatype: DATATYPE[t], shape: [2, 2], contents: {} })) }));
    expect(fp16).toBe('INVALID_ARGUMENT');
    // Protobuf floats carry NaN and ±Infinity (JSON cannot): typed contents take them as raw contents do.
    for (const [t, field] of [['float32', 'fp32_contents'], ['float64', 'fp64_contents']] as const) {
      const special = [NaN, Infinity, -Infinity, 1.5];
      const typed = decodeModelInfer({ model_name: 'types', model_version: '', id: '', inputs: [{ name: `x_${t}`, datatype: DATATYPE[t]!, shape: ['2', '2'], contents: { [field]: special } }], outputs: [], raw_input_contents: [] }, { ...signature, inputs: signature.inputs.filter((i) => i.name === `x_${t}`) } as never);
      expect(Array.from(typed.feeds[`x_${t}`]!.data as Float32Array), t).toEqual(special);
    }
    const inf = await client.call('ModelInfer', { model_name: 'mlp', inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 4], contents: { fp32_contents: [1, 2, 3, Infinity] } }] });
    expect(inf.outputs[0].shape).toEqual(['1', '3']);
  });

  it('maps errors to the statuses a Triton client expects', async () => {
    const { client } = await served();
    const cases: [string, unknown][] = [
      ['NOT_FOUND', { ...rawRequest('mlp'), model_name: 'nope' }],
      ['NOT_FOUND', rawRequest('mlp', '9')],
      ['NOT_FOUND', rawRequest('mlp', 'staging')],
      ['INVALID_ARGUMENT', { ...rawRequest('mlp'), raw_input_contents: [Buffer.alloc(3)] }],
      ['INVALID_ARGUMENT', { ...rawRequest('mlp'), inputs: [{ name: 'input', datatype: 'FP64', shape: [2, 4] }] }],
      ['INVALID_ARGUMENT', { ...rawRequest('mlp'), inputs: [{ name: 'input', datatype: 'FP32', shape: ['-1', '4'] }] }],
      ['INVALID_ARGUMENT', { ...rawRequest('mlp'), inputs: [{ name: 'input', datatype: 'FP32', shape: ['99999999999999999999', '4'] }] }],
      ['INVALID_ARGUMENT', { model_name: 'mlp', inputs: [] }],
      ['INVALID_ARGUMENT', { ...rawRequest('mlp'), outputs: [{ name: 'nope' }] }],
      ['INVALID_ARGUMENT', { ...rawRequest('mlp'), outputs: [{ name: 'output', parameters: { classification: { int64_param: '2' } } }] }],
      ['OK', { ...rawRequest('mlp'), outputs: [{ name: 'output', parameters: { other: { bool_param: true } } }] }],
      ['INVALID_ARGUMENT', { model_name: 'mlp', inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 4], contents: { int_contents: [1, 2, 3, 4] } }] }],
      ['OK', rawRequest('mlp', 'prod')],
    ];
    for (const [status, request] of cases) expect(await statusOf(client.call('ModelInfer', request)), JSON.stringify(request).slice(0, 120)).toBe(status);
    expect(await statusOf(client.call('ModelMetadata', { name: 'nope' }))).toBe('NOT_FOUND');
    expect(await statusOf(client.call('ModelReady', { name: 'mlp', version: '7' }))).toBe('NOT_FOUND');
    // A long name is quoted in part, never cut inside a character: half an emoji made grpc-js throw and ended the process.
    const emoji = `a${'😀'.repeat(60)}`;
    for (const request of [{ name: emoji }, { name: 'mlp', version: emoji }]) {
      const refused = await client.call('ModelReady', request).catch((error: grpc.ServiceError) => error);
      expect((refused as grpc.ServiceError).code).toBe(grpc.status.NOT_FOUND);
      expect((refused as grpc.ServiceError).details).toContain(`'a${'😀'.repeat(49)}…'`);
    }
    const input = await client.call('ModelInfer', { ...rawRequest('mlp'), inputs: [{ name: 'x'.repeat(6000), datatype: 'FP32', shape: [1, 4] }] }).catch((error: grpc.ServiceError) => error);
    expect((input as grpc.ServiceError).details).toBe(`unknown input '${'x'.repeat(100)}…'; the model takes 'input'`);
    expect(await client.call('ServerLive', {})).toEqual({ live: true });
  });

  it('needs the token in the authorization metadata on every call but ServerLive', async () => {
    const { server, client } = await served({ token: 's3cret' });
    expect(await client.call('ServerLive', {})).toEqual({ live: true });
    expect(await statusOf(client.call('ServerReady', {}))).toBe('UNAUTHENTICATED');
    expect(await statusOf(client.call('ModelInfer', rawRequest('mlp')))).toBe('UNAUTHENTICATED');
    expect(await statusOf(client.call('ModelInfer', rawRequest('mlp'), { token: 'wrong' }))).toBe('UNAUTHENTICATED');
    expect(await statusOf(client.call('ModelInfer', rawRequest('mlp'), { token: 's3cret' }))).toBe('OK');
    // Refused model calls are counted before their model resolves; ServerReady is no model's.
    const metrics = (await server.get('/metrics', { authorization: 'Bearer s3cret' })).text;
    expect(metrics).toContain('maas_requests_total{model="(unknown)",version="(unknown)",protocol="grpc",code="UNAUTHENTICATED"} 2');
    expect(metrics).toContain('maas_requests_total{model="mlp",version="1",protocol="grpc",code="OK"} 1');
  });

  it('answers the gRPC health checking protocol with no token: SERVING, then NOT_SERVING as it drains, to Check and Watch', async () => {
    const { server } = await served({ token: 's3cret' });
    const health = healthClient(server.grpc!.address);
    expect(await health.check('')).toEqual({ status: 'SERVING' });
    expect(await health.check('inference.GRPCInferenceService')).toEqual({ status: 'SERVING' });
    expect(await statusOf(health.check('inference.Nope'))).toBe('NOT_FOUND');
    const seen: string[] = [];
    const unknown: string[] = [];
    const watched = health.watch('', (status) => seen.push(status));
    const watchedUnknown = health.watch('inference.Nope', (status) => unknown.push(status));
    await vi.waitFor(() => expect([seen, unknown]).toEqual([['SERVING'], ['SERVICE_UNKNOWN']]));
    // Shutdown tells each watcher, then ends its stream: the server does not wait on them.
    await server.close();
    expect(await watched).toBe('OK');
    expect(await watchedUnknown).toBe('OK');
    expect(seen).toEqual(['SERVING', 'NOT_SERVING']);
    expect(unknown).toEqual(['SERVICE_UNKNOWN']);
  });

  it('describes over reflection (v1 and v1alpha, no token needed) the services it serves, with map entries named as protoc names them', async () => {
    const { server, client } = await served({ token: 's3cret' });
    const address = server.grpc!.address;
    for (const version of ['v1', 'v1alpha'] as const) expect(await reflectedServices(address, version), version).toEqual(['inference.GRPCInferenceService', 'grpc.health.v1.Health']);
    const answer = await reflect(address, 'v1', { file_containing_symbol: 'inference.GRPCInferenceService' });
    const files: IFileDescriptorProto[] = answer.file_descriptor_response.file_descriptor_proto.map((bytes: Buffer) => descriptor.FileDescriptorProto.decode(bytes));
    expect(files.map((f) => f.name)).toEqual(['inference.proto']);
    const [service] = files[0]!.service!;
    expect(service!.method!.map((m) => m.name)).toEqual(SERVICE_METHODS);
    // grpcurl and protobuf's descriptor pools refuse a map entry not named as protoc names it: `data_map` → `DataMapEntry`.
    const mapEntries = (message: IDescriptorProto): [string, string][] => [
      ...(message.field ?? []).flatMap((field) => (message.nestedType ?? []).filter((nested) => nested.options?.mapEntry && nested.name === field.typeName).map((nested): [string, string] => [field.name!, nested.name!])),
      ...(message.nestedType ?? []).flatMap(mapEntries),
    ];
    const entries = files[0]!.messageType!.flatMap(mapEntries);
    expect(entries).toContainEqual(['parameters', 'ParametersEntry']);
    for (const [field, entry] of entries) expect(entry).toBe(`${field.replace(/(?:^|_)(.)/g, (_, c: string) => c.toUpperCase())}Entry`);
    // What reflection describes is served: each method answers (the token asked for), none is UNIMPLEMENTED.
    const statuses = await Promise.all(SERVICE_METHODS.map(async (method) => [method, await statusOf(client.call(method, {}))]));
    expect(Object.fromEntries(statuses)).toEqual(Object.fromEntries(SERVICE_METHODS.map((method) => [method, method === 'ServerLive' ? 'OK' : 'UNAUTHENTICATED'])));
  });

  it("honours the call's deadline, queues in the same batcher as REST, and counts calls with protocol=\"grpc\"", async () => {
    const reg = await makeRegistry();
    const r = await reg.cli('register', writeModel(reg.work, 'slow.onnx', deepMlp({ input: 16, hidden: 2048, layers: 8, output: 4 })), '--name', 'slow');
    expect(r.exitCode, r.stderr).toBe(0);
    const { server, client } = await served({ flags: { maxBatch: 1, maxQueue: 2 } }, reg);
    const request = (seed: number) => ({ model_name: 'slow', inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 16] }], raw_input_contents: [randomFloats(16, seed)] });
    const deadlines = await Promise.all(Array.from({ length: 3 }, (_, i) => statusOf(client.call('ModelInfer', request(i), { deadlineMs: 1 }))));
    expect(deadlines).toContain('DEADLINE_EXCEEDED');
    const flood = await Promise.all(Array.from({ length: 12 }, (_, i) => statusOf(client.call('ModelInfer', request(i)))));
    // A full queue is UNAVAILABLE, as Triton answers it ("Exceeds maximum queue size"): clients retry it.
    expect(flood).toContain('UNAVAILABLE');
    expect(flood.filter((s) => s === 'OK').length).toBeGreaterThanOrEqual(3);
    expect(flood.every((s) => s === 'OK' || s === 'UNAVAILABLE')).toBe(true);
    // Triton's statistics: a full queue's call is a failure, and only successes have compute times.
    // (A call past its deadline may not reach the server, or finish there after the client gave up.)
    const stats = (await server.get('/v2/models/slow/stats')).json.model_stats[0];
    expect(stats.inference_stats.success.count).toBeGreaterThanOrEqual(flood.filter((s) => s === 'OK').length);
    expect(stats.inference_stats.fail.count).toBeGreaterThanOrEqual(flood.filter((s) => s === 'UNAVAILABLE').length);
    for (const part of ['queue', 'compute_input', 'compute_infer', 'compute_output']) expect(stats.inference_stats[part].count, part).toBe(stats.inference_stats.success.count);
    const metrics = (await server.get('/metrics')).text;
    expect(metrics).toMatch(/maas_requests_total\{model="slow",version="1",protocol="grpc",code="OK"\} \d+/);
    expect(metrics).toMatch(/maas_requests_total\{model="slow",version="1",protocol="grpc",code="UNAVAILABLE"\} \d+/);
  });

  it('refuses a message over --max-body-mb with RESOURCE_EXHAUSTED, and turns calls away with UNAVAILABLE once it drains', async () => {
    const { server, client } = await served({ maxBodyBytes: 4096 });
    const big = { model_name: 'mlp', inputs: [{ name: 'input', datatype: 'FP32', shape: [2048, 4] }], raw_input_contents: [Buffer.alloc(2048 * 16)] };
    expect(await statusOf(client.call('ModelInfer', big))).toBe('RESOURCE_EXHAUSTED');
    expect(await statusOf(client.call('ModelInfer', rawRequest('mlp')))).toBe('OK');
    await server.close();
    expect(await statusOf(client.call('ModelInfer', rawRequest('mlp'), { deadlineMs: 2000 }))).toBe('UNAVAILABLE');
  });

  it('tells `maas predict --grpc` that a request is over the server\'s --max-body-mb (exit 2)', async () => {
    const reg = await fixtures();
    const { server } = await served({ maxBodyBytes: 4096 }, reg);
    const request = join(reg.work, 'big.json');
    writeFileSync(request, JSON.stringify({ inputs: [{ name: 'input', shape: [512, 4], datatype: 'FP32', data: new Array(2048).fill(0.5) }] }));
    const refused = await runCli(['predict', 'mlp', '--input', request, '--grpc', server.grpc!.address, '--json'], { cwd: reg.work, env: reg.env });
    expect(refused.exitCode, refused.stdout).toBe(2);
    expect(refused.json().error).toMatchObject({ code: 'MAAS_PAYLOAD_TOO_LARGE', hint: expect.stringContaining('--max-body-mb') });
  });

  it('tells `maas predict --grpc` that a version cannot fit the memory budget as REST says it, not to retry', async () => {
    const reg = await fixtures();
    const { server } = await served({ budget: { bytes: 100 } }, reg);
    const request = join(reg.work, 'one.json');
    writeFileSync(request, JSON.stringify({ inputs: [{ name: 'input', shape: [1, 4], datatype: 'FP32', data: [1, 2, 3, 4] }] }));
    const refused = await runCli(['predict', 'mlp', '--input', request, '--grpc', server.grpc!.address, '--json'], { cwd: reg.work, env: reg.env });
    expect(refused.exitCode, refused.stdout).toBe(3);
    expect(refused.json().error).toMatchObject({ code: 'MAAS_BUDGET_EXCEEDED', hint: expect.stringContaining('--memory-budget') });
    expect(refused.json().error.hint).not.toContain('retry');
  });

  it('is what `maas predict --grpc` talks to, with the same answer as predict here', async () => {
    const reg = await fixtures();
    const { server } = await served({ token: 'tok' }, reg);
    const request = join(reg.work, 'request.json');
    writeFileSync(request, JSON.stringify({ id: 'p1', inputs: [{ name: 'input', shape: [2, 4], datatype: 'FP32', data: REQUESTS.mlp![0]!.data }] }));
    const local = await reg.cli('predict', 'mlp@1', '--input', request, '--json');
    const remote = await runCli(['predict', 'mlp@prod', '--input', request, '--grpc', server.grpc!.address, '--json'], { cwd: reg.work, env: { ...reg.env, MAAS_TOKEN: 'tok' } });
    expect(remote.exitCode, remote.stderr).toBe(0);
    expect(remote.json()).toEqual(local.json());
    const denied = await runCli(['predict', 'mlp', '--input', request, '--grpc', server.grpc!.address], { cwd: reg.work, env: reg.env });
    expect(denied.exitCode).toBe(5);
    expect(denied.stderr).toContain('--token');
    const missing = await runCli(['predict', 'ghost@1', '--input', request, '--grpc', server.grpc!.address, '--token', 'tok'], { cwd: reg.work, env: reg.env });
    expect(missing.exitCode).toBe(4);
    const closed = await runCli(['predict', 'mlp', '--input', request, '--grpc', '127.0.0.1:1', '--timeout-ms', '2000'], { cwd: reg.work, env: reg.env });
    expect(closed.exitCode).toBe(5);
    // A value the client cannot encode, or an output parameter it would drop: exit 2 here, no stack trace.
    for (const body of [
      { inputs: [{ name: 'input', shape: [1, 4], datatype: 'FP32', data: [1e39, 1, 2, 3] }] },
      { inputs: [{ name: 'input', shape: [1, 4], datatype: 'FP32', data: [1, 2, 3] }] },
      { inputs: [{ name: 'input', shape: [1, 4], datatype: 'FP32', data: [1, 2, 3, 4] }], outputs: [{ name: 'output', parameters: { classification: 2 } }] },
    ]) {
      writeFileSync(request, JSON.stringify(body));
      const refused = await runCli(['predict', 'mlp', '--input', request, '--grpc', server.grpc!.address, '--token', 'tok', '--json'], { cwd: reg.work, env: reg.env });
      expect(refused.exitCode, refused.stdout + refused.stderr).toBe(2);
      expect(refused.json().error.code).toBe('MAAS_BAD_INPUT');
    }
  });

  // .ci/run installs Debian's python3-grpcio and protobuf-compiler; a plain `npm test` without them skips this.
  const python = spawnSync('/usr/bin/python3', ['-c', 'import grpc, google.protobuf'], { stdio: 'ignore' }).status === 0 && spawnSync('protoc', ['--version'], { stdio: 'ignore' }).status === 0;
  if (!python && !process.env.MAAS_REQUIRE_TOOLS) console.warn('SKIPPED: the Python grpcio client test (apt-get install python3-grpcio python3-protobuf protobuf-compiler to run it)');
  it.skipIf(!python && !process.env.MAAS_REQUIRE_TOOLS)('answers a Python grpcio client whose stubs protoc made from the same .proto', async () => {
    const reg = await fixtures();
    const { server } = await served({}, reg);
    const answer = await runPython(join(reg.work, 'py'), { protoPath: join(PROTO_FILE, '..'), protos: [PROTO_FILE] }, PYTHON_CLIENT, [server.grpc!.address]);
    const rest = await server.post('/v2/models/mlp/infer', { inputs: [{ name: 'input', shape: [1, 4], datatype: 'FP32', data: [1, 2, 3, 4] }] });
    expect(answer.ready).toBe(true);
    expect(answer.metadata).toEqual({ name: 'mlp', versions: ['1'], platform: 'onnxruntime_onnx' });
    expect(answer.outputs).toEqual([{ name: 'output', datatype: 'FP32', shape: [1, 3] }]);
    expect(answer.data).toHaveLength(3);
    answer.data.forEach((v: number, i: number) => expect(v).toBeCloseTo(rest.json.outputs[0].data[i], 6));
    expect(answer.not_found).toBe('NOT_FOUND');
  });

  // .ci/run installs Debian's grpc-proto, which has the reflection .proto files; a plain `npm test` without it skips this.
  const REFLECTION_PROTOS = '/usr/share/grpc-proto/grpc/reflection';
  const reflectionClient = python && existsSync(join(REFLECTION_PROTOS, 'v1', 'reflection.proto'));
  if (!reflectionClient && !process.env.MAAS_REQUIRE_TOOLS) console.warn('SKIPPED: the Python reflection client test (apt-get install grpc-proto python3-grpcio python3-protobuf protobuf-compiler to run it)');
  it.skipIf(!reflectionClient && !process.env.MAAS_REQUIRE_TOOLS)('answers a Python grpcio client that knows only the address and learns the rest from reflection, as grpcurl does', async () => {
    const reg = await fixtures();
    const { server } = await served({ token: 'tok' }, reg);
    // The README's grpcurl request, as JSON.
    const request = { model_name: 'mlp', inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 4], contents: { fp32_contents: [1, 2, 3, 4] } }] };
    const answer = await runPython(join(reg.work, 'reflection'), { protoPath: REFLECTION_PROTOS, protos: ['v1/reflection.proto', 'v1alpha/reflection.proto'] }, PYTHON_REFLECTION_CLIENT, [server.grpc!.address, 'tok', JSON.stringify(request)]);
    expect(answer.services).toEqual({ v1: ['inference.GRPCInferenceService', 'grpc.health.v1.Health'], v1alpha: ['inference.GRPCInferenceService', 'grpc.health.v1.Health'] });
    expect(answer.methods).toEqual(SERVICE_METHODS);
    const rest = await server.post('/v2/models/mlp/infer', { inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 4], data: [1, 2, 3, 4] }], parameters: { binary_data_output: true } }, { authorization: 'Bearer tok' });
    expect(rest.status, JSON.stringify(rest.json)).toBe(200);
    const { output } = restOutputs(rest);
    expect(answer.infer).toEqual({ model_name: 'mlp', model_version: '1', outputs: [{ name: 'output', datatype: 'FP32', shape: ['1', '3'] }], raw_output_contents: [output!.bytes.toString('base64')] });
  });

  // Debian's grpc-proto has the health checking .proto as gRPC publishes it: an independent definition of the wire.
  const HEALTH_PROTOS = '/usr/share/grpc-proto/grpc/health/v1';
  const healthProbe = python && existsSync(join(HEALTH_PROTOS, 'health.proto'));
  if (!healthProbe && !process.env.MAAS_REQUIRE_TOOLS) console.warn('SKIPPED: the Python gRPC health probe test (apt-get install grpc-proto python3-grpcio python3-protobuf protobuf-compiler to run it)');
  it.skipIf(!healthProbe && !process.env.MAAS_REQUIRE_TOOLS)("answers a health probe built from gRPC's own health.proto, as Kubernetes' gRPC probe asks", async () => {
    const reg = await fixtures();
    const { server } = await served({ token: 'tok' }, reg);
    expect(await runPython(join(reg.work, 'health'), { protoPath: HEALTH_PROTOS, protos: ['health.proto'] }, PYTHON_HEALTH_PROBE, [server.grpc!.address])).toEqual({ server: 'SERVING', inference: 'SERVING', unknown: 'NOT_FOUND' });
  });
});

/**
 * Runs `script` with Debian's python3 in the new folder `out`, beside the modules protoc makes
 * there of `protos` (under `protoPath`); what it prints, as JSON.
 */
async function runPython(out: string, { protoPath, protos }: { protoPath: string; protos: string[] }, script: string, args: string[]): Promise<any> {
  mkdirSync(out);
  const protoc = spawnSync('protoc', [`--proto_path=${protoPath}`, `--python_out=${out}`, ...protos], { encoding: 'utf8' });
  expect(protoc.status, protoc.stderr).toBe(0);
  writeFileSync(join(out, 'client.py'), script);
  // Not spawnSync: the server answers on this very event loop.
  const run = await execFileAsync('/usr/bin/python3', [join(out, 'client.py'), ...args], { cwd: out, encoding: 'utf8', timeout: 60_000 });
  return JSON.parse(run.stdout);
}

/** A health probe as grpc_health_probe makes one: Check, no metadata, messages from gRPC's health.proto. */
const PYTHON_HEALTH_PROBE = `
import json, sys
import grpc
import health_pb2 as pb

check = grpc.insecure_channel(sys.argv[1]).unary_unary('/grpc.health.v1.Health/Check', request_serializer=pb.HealthCheckRequest.SerializeToString, response_deserializer=pb.HealthCheckResponse.FromString)
def status(service):
    try:
        return pb.HealthCheckResponse.ServingStatus.Name(check(pb.HealthCheckRequest(service=service), timeout=10).status)
    except grpc.RpcError as error:
        return error.code().name
print(json.dumps({'server': status(''), 'inference': status('inference.GRPCInferenceService'), 'unknown': status('inference.Nope')}))
`;

/** The README's Python snippet, run for real: grpcio with stubs protoc generated from proto/open_inference_grpc.proto. */
const PYTHON_CLIENT = `
import json, struct, sys
import grpc
import open_inference_grpc_pb2 as pb

channel = grpc.insecure_channel(sys.argv[1])
def rpc(name, request, response):
    return channel.unary_unary('/inference.GRPCInferenceService/' + name, request_serializer=request.SerializeToString, response_deserializer=response.FromString)

ready = rpc('ServerReady', pb.ServerReadyRequest, pb.ServerReadyResponse)(pb.ServerReadyRequest()).ready
meta = rpc('ModelMetadata', pb.ModelMetadataRequest, pb.ModelMetadataResponse)(pb.ModelMetadataRequest(name='mlp'))
request = pb.ModelInferRequest(model_name='mlp')
tensor = request.inputs.add(name='input', datatype='FP32', shape=[1, 4])
request.raw_input_contents.append(struct.pack('<4f', 1, 2, 3, 4))
answer = rpc('ModelInfer', pb.ModelInferRequest, pb.ModelInferResponse)(request, timeout=30)
out = answer.outputs[0]
data = list(struct.unpack('<%df' % (len(answer.raw_output_contents[0]) // 4), answer.raw_output_contents[0]))
try:
    rpc('ModelInfer', pb.ModelInferRequest, pb.ModelInferResponse)(pb.ModelInferRequest(model_name='ghost'), timeout=30)
    not_found = 'OK'
except grpc.RpcError as e:
    not_found = e.code().name
print(json.dumps({'ready': ready, 'metadata': {'name': meta.name, 'versions': list(meta.versions), 'platform': meta.platform},
                  'outputs': [{'name': out.name, 'datatype': out.datatype, 'shape': list(out.shape)}], 'data': data, 'not_found': not_found}))
`;

/**
 * A reflection-only client, what grpcurl does without -proto: list the services (v1, then
 * v1alpha), fetch the file that declares GRPCInferenceService, build its messages from the
 * descriptors, and call ModelInfer with a request given as JSON. Reflection is asked without
 * the token; only ModelInfer carries it.
 */
const PYTHON_REFLECTION_CLIENT = `
import json, sys
import grpc
from google.protobuf import descriptor_pb2, descriptor_pool, json_format, message_factory
from v1 import reflection_pb2 as v1
from v1alpha import reflection_pb2 as v1alpha

address, token, request_json = sys.argv[1:4]
channel = grpc.insecure_channel(address)

def reflect(version, **request):
    info = channel.stream_stream('/' + version.DESCRIPTOR.services_by_name['ServerReflection'].full_name + '/ServerReflectionInfo',
                                 request_serializer=version.ServerReflectionRequest.SerializeToString,
                                 response_deserializer=version.ServerReflectionResponse.FromString)
    answer = next(info(iter([version.ServerReflectionRequest(**request)]), timeout=30))
    if answer.HasField('error_response'):
        sys.exit('reflection: %s' % answer.error_response.error_message)
    return answer

services = {name: [s.name for s in reflect(version, list_services='*').list_services_response.service] for name, version in (('v1', v1), ('v1alpha', v1alpha))}
files = [descriptor_pb2.FileDescriptorProto.FromString(f) for f in reflect(v1, file_containing_symbol='inference.GRPCInferenceService').file_descriptor_response.file_descriptor_proto]

pool = descriptor_pool.DescriptorPool()
added = set()
def add(name):  # a file after the files it imports
    if name in added: return
    added.add(name)
    proto = next(f for f in files if f.name == name)
    for dependency in proto.dependency: add(dependency)
    pool.AddSerializedFile(proto.SerializeToString())
for f in files: add(f.name)

# GetMessageClass is protobuf 4.22+; Debian 12's python3-protobuf is 4.21.
message_class = getattr(message_factory, 'GetMessageClass', None) or message_factory.MessageFactory(pool).GetPrototype
service = pool.FindServiceByName('inference.GRPCInferenceService')
method = service.methods_by_name['ModelInfer']
Request, Response = message_class(method.input_type), message_class(method.output_type)
infer = channel.unary_unary('/%s/%s' % (service.full_name, method.name), request_serializer=Request.SerializeToString, response_deserializer=Response.FromString)
answer = infer(json_format.Parse(request_json, Request()), metadata=[('authorization', 'Bearer ' + token)], timeout=30)
print(json.dumps({'services': services, 'methods': [m.name for m in service.methods],
                  'infer': json_format.MessageToDict(answer, preserving_proto_field_name=True)}))
`;
