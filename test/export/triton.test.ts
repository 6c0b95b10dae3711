/**
 * `maas export --format triton`: the model repository Triton reads. Every config.pbtxt written
 * here, for the fixture models and every real model of the corpus, is parsed by protobuf's own
 * text-format parser (Debian's protoc and python3-protobuf) against the ModelConfig of the
 * package's proto/open_inference_grpc.proto, written from Triton's specification, and its types, dims and batching are checked;
 * the folder is compared file by file with Triton's layout; then version policies, warm-up
 * files, instance groups, external data, signatures and every refusal.
 */
import { createHash } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CORPUS_MODELS, corpusFile, corpusRequest } from '../../fixtures/corpus.js';
import { allTypes, constantWeights, convNet, mlp, multiIo, writeModel } from '../../fixtures/models.js';
import { valueInfoProto } from '../../src/onnx/build.js';
import { DataType } from '../../src/onnx/dtypes.js';
import type { Signature } from '../../src/onnx/inspect.js';
import { HAVE_PROTOBUF, type ModelConfigParser, modelConfigParser } from '../helpers/model-config.js';
import { makeRegistry, type TestRegistry } from '../helpers/registry.js';

const REQUIRE_TOOLS = Boolean(process.env.MAAS_REQUIRE_TOOLS);
if (!HAVE_PROTOBUF && !REQUIRE_TOOLS) {
  console.warn("SKIPPED: parsing config.pbtxt with protobuf's text format needs protoc and /usr/bin/python3 with google.protobuf (apt-get install protobuf-compiler python3-protobuf)");
}
const SKIP_PROTOBUF = !HAVE_PROTOBUF && !REQUIRE_TOOLS;
const HAVE_CORPUS = CORPUS_MODELS.every((m) => existsSync(corpusFile(m)));
if (!HAVE_CORPUS && !REQUIRE_TOOLS) console.warn('SKIPPED: the Triton export of the real-model corpus needs .corpus/ (run `npm run corpus`, which needs the npm registry)');

let parser: ModelConfigParser | undefined;
beforeAll(() => {
  if (!SKIP_PROTOBUF) parser = modelConfigParser();
});
afterAll(() => parser?.dispose());

/** Each config.pbtxt as Triton's ModelConfig parsed it (fields at their default are absent, as in protobuf's JSON). */
function parseConfigs(paths: string[]): any[] {
  return parser!.parse(paths.map((path) => readFileSync(path, 'utf8')), 'text');
}

/** Every file under `dir`, relative to it, sorted. */
function tree(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).map((e) => relative(dir, join(e.parentPath, e.name))).sort();
}

async function register(reg: TestRegistry, file: string, ...args: string[]): Promise<void> {
  const r = await reg.cli('register', file, ...args);
  expect(r.exitCode, r.stderr).toBe(0);
}

/** A model file called `file` in a folder of its own, so several versions keep one file name. */
function modelFile(reg: TestRegistry, folder: string, file: string, built: Parameters<typeof writeModel>[2]): string {
  const dir = join(reg.work, folder);
  mkdirSync(dir, { recursive: true });
  return writeModel(dir, file, built);
}

function setServing(reg: TestRegistry, yaml: string): void {
  const path = join(reg.dir, 'maas.yaml');
  const base = readFileSync(path, 'utf8').split('\nmodels:\n')[0]!;
  writeFileSync(path, `${base}\nmodels:\n${yaml}`);
}

async function exportTriton(reg: TestRegistry, ref: string, output: string, ...args: string[]) {
  const r = await reg.cli('export', ref, '--format', 'triton', '-o', join(reg.home, output), '--json', ...args);
  expect(r.exitCode, r.stdout + r.stderr).toBe(0);
  return r.json();
}

function warmupFile(reg: TestRegistry, requests: unknown[]): string {
  const path = join(reg.work, `warmup-${requests.length}.json`);
  writeFileSync(path, JSON.stringify(requests));
  return path;
}

const floats = (...values: number[]) => Buffer.from(Float32Array.from(values).buffer);

describe.skipIf(SKIP_PROTOBUF)('config.pbtxt, as protobuf parses it against Triton\'s model configuration', () => {
  it('mlp: one version, batching from the serving defaults, the version policy, an instance group', async () => {
    const reg = await makeRegistry();
    await register(reg, reg.fixture('mlp.onnx'), '--name', 'mlp');
    const result = await exportTriton(reg, 'mlp@1', 'repo');
    expect(result).toMatchObject({ format: 'triton', repository: join(reg.home, 'repo'), model: 'mlp', dir: join(reg.home, 'repo', 'mlp'), versions: [1], maxBatchSize: 32 });
    const text = readFileSync(join(reg.home, 'repo', 'mlp', 'config.pbtxt'), 'utf8');
    expect(text).toBe(result.config);
    expect(text).toContain('kind: KIND_AUTO');
    expect(parseConfigs([join(reg.home, 'repo', 'mlp', 'config.pbtxt')])).toEqual([{
      name: 'mlp',
      platform: 'onnxruntime_onnx',
      default_model_filename: 'mlp.onnx',
      max_batch_size: 32,
      version_policy: { specific: { versions: [1] } },
      input: [{ name: 'input', data_type: 'TYPE_FP32', dims: [4] }],
      output: [{ name: 'output', data_type: 'TYPE_FP32', dims: [3] }],
      dynamic_batching: { default_queue_policy: { max_queue_size: 1024 } },
      instance_group: [{ count: 1 }], // KIND_AUTO is the enum's zero, which protobuf's JSON leaves out
    }]);
  });

  it('every fixture: Triton data types for every ONNX element type, dims without the batch dim, scalars as [1]', async () => {
    const reg = await makeRegistry();
    await register(reg, modelFile(reg, 'multi', 'model.onnx', multiIo()), '--name', 'multi');
    await register(reg, modelFile(reg, 'types', 'all_types.onnx', allTypes()), '--name', 'types');
    await register(reg, modelFile(reg, 'conv', 'conv.onnx', convNet()), '--name', 'conv');
    await register(reg, modelFile(reg, 'branches', 'branches.onnx', constantWeights({ branches: true })), '--name', 'branches');
    for (const name of ['multi', 'types', 'conv', 'branches']) await exportTriton(reg, name, 'repo');
    const [multi, types, conv, branches] = parseConfigs(['multi', 'types', 'conv', 'branches'].map((n) => join(reg.home, 'repo', n, 'config.pbtxt')));

    // model.onnx is the name Triton loads by default: no default_model_filename
    expect(multi.default_model_filename).toBeUndefined();
    expect(multi).toMatchObject({ max_batch_size: 32 });
    // ids is [batch]: one dim of Triton's, then nothing, which Triton writes as [1] reshaped to []
    expect(multi.input).toEqual([
      { name: 'features', data_type: 'TYPE_FP32', dims: [3] },
      { name: 'ids', data_type: 'TYPE_INT64', dims: [1], reshape: {} },
    ]);
    expect(multi.output).toEqual([
      { name: 'positive', data_type: 'TYPE_BOOL', dims: [3] },
      { name: 'ids_doubled', data_type: 'TYPE_INT64', dims: [1], reshape: {} },
    ]);
    expect(readFileSync(join(reg.home, 'repo', 'multi', 'config.pbtxt'), 'utf8')).toContain('  reshape {\n    shape: []\n  }\n');

    const expectedTypes = { bool: 'BOOL', uint8: 'UINT8', uint16: 'UINT16', uint32: 'UINT32', uint64: 'UINT64', int8: 'INT8', int16: 'INT16', int32: 'INT32', int64: 'INT64', float16: 'FP16', float32: 'FP32', float64: 'FP64', string: 'STRING' };
    expect(types.input).toEqual(Object.entries(expectedTypes).map(([t, triton]) => ({ name: `x_${t}`, data_type: `TYPE_${triton}`, dims: [2] })));
    expect(types.output).toEqual(Object.entries(expectedTypes).map(([t, triton]) => ({ name: `y_${t}`, data_type: `TYPE_${triton}`, dims: [2] })));

    expect(conv).toMatchObject({ max_batch_size: 32, input: [{ name: 'input', data_type: 'TYPE_FP32', dims: [3, 16, 16] }], output: [{ name: 'output', data_type: 'TYPE_FP32', dims: [10] }] });

    // a scalar input leaves nothing to batch along: full dims, the scalar as [1] (no reshape without batching)
    expect(branches.max_batch_size).toBeUndefined();
    expect(branches.dynamic_batching).toBeUndefined();
    expect(branches.input).toEqual([{ name: 'input', data_type: 'TYPE_FP32', dims: [-1, 4] }, { name: 'flag', data_type: 'TYPE_BOOL', dims: [1] }]);
    expect(branches.output).toEqual([{ name: 'output', data_type: 'TYPE_FP32', dims: [-1, 8] }]);
  });

  it("maas.yaml's serving settings: maxBatch, batchDelayMs and maxQueue become max_batch_size and dynamic_batching; maxBatch 1 turns batching off", async () => {
    const reg = await makeRegistry();
    await register(reg, reg.fixture('mlp.onnx'), '--name', 'mlp');
    setServing(reg, '  mlp:\n    maxBatch: 16\n    batchDelayMs: 5\n    maxQueue: 100\n');
    await exportTriton(reg, 'mlp', 'batching');
    setServing(reg, '  mlp:\n    maxBatch: 1\n');
    await exportTriton(reg, 'mlp', 'single');
    const [batching, single] = parseConfigs([join(reg.home, 'batching', 'mlp', 'config.pbtxt'), join(reg.home, 'single', 'mlp', 'config.pbtxt')]);
    expect(batching).toMatchObject({ max_batch_size: 16, input: [{ dims: [4] }], dynamic_batching: { max_queue_delay_microseconds: 5000, default_queue_policy: { max_queue_size: 100 } } });
    expect(single.max_batch_size).toBeUndefined();
    expect(single.dynamic_batching).toBeUndefined();
    expect(single.input).toEqual([{ name: 'input', data_type: 'TYPE_FP32', dims: [-1, 4] }]);
    expect(single.output).toEqual([{ name: 'output', data_type: 'TYPE_FP32', dims: [-1, 3] }]);
  });

  it('instance_group from --device and --workers, else from maas.yaml', async () => {
    const reg = await makeRegistry();
    await register(reg, reg.fixture('mlp.onnx'), '--name', 'mlp');
    expect(await exportTriton(reg, 'mlp@1', 'gpu', '--device', 'cuda', '--workers', '3')).toMatchObject({ instanceGroup: { kind: 'KIND_GPU', count: 3 } });
    setServing(reg, '  mlp:\n    workers: 2\n');
    expect(await exportTriton(reg, 'mlp@1', 'cpu', '--device', 'cpu')).toMatchObject({ instanceGroup: { kind: 'KIND_CPU', count: 2 } });
    const [gpu, cpu] = parseConfigs([join(reg.home, 'gpu', 'mlp', 'config.pbtxt'), join(reg.home, 'cpu', 'mlp', 'config.pbtxt')]);
    expect(gpu.instance_group).toEqual([{ kind: 'KIND_GPU', count: 3 }]);
    expect(cpu.instance_group).toEqual([{ kind: 'KIND_CPU', count: 2 }]);
  });

  it("version_policy from the model's policy: latest:N, all, and anything else as the versions it selects", async () => {
    const reg = await makeRegistry();
    for (const seed of [1, 2, 3]) await register(reg, modelFile(reg, `v${seed}`, 'mlp.onnx', mlp({ seed })), '--name', 'mlp');
    expect((await reg.cli('tag', 'mlp@1', 'prod')).exitCode).toBe(0);
    const exported = async (policy: string | undefined, ref = 'mlp') => {
      setServing(reg, policy ? `  mlp:\n    versionPolicy: ${policy}\n` : '  {}\n');
      const out = `repo-${policy ?? 'default'}-${ref}`.replace(/[^a-z0-9-]/g, '_');
      const result = await exportTriton(reg, ref, out);
      const [config] = parseConfigs([join(reg.home, out, 'mlp', 'config.pbtxt')]);
      expect(config.version_policy).toEqual(result.versionPolicy);
      expect(tree(join(reg.home, out, 'mlp')).filter((f) => f.endsWith('mlp.onnx'))).toEqual(result.versions.map((v: number) => `${v}/mlp.onnx`));
      return { versions: result.versions, policy: config.version_policy };
    };
    expect(await exported(undefined)).toEqual({ versions: [1, 3], policy: { specific: { versions: [1, 3] } } });
    expect(await exported('latest:2')).toEqual({ versions: [2, 3], policy: { latest: { num_versions: 2 } } });
    expect(await exported('all')).toEqual({ versions: [1, 2, 3], policy: { all: {} } });
    expect(await exported('specific:prod,2')).toEqual({ versions: [1, 2], policy: { specific: { versions: [1, 2] } } });
    // one version named: the repository holds it alone, which latest:N also serves
    expect(await exported('latest:2', 'mlp@prod')).toEqual({ versions: [1], policy: { latest: { num_versions: 2 } } });
    expect(await exported('specific:3', 'mlp@2')).toEqual({ versions: [2], policy: { specific: { versions: [2] } } });
  });

  it("model_warmup from the stored samples: each input's little-endian bytes in NAME/warmup/, rows as batch_size", async () => {
    const reg = await makeRegistry();
    const requests = [
      { inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 4], data: [1, 2, 3, 4] }] },
      { inputs: [{ name: 'input', datatype: 'FP32', shape: [3, 4], data: Array.from({ length: 12 }, (_, i) => i + 0.5) }] },
    ];
    await register(reg, reg.fixture('mlp.onnx'), '--name', 'mlp', '--warmup', warmupFile(reg, requests));
    setServing(reg, '  mlp:\n    maxBatch: 2\n');
    expect(await exportTriton(reg, 'mlp@1', 'batching')).toMatchObject({ warmupSamples: 2 });
    setServing(reg, '  mlp:\n    maxBatch: 1\n');
    await exportTriton(reg, 'mlp@1', 'single');
    const [batching, single] = parseConfigs([join(reg.home, 'batching', 'mlp', 'config.pbtxt'), join(reg.home, 'single', 'mlp', 'config.pbtxt')]);

    // Triton sends batch_size copies of the file's one row (at most max_batch_size of them)
    expect(batching.model_warmup).toEqual([
      { name: 'sample1', batch_size: 1, inputs: { input: { data_type: 'TYPE_FP32', dims: [4], input_data_file: 'sample1_input0' } } },
      { name: 'sample2', batch_size: 2, inputs: { input: { data_type: 'TYPE_FP32', dims: [4], input_data_file: 'sample2_input0' } } },
    ]);
    expect(readFileSync(join(reg.home, 'batching', 'mlp', 'warmup', 'sample1_input0'))).toEqual(floats(1, 2, 3, 4));
    expect(readFileSync(join(reg.home, 'batching', 'mlp', 'warmup', 'sample2_input0'))).toEqual(floats(0.5, 1.5, 2.5, 3.5));
    // without batching a sample is the whole tensor, as the request had it
    expect(single.model_warmup).toEqual([
      { name: 'sample1', batch_size: 1, inputs: { input: { data_type: 'TYPE_FP32', dims: [1, 4], input_data_file: 'sample1_input0' } } },
      { name: 'sample2', batch_size: 1, inputs: { input: { data_type: 'TYPE_FP32', dims: [3, 4], input_data_file: 'sample2_input0' } } },
    ]);
    expect(readFileSync(join(reg.home, 'single', 'mlp', 'warmup', 'sample2_input0'))).toEqual(floats(...requests[1]!.inputs[0]!.data));
  });

  it('a scalar warm-up input is one element of dims [1]; versions without samples get no model_warmup', async () => {
    const reg = await makeRegistry();
    const request = { inputs: [{ name: 'input', datatype: 'FP32', shape: [2, 4], data: [1, 2, 3, 4, 5, 6, 7, 8] }, { name: 'flag', datatype: 'BOOL', shape: [], data: [true] }] };
    const model = modelFile(reg, 'branches', 'branches.onnx', constantWeights({ branches: true }));
    await register(reg, model, '--name', 'branches', '--warmup', warmupFile(reg, [request]));
    await register(reg, reg.fixture('mlp.onnx'), '--name', 'mlp');
    await exportTriton(reg, 'branches', 'repo');
    expect(await exportTriton(reg, 'mlp', 'repo')).toMatchObject({ warmupSamples: 0 });
    const [branches, plain] = parseConfigs([join(reg.home, 'repo', 'branches', 'config.pbtxt'), join(reg.home, 'repo', 'mlp', 'config.pbtxt')]);
    expect(branches.model_warmup).toEqual([{
      name: 'sample1',
      batch_size: 1,
      inputs: {
        input: { data_type: 'TYPE_FP32', dims: [2, 4], input_data_file: 'sample1_input0' },
        flag: { data_type: 'TYPE_BOOL', dims: [1], input_data_file: 'sample1_input1' },
      },
    }]);
    expect(readFileSync(join(reg.home, 'repo', 'branches', 'warmup', 'sample1_input1'))).toEqual(Buffer.from([1]));
    expect(plain.model_warmup).toBeUndefined();
    expect(existsSync(join(reg.home, 'repo', 'mlp', 'warmup'))).toBe(false);
  });

  describe.skipIf(!HAVE_CORPUS && !REQUIRE_TOOLS)('the real-model corpus', () => {
    it('every real model: Triton types and dims from its signature, batching where every input and output has a free first dim, its warm-up request', async () => {
      const reg = await makeRegistry();
      for (const model of CORPUS_MODELS) {
        await register(reg, corpusFile(model), '--name', model.name, '--warmup', warmupFile(reg, [corpusRequest(model)]), '--no-load-check');
        await exportTriton(reg, `${model.name}@1`, 'repo');
      }
      const repo = join(reg.home, 'repo');
      expect(readdirSync(repo).sort()).toEqual(CORPUS_MODELS.map((m) => m.name).sort());
      const configs = parseConfigs(CORPUS_MODELS.map((m) => join(repo, m.name, 'config.pbtxt')));
      for (const [i, model] of CORPUS_MODELS.entries()) {
        const config = configs[i]!;
        const signature = (await reg.cli('show', `${model.name}@1`, '--json')).json().signature as Signature;
        const batching = [...signature.inputs, ...signature.outputs].every((t) => t.shape !== null && t.shape.length > 0 && typeof t.shape[0] !== 'number');
        const expected = (t: Signature['inputs'][number]) => {
          const dims = t.shape!.map((d) => (typeof d === 'number' ? d : -1)).slice(batching ? 1 : 0);
          const type = `TYPE_${{ float32: 'FP32', int64: 'INT64' }[t.dtype]}`;
          return { name: t.name, data_type: type, dims: dims.length ? dims : [1], ...(batching && dims.length === 0 ? { reshape: {} } : {}) };
        };
        expect(config, model.name).toMatchObject({ name: model.name, platform: 'onnxruntime_onnx', default_model_filename: `${model.name}.onnx` });
        expect(config.max_batch_size ?? 0, model.name).toBe(batching ? 32 : 0);
        expect(config.input, model.name).toEqual(signature.inputs.map(expected));
        expect(config.output, model.name).toEqual(signature.outputs.map(expected));
        expect(tree(join(repo, model.name)), model.name).toEqual(['1/warmup.json', `1/${model.name}.onnx`, 'config.pbtxt', ...model.inputs.map((_, k) => `warmup/sample1_input${k}`)].sort());
        for (const [k, input] of model.inputs.entries()) {
          // one row with batching (the request's first dim is Triton's batch_size), else the whole tensor
          const dims = batching ? input.shape.slice(1) : input.shape;
          const size = dims.reduce((n, d) => n * d, 1) * (input.datatype === 'INT64' ? 8 : 4);
          expect(readFileSync(join(repo, model.name, 'warmup', `sample1_input${k}`)).length, `${model.name} ${input.name}`).toBe(size);
          expect(config.model_warmup[0].inputs[input.name], `${model.name} ${input.name}`).toEqual({ data_type: `TYPE_${input.datatype === 'INT64' ? 'INT64' : 'FP32'}`, dims: dims.length ? dims : [1], input_data_file: `sample1_input${k}` });
        }
      }
      const byName = Object.fromEntries(CORPUS_MODELS.map((m, i) => [m.name, configs[i]]));
      // fixed shapes: no batching, the dims as they are
      expect(byName['hello-deepa']).toMatchObject({ input: [{ name: 'onnx::Flatten_0', dims: [1, 25, 96] }], output: [{ name: '39', dims: [1, 1] }] });
      // four free dims: batching along the first, the rest -1
      expect(byName['ppocr-det']).toMatchObject({ max_batch_size: 32, input: [{ name: 'x', dims: [3, -1, -1] }], output: [{ dims: [1, -1, -1] }] });
      expect(byName['ppocr-rec']).toMatchObject({ max_batch_size: 32, input: [{ dims: [3, 48, -1] }], output: [{ dims: [-1, 6625] }] });
      // Silero's scalar sample rate: no batching, [1]; its bytes are the int64 16000
      expect(byName['silero-vad'].input).toContainEqual({ name: 'sr', data_type: 'TYPE_INT64', dims: [1] });
      const sr = CORPUS_MODELS.find((m) => m.name === 'silero-vad')!.inputs.findIndex((input) => input.name === 'sr');
      expect(readFileSync(join(repo, 'silero-vad', 'warmup', `sample1_input${sr}`))).toEqual(Buffer.from(BigInt64Array.from([16000n]).buffer));
    });
  });
});

describe('the repository on disk', () => {
  it("is exactly Triton's layout: NAME/config.pbtxt, NAME/warmup/, NAME/<version>/ with the files as the manifest names them, and model.sig for a signed version", async () => {
    const reg = await makeRegistry();
    const request = { inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 4], data: [1, 2, 3, 4] }] };
    await register(reg, reg.fixture('mlp.onnx'), '--name', 'mlp', '--warmup', warmupFile(reg, [request]));
    await register(reg, modelFile(reg, 'v2', 'mlp.onnx', mlp({ seed: 7 })), '--name', 'mlp');
    const key = join(reg.work, 'key.pem');
    expect((await reg.cli('keygen', '-o', key)).exitCode).toBe(0);
    expect((await reg.cli('sign', 'mlp@2', '--key', key)).exitCode).toBe(0);
    setServing(reg, '  mlp:\n    versionPolicy: all\n');

    const result = await exportTriton(reg, 'mlp', 'models');
    const repo = join(reg.home, 'models');
    const expected = ['mlp/1/mlp.onnx', 'mlp/1/warmup.json', 'mlp/2/mlp.onnx', 'mlp/2/model.sig', 'mlp/config.pbtxt', 'mlp/warmup/sample1_input0'];
    expect(tree(repo)).toEqual(expected);
    expect(readdirSync(repo)).toEqual(['mlp']); // no staging folder left behind
    expect(result.files.map((f: { path: string }) => f.path).sort()).toEqual(expected);
    expect(result).toMatchObject({ versions: [1, 2], signed: [2], warmupSamples: 1, versionPolicy: { all: {} } });
    for (const f of result.files as { path: string; size: number }[]) expect(readFileSync(join(repo, f.path)).length).toBe(f.size);
    expect(readFileSync(join(repo, 'mlp', '1', 'mlp.onnx'))).toEqual(readFileSync(join(reg.work, 'mlp.onnx')));

    // model.sig is the newest stored signature, and it names every other file of the version folder by its digest
    const attestations = join(reg.dir, 'models', 'mlp', '2', 'attestations');
    const [stored] = readdirSync(attestations);
    const sig = readFileSync(join(repo, 'mlp', '2', 'model.sig'));
    expect(sig).toEqual(readFileSync(join(attestations, stored!)));
    const statement = JSON.parse(Buffer.from(JSON.parse(sig.toString('utf8')).dsseEnvelope.payload, 'base64').toString('utf8'));
    const resources = (statement.predicate.resources as { name: string; digest: string }[]).map((r) => [r.name, r.digest]);
    const files = tree(join(repo, 'mlp', '2')).filter((f) => f !== 'model.sig');
    expect(resources).toEqual(files.map((f) => [f, createHash('sha256').update(readFileSync(join(repo, 'mlp', '2', f))).digest('hex')]));
  });

  it('a model with external data: both files in the version folder under their names, default_model_filename naming the graph', async () => {
    const reg = await makeRegistry();
    const data = reg.fixture('mlp_external.onnx.data');
    await register(reg, reg.fixture('mlp_external.onnx'), '--name', 'ext');
    await exportTriton(reg, 'ext@1', 'repo');
    expect(tree(join(reg.home, 'repo'))).toEqual(['ext/1/mlp_external.onnx', 'ext/1/mlp_external.onnx.data', 'ext/config.pbtxt']);
    expect(readFileSync(join(reg.home, 'repo', 'ext', '1', 'mlp_external.onnx.data'))).toEqual(readFileSync(data));
    expect(readFileSync(join(reg.home, 'repo', 'ext', 'config.pbtxt'), 'utf8')).toContain('default_model_filename: "mlp_external.onnx"\n');
    if (!SKIP_PROTOBUF) expect(parseConfigs([join(reg.home, 'repo', 'ext', 'config.pbtxt')])[0]).toMatchObject({ default_model_filename: 'mlp_external.onnx', max_batch_size: 32 });
  });

  it('writes into an existing empty model folder, next to other models of the repository', async () => {
    const reg = await makeRegistry();
    await register(reg, reg.fixture('mlp.onnx'), '--name', 'mlp');
    await register(reg, reg.fixture('multi_io.onnx'), '--name', 'multi');
    mkdirSync(join(reg.home, 'repo', 'mlp'), { recursive: true });
    await exportTriton(reg, 'mlp', 'repo');
    await exportTriton(reg, 'multi', 'repo');
    expect(tree(join(reg.home, 'repo'))).toEqual(['mlp/1/mlp.onnx', 'mlp/config.pbtxt', 'multi/1/multi_io.onnx', 'multi/config.pbtxt']);
  });

  it('prints where it wrote, the command that serves it and the KServe v2 path clients keep using', async () => {
    const reg = await makeRegistry();
    await register(reg, reg.fixture('mlp.onnx'), '--name', 'mlp');
    const r = await reg.cli('export', 'mlp@1', '--format', 'triton', '-o', join(reg.home, 'repo'));
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toContain(`✔ Exported mlp@1 as a Triton model repository in ${join(reg.home, 'repo')}`);
    expect(r.stdout).toContain('max_batch_size 32, dynamic batching, 1 × KIND_AUTO, version policy specific 1');
    expect(r.stdout).toContain(`tritonserver --model-repository=${join(reg.home, 'repo')}`);
    expect(r.stdout).toContain('/v2/models/mlp/infer');
  });
});

describe('refusals: an error with a code and a hint, and nothing written', () => {
  async function refused(reg: TestRegistry, args: string[], exitCode: number, code: string) {
    const r = await reg.cli('export', ...args, '--json');
    expect(r.exitCode, r.stdout).toBe(exitCode);
    const { error } = r.json();
    expect(error).toMatchObject({ code, message: expect.any(String), hint: expect.any(String) });
    expect(r.stderr).not.toMatch(/\n\s+at /); // no stack trace
    return error as { message: string; hint: string };
  }

  it('--device webgpu: Triton has no WebGPU instances (exit 2)', async () => {
    const reg = await makeRegistry();
    await register(reg, reg.fixture('mlp.onnx'), '--name', 'mlp');
    const error = await refused(reg, ['mlp@1', '--format', 'triton', '-o', join(reg.home, 'repo'), '--device', 'webgpu'], 2, 'MAAS_USAGE');
    expect(error.hint).toContain('--device cuda');
    expect(existsSync(join(reg.home, 'repo'))).toBe(false);
  });

  it('a model folder that holds files maas did not make (exit 2), left as it was', async () => {
    const reg = await makeRegistry();
    await register(reg, reg.fixture('mlp.onnx'), '--name', 'mlp');
    mkdirSync(join(reg.home, 'repo', 'mlp'), { recursive: true });
    writeFileSync(join(reg.home, 'repo', 'mlp', 'config.pbtxt'), 'hand-written\n');
    const error = await refused(reg, ['mlp@1', '--format', 'triton', '-o', join(reg.home, 'repo')], 2, 'MAAS_USAGE');
    expect(error.message).toContain(join(reg.home, 'repo', 'mlp'));
    expect(tree(join(reg.home, 'repo'))).toEqual(['mlp/config.pbtxt']);
    expect(readFileSync(join(reg.home, 'repo', 'mlp', 'config.pbtxt'), 'utf8')).toBe('hand-written\n');
  });

  it('a repository folder that cannot be made, under /proc or through a file, is refused at once (exit 2)', async () => {
    const reg = await makeRegistry();
    await register(reg, reg.fixture('mlp.onnx'), '--name', 'mlp');
    writeFileSync(join(reg.home, 'a-file'), '');
    for (const output of ['/proc/maas-nope/repo', join(reg.home, 'a-file', 'repo')]) await refused(reg, ['mlp@1', '--format', 'triton', '-o', output], 2, 'MAAS_USAGE');
  });

  it('an unknown model or version (exit 4), a policy that selects nothing (exit 4), no -o (exit 2)', async () => {
    const reg = await makeRegistry();
    await register(reg, reg.fixture('mlp.onnx'), '--name', 'mlp');
    await refused(reg, ['nope', '--format', 'triton', '-o', join(reg.home, 'repo')], 4, 'MAAS_MODEL_NOT_FOUND');
    await refused(reg, ['mlp@9', '--format', 'triton', '-o', join(reg.home, 'repo')], 4, 'MAAS_VERSION_NOT_FOUND');
    setServing(reg, '  mlp:\n    versionPolicy: specific:9\n');
    await refused(reg, ['mlp', '--format', 'triton', '-o', join(reg.home, 'repo')], 4, 'MAAS_VERSION_NOT_FOUND');
    await refused(reg, ['mlp@1', '--format', 'triton'], 2, 'MAAS_USAGE');
    expect(existsSync(join(reg.home, 'repo'))).toBe(false);
  });

  it('versions that cannot share one config.pbtxt (exit 2); each alone exports', async () => {
    const reg = await makeRegistry();
    await register(reg, reg.fixture('mlp.onnx'), '--name', 'mlp');
    await register(reg, modelFile(reg, 'wider', 'mlp.onnx', mlp({ inputSize: 5 })), '--name', 'mlp');
    setServing(reg, '  mlp:\n    versionPolicy: all\n');
    const error = await refused(reg, ['mlp', '--format', 'triton', '-o', join(reg.home, 'repo')], 2, 'MAAS_USAGE');
    expect(error.message).toContain('mlp@1 and mlp@2 differ');
    expect(existsSync(join(reg.home, 'repo'))).toBe(false);
    expect(await exportTriton(reg, 'mlp@2', 'repo')).toMatchObject({ versions: [2] });
  });

  it('a tensor Triton cannot describe: an element type its ONNX Runtime backend lacks, or no shape (exit 7)', async () => {
    const reg = await makeRegistry();
    const identity = (name: string, dataType: number, shape: (string | number)[] | null) => ({
      producerName: 'maas-fixtures',
      graph: { name, nodes: [{ op: 'Identity', inputs: ['x'], outputs: ['y'] }], initializers: [], inputs: [valueInfoProto('x', dataType, shape)], outputs: [valueInfoProto('y', dataType, shape)] },
    });
    await register(reg, modelFile(reg, 'bf16', 'model.onnx', identity('bf16', 16, ['batch', 2])), '--name', 'bf16', '--no-load-check');
    await register(reg, modelFile(reg, 'shapeless', 'model.onnx', identity('shapeless', DataType.FLOAT, null)), '--name', 'shapeless', '--no-load-check');
    expect((await refused(reg, ['bf16', '--format', 'triton', '-o', join(reg.home, 'repo')], 7, 'MAAS_MODEL_INVALID')).message).toBe("bf16@1: 'x' is a bfloat16, which a Triton config.pbtxt cannot describe");
    expect((await refused(reg, ['shapeless', '--format', 'triton', '-o', join(reg.home, 'repo')], 7, 'MAAS_MODEL_INVALID')).message).toBe("shapeless@1: 'x' has no shape, which a Triton config.pbtxt cannot describe");
    // KServe's ONNX runtime is Triton: the same refusal, before a remote is even looked for
    expect((await refused(reg, ['bf16', '--format', 'kserve'], 7, 'MAAS_MODEL_INVALID')).message).toContain('a Triton config.pbtxt cannot describe');
    expect(existsSync(join(reg.home, 'repo'))).toBe(false);
  });

  it('a corrupt blob is refused before anything is written (exit 8)', async () => {
    const reg = await makeRegistry();
    await register(reg, reg.fixture('mlp.onnx'), '--name', 'mlp');
    const blobs = join(reg.dir, 'blobs', 'sha256');
    const [blob] = readdirSync(blobs);
    chmodSync(join(blobs, blob!), 0o644);
    writeFileSync(join(blobs, blob!), 'not the model');
    await refused(reg, ['mlp@1', '--format', 'triton', '-o', join(reg.home, 'repo')], 8, 'MAAS_VERIFY_FAILED');
    expect(existsSync(join(reg.home, 'repo', 'mlp'))).toBe(false);
  });
});
