import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { ALL_TYPES } from '../../fixtures/models.js';
import { FIXTURES, makeRegistry } from '../helpers/registry.js';
import { serveRegistry } from '../helpers/serve.js';
import { DATATYPE, SAMPLES, binaryOf } from '../helpers/tensors.js';

async function servedFixtures() {
  const reg = await makeRegistry();
  for (const [file, name] of [['mlp.onnx', 'mlp'], ['multi_io.onnx', 'ranker'], ['all_types.onnx', 'types']]) {
    const r = await reg.cli('register', reg.fixture(file!), '--name', name!);
    expect(r.exitCode, r.stderr).toBe(0);
  }
  await reg.cli('tag', 'mlp@1', 'prod');
  return { reg, server: await serveRegistry(reg) };
}

describe('KServe v2 and TF Serving routes', () => {
  it('answers health, server metadata, model metadata and readiness, by version and alias', async () => {
    const { server } = await servedFixtures();
    expect((await server.get('/v2/health/live')).json).toEqual({ live: true });
    expect((await server.get('/v2/health/ready')).json).toEqual({ ready: true });
    expect((await server.get('/v2')).json).toEqual({ name: 'maas', version: 'test', extensions: ['binary_tensor_data', 'model_configuration', 'model_repository', 'statistics'] });
    expect((await server.get('/v2/models/mlp')).json).toEqual({
      name: 'mlp', versions: ['1'], platform: 'onnxruntime_onnx',
      inputs: [{ name: 'input', datatype: 'FP32', shape: [-1, 4] }],
      outputs: [{ name: 'output', datatype: 'FP32', shape: [-1, 3] }],
    });
    expect((await server.get('/v2/models/ranker/versions/1')).json.inputs).toEqual([
      { name: 'features', datatype: 'FP32', shape: [-1, 3] }, { name: 'ids', datatype: 'INT64', shape: [-1] },
    ]);
    expect((await server.get('/v2/models/mlp/ready')).json).toEqual({ name: 'mlp', ready: true });
    expect((await server.get('/v2/models/mlp/versions/prod/ready')).status).toBe(200);
    const unknown = await server.get('/v2/models/nope');
    expect(unknown.status).toBe(404);
    expect(unknown.json.error).toContain("model 'nope' is not served here");
    // A long name is not echoed back whole.
    const long = await server.get(`/v2/models/${'x'.repeat(5000)}/versions/${'9'.repeat(5000)}`);
    expect(long.status).toBe(404);
    expect(long.json.error).toBe(`model '${'x'.repeat(100)}…' is not served here`);
    expect((await server.get('/v2/models/mlp/versions/9')).status).toBe(404);
    expect((await server.get(`/v2/models/mlp/versions/${'9'.repeat(5000)}`)).json.error).toBe(`model 'mlp' has no served version '${'9'.repeat(100)}…'`);
    expect((await server.get('/v2/models/mlp/versions/staging/ready')).status).toBe(404);
    const post = await server.post('/v2/models/mlp', {});
    expect(post.status).toBe(405);
    expect(post.headers.get('allow')).toBe('GET, HEAD');
    expect((await server.get('/v2/models/mlp/infer')).status).toBe(405);
    // HEAD answers wherever GET does, with GET's headers and no body (load balancers probe with it).
    for (const path of ['/v2/health/live', '/v2/health/ready', '/v2/models/mlp', '/metrics']) {
      const [head, get] = [await fetch(server.url + path, { method: 'HEAD' }), await fetch(server.url + path)];
      expect(head.status, path).toBe(200);
      expect((await head.arrayBuffer()).byteLength, path).toBe(0);
      // (the metrics move between two scrapes)
      if (path !== '/metrics') expect(head.headers.get('content-length'), path).toBe(get.headers.get('content-length'));
    }
    expect((await fetch(`${server.url}/v2/models/mlp/infer`, { method: 'HEAD' })).headers.get('allow')).toBe('POST');
    expect((await server.get('/nothing/here')).status).toBe(404);
  });

  it('returns exactly what onnxruntime returns when called directly', async () => {
    const { server } = await servedFixtures();
    const input = [0.1, -0.2, 0.3, 0.4, 1, 2, 3, 4, -1, -2, -3, -4];
    const session = await ort.InferenceSession.create(join(FIXTURES, 'mlp.onnx'));
    const direct = await session.run({ input: new ort.Tensor('float32', Float32Array.from(input), [3, 4]) });
    const served = await server.post('/v2/models/mlp/infer', { id: 'req-1', inputs: [{ name: 'input', shape: [3, 4], datatype: 'FP32', data: input }] });
    expect(served.status).toBe(200);
    expect(served.json).toEqual({
      model_name: 'mlp', model_version: '1', id: 'req-1',
      outputs: [{ name: 'output', datatype: 'FP32', shape: [3, 3], data: Array.from(direct.output!.data as Float32Array) }],
    });
    const nested = await server.post('/v2/models/mlp/versions/prod/infer', { inputs: [{ name: 'input', shape: [3, 4], datatype: 'FP32', data: [input.slice(0, 4), input.slice(4, 8), input.slice(8)] }] });
    expect(nested.json.outputs[0].data).toEqual(served.json.outputs[0].data);
    expect(nested.json.id).toBeUndefined();
  });

  it('round-trips every datatype as JSON and as binary, with identical results', async () => {
    const { server } = await servedFixtures();
    const jsonTypes = ALL_TYPES.map(([t]) => t).filter((t) => t !== 'float16');
    // Every input as JSON but FP16, which goes binary in the same request (mixed bodies are legal).
    const fp16 = binaryOf('float16');
    const mixedHeader = Buffer.from(JSON.stringify({
      inputs: ALL_TYPES.map(([t]) => (t === 'float16'
        ? { name: 'x_float16', shape: [2, 2], datatype: 'FP16', parameters: { binary_data_size: fp16.length } }
        : { name: `x_${t}`, shape: [2, 2], datatype: DATATYPE[t], data: SAMPLES[t]!.json })),
      outputs: jsonTypes.map((t) => ({ name: `y_${t}` })),
    }));
    const asJson = await server.post('/v2/models/types/infer', Buffer.concat([mixedHeader, fp16]), { 'inference-header-content-length': String(mixedHeader.length) });
    expect(asJson.status, JSON.stringify(asJson.json)).toBe(200);
    expect(asJson.headers.get('content-type')).toBe('application/json');
    // FP16 has no JSON form on input (Triton and KServe refuse it too).
    const fp16Json = await server.post('/v2/models/types/infer', { inputs: ALL_TYPES.map(([t]) => ({ name: `x_${t}`, shape: [2, 2], datatype: DATATYPE[t], data: SAMPLES[t]!.json })) });
    expect(fp16Json.status).toBe(400);
    expect(fp16Json.json.error).toContain('FP16 data cannot be sent as JSON');

    const chunks = ALL_TYPES.map(([t]) => binaryOf(t));
    const header = Buffer.from(JSON.stringify({
      inputs: ALL_TYPES.map(([t], i) => ({ name: `x_${t}`, shape: [2, 2], datatype: DATATYPE[t], parameters: { binary_data_size: chunks[i]!.length } })),
      parameters: { binary_data_output: true },
    }));
    const asBinary = await server.post('/v2/models/types/infer', Buffer.concat([header, ...chunks]), {
      'content-type': 'application/octet-stream', 'inference-header-content-length': String(header.length),
    });
    expect(asBinary.status, JSON.stringify(asBinary.json)).toBe(200);
    expect(asBinary.headers.get('content-type')).toBe('application/octet-stream');
    let offset = Number(asBinary.headers.get('inference-header-content-length'));
    const binaryOut: Record<string, Buffer> = {};
    for (const out of asBinary.json.outputs) {
      binaryOut[out.name] = asBinary.raw.subarray(offset, offset + out.parameters.binary_data_size);
      offset += out.parameters.binary_data_size;
    }
    expect(offset).toBe(asBinary.raw.length);
    for (const [t] of ALL_TYPES) {
      expect(binaryOut[`y_${t}`], t).toEqual(binaryOf(t)); // Identity: the bytes come back unchanged
    }
    for (const t of jsonTypes) {
      const out = asJson.json.outputs.find((o: { name: string }) => o.name === `y_${t}`);
      expect(out, t).toMatchObject({ datatype: DATATYPE[t], shape: [2, 2], data: SAMPLES[t]!.json });
    }
    const mlpInput = { inputs: [{ name: 'input', shape: [1, 4], datatype: 'FP32', data: [1, 2, 3, 4] }] };
    const jsonOut = await server.post('/v2/models/mlp/infer', mlpInput);
    const binOut = await server.post('/v2/models/mlp/infer', { ...mlpInput, outputs: [{ name: 'output', parameters: { binary_data: true } }] });
    const floats = binOut.raw.subarray(Number(binOut.headers.get('inference-header-content-length')));
    expect(Array.from(new Float32Array(floats.buffer.slice(floats.byteOffset, floats.byteOffset + floats.length)))).toEqual(jsonOut.json.outputs[0].data);
  });

  it('writes NaN and infinities as null in JSON answers, and exactly in binary ones', async () => {
    const { server } = await servedFixtures();
    const special = Buffer.from(Float32Array.from([Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, 1.5]).buffer);
    const chunks = ALL_TYPES.map(([t]) => (t === 'float32' ? special : binaryOf(t)));
    const request = (binaryOutput: boolean) => {
      const header = Buffer.from(JSON.stringify({
        inputs: ALL_TYPES.map(([t], i) => ({ name: `x_${t}`, shape: [2, 2], datatype: DATATYPE[t], parameters: { binary_data_size: chunks[i]!.length } })),
        outputs: [{ name: 'y_float32', parameters: { binary_data: binaryOutput } }],
      }));
      return server.post('/v2/models/types/infer', Buffer.concat([header, ...chunks]), { 'inference-header-content-length': String(header.length) });
    };
    const json = await request(false);
    expect(json.status).toBe(200);
    expect(json.json.outputs).toEqual([{ name: 'y_float32', datatype: 'FP32', shape: [2, 2], data: [null, null, null, 1.5] }]);
    const binary = await request(true);
    expect(binary.raw.subarray(Number(binary.headers.get('inference-header-content-length')))).toEqual(special);
  });

  it('filters outputs, echoes ids and returns FP16 outputs as numbers in JSON', async () => {
    const { server } = await servedFixtures();
    const r = await server.post('/v2/models/ranker/infer', {
      id: 'abc',
      inputs: [{ name: 'features', shape: [2, 3], datatype: 'FP32', data: [1, -1, 0, 2, 0.5, -0.5] }, { name: 'ids', shape: [2], datatype: 'INT64', data: [7, -3] }],
      outputs: [{ name: 'ids_doubled' }],
    });
    expect(r.json).toEqual({ model_name: 'ranker', model_version: '1', id: 'abc', outputs: [{ name: 'ids_doubled', datatype: 'INT64', shape: [2], data: [14, -6] }] });
    const all = await server.post('/v2/models/ranker/infer', {
      inputs: [{ name: 'features', shape: [1, 3], datatype: 'FP32', data: [1, -1, 0] }, { name: 'ids', shape: [1], datatype: 'INT64', data: [1] }],
    });
    expect(all.json.outputs.map((o: { name: string; data: unknown }) => [o.name, o.data])).toEqual([['positive', [true, false, false]], ['ids_doubled', [2]]]);
    // Triton's classification extension is refused, not answered with the raw tensor.
    const classify = await server.post('/v2/models/mlp/infer', { inputs: [{ name: 'input', shape: [1, 4], datatype: 'FP32', data: [1, 2, 3, 4] }], outputs: [{ name: 'output', parameters: { classification: 2 } }] });
    expect(classify.status).toBe(400);
    expect(classify.json.error).toContain('classification');
  });

  it('answers INT64 beyond ±2^53 in JSON with its exact digits, as Triton does', async () => {
    const { server } = await servedFixtures();
    const ids = Buffer.from(new BigInt64Array([2n ** 53n + 1n, -(2n ** 60n) - 3n]).buffer);
    const header = Buffer.from(JSON.stringify({
      inputs: [{ name: 'features', shape: [2, 3], datatype: 'FP32', data: [1, -1, 0, 2, 0.5, -0.5] }, { name: 'ids', shape: [2], datatype: 'INT64', parameters: { binary_data_size: ids.length } }],
      outputs: [{ name: 'ids_doubled' }],
    }));
    const r = await server.post('/v2/models/ranker/infer', Buffer.concat([header, ids]), { 'inference-header-content-length': String(header.length) });
    expect(r.status, r.raw.toString()).toBe(200);
    expect(r.raw.toString()).toContain('"data":[18014398509481986,-2305843009213693958]');
  });

  it('speaks TF Serving: status, metadata, row and columnar predict', async () => {
    const { server } = await servedFixtures();
    expect((await server.get('/v1/models/mlp')).json).toEqual({ model_version_status: [{ version: '1', state: 'AVAILABLE', status: { error_code: 'OK', error_message: '' } }] });
    expect((await server.get('/v1/models/mlp/labels/prod')).status).toBe(200);
    const meta = (await server.get('/v1/models/mlp/versions/1/metadata')).json;
    expect(meta.metadata.signature_def.signature_def.serving_default.inputs.input).toEqual({
      dtype: 'DT_FLOAT', name: 'input', tensor_shape: { dim: [{ size: '-1', name: 'batch' }, { size: '4', name: '' }], unknown_rank: false },
    });
    const v2 = await server.post('/v2/models/mlp/infer', { inputs: [{ name: 'input', shape: [2, 4], datatype: 'FP32', data: [1, 2, 3, 4, 5, 6, 7, 8] }] });
    const rows = v2.json.outputs[0].data as number[];
    const row = await server.post('/v1/models/mlp:predict', { instances: [[1, 2, 3, 4], [5, 6, 7, 8]] });
    expect(row.json).toEqual({ predictions: [rows.slice(0, 3), rows.slice(3)] });
    const columnar = await server.post('/v1/models/mlp/labels/prod:predict', { inputs: [[1, 2, 3, 4], [5, 6, 7, 8]] });
    expect(columnar.json).toEqual({ outputs: [rows.slice(0, 3), rows.slice(3)] });
    const multi = await server.post('/v1/models/ranker:predict', { instances: [{ features: [1, -1, 0], ids: 5 }, { features: [0, 2, -2], ids: 6 }] });
    expect(multi.json).toEqual({ predictions: [{ positive: [true, false, false], ids_doubled: 10 }, { positive: [false, true, false], ids_doubled: 12 }] });
    const named = await server.post('/v1/models/ranker:predict', { inputs: { features: [[1, -1, 0]], ids: [5] } });
    expect(named.json).toEqual({ outputs: { positive: [[true, false, false]], ids_doubled: [10] } });
    expect((await server.post('/v1/models/mlp:predict', { instances: [] })).status).toBe(400);
    expect((await server.post('/v1/models/mlp:predict', { instances: [[1, 2, 3, 4]], inputs: [[1, 2, 3, 4]] })).status).toBe(400);
    expect((await server.post('/v1/models/ghost:predict', { instances: [[1]] })).status).toBe(404);
  });

  it('exposes Prometheus metrics for requests, batches, inference time and model loads', async () => {
    const { server } = await servedFixtures();
    await server.post('/v2/models/mlp/infer', { inputs: [{ name: 'input', shape: [1, 4], datatype: 'FP32', data: [1, 2, 3, 4] }] });
    await server.post('/v2/models/mlp/infer', { inputs: [] });
    await server.get('/v2/models/mlp/infer'); // 405 before the model resolves: counted all the same
    await server.get('/v2/health/live'); // not a model's route: not counted
    const metrics = await server.get('/metrics');
    expect(metrics.headers.get('content-type')).toContain('text/plain');
    for (const line of [
      'maas_requests_total{model="mlp",version="1",protocol="v2",code="200"} 1',
      'maas_requests_total{model="mlp",version="1",protocol="v2",code="400"} 1',
      'maas_requests_total{model="(unknown)",version="(unknown)",protocol="v2",code="405"} 1',
      'maas_request_duration_seconds_count{model="mlp",version="1",protocol="v2",code="200"} 1',
      'maas_batch_size_count{model="mlp",version="1"} 1',
      'maas_inference_duration_seconds_count{model="mlp",version="1"} 1',
      'maas_queue_depth{model="mlp",version="1"} 0',
    ]) expect(metrics.text).toContain(line);
    expect(metrics.text).toMatch(/maas_model_load_seconds\{model="types",version="1"\} \d/);
    expect(metrics.text).not.toContain('protocol="other"');
  });

  // .ci/run installs Debian's prometheus package for promtool and sets MAAS_REQUIRE_TOOLS=1.
  const promtool = spawnSync('promtool', ['--version']).status === 0;
  if (!promtool && !process.env.MAAS_REQUIRE_TOOLS) console.warn('SKIPPED: promtool check of /metrics (apt-get install prometheus to run it)');
  it.skipIf(!promtool && !process.env.MAAS_REQUIRE_TOOLS)('serves metrics that pass `promtool check metrics`', async () => {
    const { server } = await servedFixtures();
    await server.post('/v2/models/mlp/infer', { inputs: [{ name: 'input', shape: [1, 4], datatype: 'FP32', data: [1, 2, 3, 4] }] });
    const text = (await server.get('/metrics')).text;
    const check = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
    expect(check.error).toBeUndefined();
    expect(check.status, check.stdout + check.stderr).toBe(0);
  });
});
