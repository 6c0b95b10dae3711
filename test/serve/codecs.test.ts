/**
 * What a request body may carry besides plain JSON numbers: TF Serving's {"b64": ...} strings,
 * FP16 as JSON numbers where the protocol has no binary form, and gzip/deflate Content-Encoding.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { deflateRawSync, deflateSync, gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { identity, writeModel } from '../../fixtures/models.js';
import { DataType } from '../../src/onnx/dtypes.js';
import { makeRegistry, type TestRegistry } from '../helpers/registry.js';
import { runCli } from '../helpers/run-cli.js';
import { type ServeOverrides, serveRegistry } from '../helpers/serve.js';

/** `text` ([batch, n]) and `words` ([batch]) string Identity models, `half` (FP16), and the mlp fixture. */
async function models(): Promise<TestRegistry> {
  const reg = await makeRegistry();
  for (const [name, type, shape] of [['text', DataType.STRING, undefined], ['words', DataType.STRING, ['batch']], ['half', DataType.FLOAT16, undefined]] as const) {
    const r = await reg.cli('register', writeModel(reg.work, `${name}.onnx`, identity(type, shape && [...shape])), '--name', name);
    expect(r.exitCode, r.stderr).toBe(0);
  }
  expect((await reg.cli('register', reg.fixture('mlp.onnx'), '--name', 'mlp')).exitCode).toBe(0);
  return reg;
}

async function served(overrides: ServeOverrides = {}) {
  const reg = await models();
  return { reg, server: await serveRegistry(reg, overrides) };
}

describe('TF Serving {"b64": ...} strings', () => {
  it('decodes standard base64, padded or not, skipping whitespace as TF Serving does', async () => {
    const { server } = await served();
    const ok = await server.post('/v1/models/text:predict', { instances: [[{ b64: 'aGk=' }, { b64: 'aGk' }], [{ b64: 'aGVs\nbG8=' }, 'plain']] });
    expect(ok.status, ok.raw.toString()).toBe(200);
    expect(ok.json).toEqual({ predictions: [['hi', 'hi'], ['hello', 'plain']] });
    // One string per instance: a {"b64": ...} instance is the value, not an object of named inputs.
    const rows = await server.post('/v1/models/words:predict', { instances: [{ b64: 'aGk=' }, { b64: 'aGVsbG8=' }] });
    expect(rows.status, rows.raw.toString()).toBe(200);
    expect(rows.json).toEqual({ predictions: ['hi', 'hello'] });
  });

  it('refuses what is not base64 instead of dropping characters or the rest after padding', async () => {
    const { server } = await served();
    for (const [values, index] of [
      [['@@@aGk=!!', 'aGk='], 0],
      [['aGk=', 'aGk=aGk='], 1],
      [['aGk=', '!!!not'], 1],
      [['aGk=', '-_8='], 1], // URL-safe: TF Serving's decoder takes the standard alphabet only
      [['aGk==', 'aGk='], 0],
      [['a', 'aGk='], 0],
    ] as const) {
      const r = await server.post('/v1/models/text:predict', { instances: [values.map((b64) => ({ b64 }))] });
      expect(r.status, values.join(' ')).toBe(400);
      expect(r.json.error).toBe(`input 'x': element ${index} {"b64": ...} is not valid base64 (the standard alphabet A-Z a-z 0-9 + /, with or without = padding)`);
    }
    const columnar = await server.post('/v1/models/text:predict', { inputs: { x: [[{ b64: 'aGk=' }, { b64: 'a$Gk=' }]] } });
    expect(columnar.status).toBe(400);
    expect(columnar.json.error).toContain("input 'x': element 1 {\"b64\": ...} is not valid base64");
    for (const [b64, what] of [[5, 'number'], [null, 'null'], [['aGk='], 'a list']] as const) {
      const wrong = await server.post('/v1/models/text:predict', { instances: [[{ b64: 'aGk=' }, { b64 }]] });
      expect(wrong.status).toBe(400);
      expect(wrong.json.error).toBe(`input 'x': element 1 {"b64": ...} must hold a base64 string, not ${what}`);
    }
  });
});

describe('FP16 inputs as JSON numbers', () => {
  it('takes them on TF Serving routes, rounded to nearest even, and refuses values beyond float16', async () => {
    const { server } = await served();
    const row = await server.post('/v1/models/half:predict', { instances: [[1, 2, 3]] });
    expect(row.status, row.raw.toString()).toBe(200);
    expect(row.json).toEqual({ predictions: [[1, 2, 3]] });
    // 1 + 2^-11 + 2^-40 is just above a tie: through float32 it would round twice, down to 1.
    const rounded = await server.post('/v1/models/half:predict', { inputs: [[0.1, 65519, 1 + 2 ** -11 + 2 ** -40, 1 + 2 ** -11]] });
    expect(rounded.json).toEqual({ outputs: [[0.0999755859375, 65504, 1.0009765625, 1]] });
    for (const [value, shown] of [[65520, '65520'], [-1e6, '-1000000'], ['1e999', 'Infinity (beyond float64)']] as const) {
      const r = await server.post('/v1/models/half:predict', `{"instances":[[0, ${value}]]}`);
      expect(r.status, String(value)).toBe(400);
      expect(r.json.error).toBe(`input 'x': element 1 is ${shown}, expected a number within float16's range (±65504)`);
    }
    expect((await server.post('/v1/models/half:predict', { instances: [[0, 'one']] })).json.error).toContain('expected a number (float16)');
  });

  it('still refuses them in KServe v2 JSON, whose FP16 form is binary (as in Triton)', async () => {
    const { server } = await served();
    const r = await server.post('/v2/models/half/infer', { inputs: [{ name: 'x', shape: [1, 2], datatype: 'FP16', data: [1, 2] }] });
    expect(r.status).toBe(400);
    expect(r.json.error).toContain('FP16 data cannot be sent as JSON');
  });

  it('are what `maas predict` takes in its request file, here and over gRPC', async () => {
    const reg = await models();
    const request = join(reg.work, 'half.json');
    writeFileSync(request, JSON.stringify({ inputs: [{ name: 'x', shape: [1, 3], datatype: 'FP16', data: [0.1, -2, 65504] }] }));
    const expected = { model_name: 'half', model_version: '1', outputs: [{ name: 'y', datatype: 'FP16', shape: [1, 3], data: [0.0999755859375, -2, 65504] }] };
    const local = await reg.cli('predict', 'half@1', '--input', request, '--json');
    expect(local.exitCode, local.stdout + local.stderr).toBe(0);
    expect(local.json()).toEqual(expected);
    const server = await serveRegistry(reg, { grpcPort: 0 });
    const remote = await runCli(['predict', 'half@1', '--input', request, '--grpc', server.grpc!.address, '--json'], { cwd: reg.work, env: reg.env });
    expect(remote.exitCode, remote.stdout + remote.stderr).toBe(0);
    expect(remote.json()).toEqual(expected);
    writeFileSync(request, JSON.stringify({ inputs: [{ name: 'x', shape: [1, 1], datatype: 'FP16', data: [1e5] }] }));
    const beyond = await reg.cli('predict', 'half@1', '--input', request);
    expect(beyond.exitCode).toBe(2);
    expect(beyond.stderr).toContain("input 'x': element 0 is 100000, expected a number within float16's range (±65504)");
  });
});

describe('Content-Encoding on request bodies', () => {
  const infer = { inputs: [{ name: 'input', shape: [1, 4], datatype: 'FP32', data: [1, 2, 3, 4] }] };
  const predict = { instances: [[1, 2, 3, 4]] };
  const json = (value: unknown) => Buffer.from(JSON.stringify(value));

  it('decompresses gzip and deflate (zlib-wrapped or raw) on KServe and TF Serving routes', async () => {
    const { server } = await served();
    const plain = await server.post('/v2/models/mlp/infer', infer);
    const plainPredict = await server.post('/v1/models/mlp:predict', predict);
    for (const [encoding, compress] of [['gzip', gzipSync], ['x-gzip', gzipSync], ['deflate', deflateSync], ['Deflate', deflateRawSync], ['identity', (b: Buffer) => b]] as const) {
      const v2 = await server.post('/v2/models/mlp/infer', compress(json(infer)), { 'content-encoding': encoding });
      expect(v2.status, `${encoding}: ${v2.raw.toString()}`).toBe(200);
      expect(v2.json).toEqual(plain.json);
      const v1 = await server.post('/v1/models/mlp:predict', compress(json(predict)), { 'content-encoding': encoding });
      expect(v1.status, encoding).toBe(200);
      expect(v1.json).toEqual(plainPredict.json);
    }
    // The binary extension's header length counts the JSON as sent before compression (as Triton's client does).
    const floats = Buffer.from(Float32Array.from([1, 2, 3, 4]).buffer);
    const header = json({ inputs: [{ name: 'input', shape: [1, 4], datatype: 'FP32', parameters: { binary_data_size: 16 } }] });
    const binary = await server.post('/v2/models/mlp/infer', gzipSync(Buffer.concat([header, floats])), { 'content-encoding': 'gzip', 'inference-header-content-length': String(header.length) });
    expect(binary.json).toEqual(plain.json);
    // Codings listed in the order applied are undone in reverse.
    const twice = await server.post('/v2/models/mlp/infer', gzipSync(deflateSync(json(infer))), { 'content-encoding': 'deflate, gzip' });
    expect(twice.json).toEqual(plain.json);
  });

  it('holds the decompressed body to --max-body-mb: a zip bomb is a 413, and the server goes on', async () => {
    const limit = 1 << 20;
    const { server } = await served({ maxBodyBytes: limit });
    // 64 MiB of JSON whitespace in about 64 KiB.
    const bomb = gzipSync(Buffer.concat([Buffer.from('{"inputs":'), Buffer.alloc(64 << 20, 0x20), Buffer.from('[]}')]), { level: 9 });
    expect(bomb.length).toBeLessThan(limit);
    for (const path of ['/v2/models/mlp/infer', '/v1/models/mlp:predict']) {
      const r = await server.post(path, bomb, { 'content-encoding': 'gzip' });
      expect(r.status, path).toBe(413);
      expect(r.json.error).toBe(`the gzip request body decompresses to more than the limit of ${limit} bytes (the server's --max-body-mb)`);
    }
    // Just under the limit once decompressed, and large enough to go to a parse process.
    const rows = Array.from({ length: 40_000 }, () => [1, 2, 3, 4]);
    const big = json({ inputs: [{ name: 'input', shape: [rows.length, 4], datatype: 'FP32', data: rows }] });
    expect(big.length).toBeGreaterThan(256 << 10);
    expect(big.length).toBeLessThan(limit);
    const ok = await server.post('/v2/models/mlp/infer', gzipSync(big), { 'content-encoding': 'gzip' });
    expect(ok.status, ok.raw.toString().slice(0, 200)).toBe(200);
    expect(ok.json.outputs[0].shape).toEqual([rows.length, 3]);
  });

  it('answers a corrupt stream with 400 and an encoding it cannot undo with 415', async () => {
    const { server } = await served();
    const truncated = gzipSync(json(infer)).subarray(0, 20);
    for (const [encoding, body] of [['gzip', json(infer)], ['gzip', truncated], ['deflate', Buffer.from('not deflate at all')]] as const) {
      const r = await server.post('/v2/models/mlp/infer', body, { 'content-encoding': encoding });
      expect(r.status, encoding).toBe(400);
      expect(r.json.error).toMatch(new RegExp(`^the request body is not valid ${encoding} data \\(Content-Encoding: ${encoding}\\): `));
    }
    for (const [path, encoding] of [['/v2/models/mlp/infer', 'br'], ['/v1/models/mlp:predict', 'zstd'], ['/v2/models/mlp/infer', 'gzip, compress']] as const) {
      const r = await server.post(path, json(infer), { 'content-encoding': encoding });
      expect(r.status, encoding).toBe(415);
      expect(r.headers.get('accept-encoding')).toBe('gzip, deflate');
      expect(r.json.error).toBe(`Content-Encoding "${encoding.split(', ').pop()}" is not supported; send the body uncompressed, or compressed with gzip or deflate`);
    }
    expect((await server.post('/v2/models/mlp/infer', infer)).status).toBe(200);
  });
});

describe('large JSON answers', () => {
  it('writes an answer of 200,003 values in slices, value for value, NaN and Infinity as null', async () => {
    const reg = await makeRegistry();
    expect((await reg.cli('register', writeModel(reg.work, 'wide.onnx', identity(DataType.FLOAT, ['n'])), '--name', 'wide')).exitCode).toBe(0);
    const server = await serveRegistry(reg);
    const values = Float32Array.from({ length: 200_003 }, (_, i) => (i - 100_000) / 3);
    values[70_000] = NaN;
    values[150_000] = -Infinity;
    const header = JSON.stringify({ id: 'wide-1', inputs: [{ name: 'x', shape: [values.length], datatype: 'FP32', parameters: { binary_data_size: values.byteLength } }] });
    const r = await server.post('/v2/models/wide/infer', Buffer.concat([Buffer.from(header), Buffer.from(values.buffer)]), { 'inference-header-content-length': String(header.length) });
    expect(r.status, r.raw.toString().slice(0, 200)).toBe(200);
    expect(r.headers.get('content-type')).toBe('application/json');
    const [output] = r.json.outputs;
    expect(r.json.id).toBe('wide-1');
    expect(output).toMatchObject({ name: 'y', datatype: 'FP32', shape: [values.length] });
    expect(output.data).toEqual(Array.from(values, (v) => (Number.isFinite(v) ? v : null)));
  });
});
