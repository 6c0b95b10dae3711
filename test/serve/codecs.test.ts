/**
 * What a request body may carry besides plain JSON numbers: TF Serving's {"b64": ...} strings,
 * and FP16 as JSON numbers where the protocol has no binary form.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
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
