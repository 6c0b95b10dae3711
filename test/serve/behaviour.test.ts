import { Agent, request as httpRequest } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { deepMlp, mlp, randomFloats, writeModel } from '../../fixtures/models.js';
import { makeRegistry, type TestRegistry } from '../helpers/registry.js';
import { serveRegistry, type ServeOverrides, type TestServer } from '../helpers/serve.js';

/** Tiny requests (16 floats) to a model that takes milliseconds a run: requests queue. */
const SLOW_INPUT = 16;

async function registry(models: { name: string; file: string; model: Parameters<typeof writeModel>[2] }[]): Promise<TestRegistry> {
  const reg = await makeRegistry();
  for (const { name, file, model } of models) {
    const r = await reg.cli('register', writeModel(reg.work, file, model), '--name', name);
    expect(r.exitCode, r.stderr).toBe(0);
  }
  return reg;
}

const slowRequest = (seed: number) => ({ inputs: [{ name: 'input', shape: [1, SLOW_INPUT], datatype: 'FP32', data: Array.from(new Float32Array(randomFloats(SLOW_INPUT, seed).buffer)) }] });
const mlpRequest = (seed: number, rows = 1) => ({ inputs: [{ name: 'input', shape: [rows, 64], datatype: 'FP32', data: Array.from(new Float32Array(randomFloats(64 * rows, seed).buffer)) }] });

async function servedSlow(overrides: ServeOverrides = {}): Promise<TestServer> {
  const reg = await registry([{ name: 'slow', file: 'slow.onnx', model: deepMlp({ input: SLOW_INPUT, hidden: 2048, layers: 8, output: 4 }) }]);
  return serveRegistry(reg, overrides);
}

function metricValue(text: string, name: string): number {
  const line = text.split('\n').find((l) => l.startsWith(name));
  return line ? Number(line.split(' ').pop()) : NaN;
}

describe('serving behaviour', () => {
  it('merges concurrent requests into batches, with the same results as one by one', async () => {
    const reg = await registry([{ name: 'mlp', file: 'wide.onnx', model: mlp({ inputSize: 64, hiddenSize: 256, outputSize: 8, seed: 3 }) }]);
    const server = await serveRegistry(reg, { flags: { batchDelayMs: 20, maxBatch: 16 } });
    const alone: unknown[] = [];
    for (let i = 0; i < 12; i++) alone.push((await server.post('/v2/models/mlp/infer', mlpRequest(i, 1 + (i % 3)))).json.outputs);
    const before = await server.get('/metrics');
    const runsBefore = metricValue(before.text, 'maas_batch_requests_count{model="mlp"');
    const together = await Promise.all(Array.from({ length: 12 }, (_, i) => server.post('/v2/models/mlp/infer', mlpRequest(i, 1 + (i % 3)))));
    expect(together.map((r) => r.status)).toEqual(Array(12).fill(200));
    expect(together.map((r) => r.json.outputs)).toEqual(alone);
    const after = await server.get('/metrics');
    const runs = metricValue(after.text, 'maas_batch_requests_count{model="mlp"') - runsBefore;
    expect(runs).toBeLessThan(12); // 12 requests ran in fewer batches
    expect(metricValue(after.text, 'maas_batch_size_bucket{le="1",model="mlp"')).toBeLessThan(metricValue(after.text, 'maas_batch_size_count{model="mlp"'));
  });

  it('runs a tiny model inline on the HTTP thread, batched per turn, with the answers a worker gives', async () => {
    const reg = await registry([{ name: 'tiny', file: 'tiny.onnx', model: mlp({ inputSize: 64, hiddenSize: 16, outputSize: 4, seed: 5 }) }]);
    const inline = await serveRegistry(reg);
    expect(inline.logs.join('\n')).toMatch(/loaded tiny@1 .*\d+ µs a row, small requests inline/);
    const onWorker = await serveRegistry(reg, { flags: { inlineUs: 0 } });
    expect(onWorker.logs.join('\n')).not.toContain('inline');
    const unbatched = await serveRegistry(reg, { flags: { maxBatch: 1 } });
    expect(unbatched.logs.join('\n')).not.toContain('inline'); // nothing to merge: a worker beside the HTTP thread is faster
    const delayed = await serveRegistry(reg, { flags: { batchDelayMs: 20 } });
    expect(delayed.logs.join('\n')).not.toContain('inline'); // the delay is the queue's to keep
    const ask = (server: TestServer) => Promise.all(Array.from({ length: 24 }, (_, i) => server.post('/v2/models/tiny/infer', mlpRequest(i, 1 + (i % 3)))));
    const [a, b] = [await ask(inline), await ask(onWorker)];
    expect(a.map((r) => r.status)).toEqual(Array(24).fill(200));
    expect(a.map((r) => r.json.outputs)).toEqual(b.map((r) => r.json.outputs));
    const metrics = (await inline.get('/metrics')).text;
    expect(metricValue(metrics, 'maas_batch_requests_sum{model="tiny"')).toBe(24);
    expect(metricValue(metrics, 'maas_batch_requests_count{model="tiny"')).toBeLessThan(24);
  });

  it('merges requests that queue behind a busy worker without any delay', async () => {
    const server = await servedSlow();
    const results = await Promise.all(Array.from({ length: 16 }, (_, i) => server.post('/v2/models/slow/infer', slowRequest(i))));
    expect(results.every((r) => r.status === 200)).toBe(true);
    const metrics = (await server.get('/metrics')).text;
    expect(metricValue(metrics, 'maas_batch_requests_sum{model="slow"')).toBe(16);
    expect(metricValue(metrics, 'maas_batch_requests_count{model="slow"')).toBeLessThan(16);
  });

  it('answers 503 with Retry-After when the queue is full, and serves the rest', async () => {
    const server = await servedSlow({ flags: { maxQueue: 2, maxBatch: 1 } });
    const results = await Promise.all(Array.from({ length: 12 }, (_, i) => server.post('/v2/models/slow/infer', slowRequest(i))));
    const rejected = results.filter((r) => r.status === 503);
    expect(rejected.length).toBeGreaterThan(0);
    expect(rejected[0]!.headers.get('retry-after')).toBe('1');
    expect(rejected[0]!.json.error).toContain('--max-queue 2');
    expect(results.filter((r) => r.status === 200).length).toBeGreaterThanOrEqual(3);
    expect(results.every((r) => r.status === 200 || r.status === 503)).toBe(true);
  });

  it('answers 504 when a request outlives its deadline', async () => {
    const server = await servedSlow({ timeoutMs: 1, flags: { maxBatch: 1 } });
    const results = await Promise.all(Array.from({ length: 4 }, (_, i) => server.post('/v2/models/slow/infer', slowRequest(i))));
    expect(results.some((r) => r.status === 504)).toBe(true);
    expect((await server.get('/v2/health/live')).status).toBe(200);
  });

  it('answers 413 for a body over the limit, declared or streamed', async () => {
    const reg = await registry([{ name: 'mlp', file: 'm.onnx', model: mlp({ inputSize: 64 }) }]);
    const server = await serveRegistry(reg, { maxBodyBytes: 4096 });
    const big = await server.post('/v2/models/mlp/infer', mlpRequest(1, 8));
    expect(big.status).toBe(413);
    expect(big.json.error).toContain("larger than the limit of 4096 bytes (the server's --max-body-mb)");
    const streamed = await fetch(`${server.url}/v2/models/mlp/infer`, {
      method: 'POST',
      body: new ReadableStream({ start(c) { c.enqueue(new TextEncoder().encode(' '.repeat(8192))); c.close(); } }),
      duplex: 'half',
    } as RequestInit);
    expect(streamed.status).toBe(413);
    expect((await server.post('/v2/models/mlp/infer', mlpRequest(1))).status).toBe(200);
  });

  it('requires the bearer token on every route but liveness', async () => {
    const reg = await registry([{ name: 'mlp', file: 'm.onnx', model: mlp({ inputSize: 64 }) }]);
    const server = await serveRegistry(reg, { token: 's3cret' });
    expect((await server.get('/v2/health/live')).status).toBe(200);
    for (const path of ['/v2/health/ready', '/v2', '/v2/models/mlp', '/metrics', '/v1/models/mlp']) {
      const r = await server.get(path);
      expect(r.status, path).toBe(401);
      expect(r.headers.get('www-authenticate')).toBe('Bearer realm="maas"');
    }
    expect((await server.post('/v2/models/mlp/infer', mlpRequest(1), { authorization: 'Bearer wrong' })).status).toBe(401);
    expect((await server.post('/v2/models/mlp/infer', mlpRequest(1), { authorization: 'Bearer s3cret' })).status).toBe(200);
    expect((await server.get('/metrics', { authorization: 'Bearer s3cret' })).status).toBe(200);
  });

  it('refuses a non-loopback address without a token unless --insecure', async () => {
    const reg = await registry([{ name: 'mlp', file: 'm.onnx', model: mlp({ inputSize: 64 }) }]);
    await expect(serveRegistry(reg, { host: '0.0.0.0' })).rejects.toMatchObject({ code: 'MAAS_USAGE', message: 'refusing to serve on 0.0.0.0 without a token' });
    const open = await serveRegistry(reg, { host: '0.0.0.0', insecure: true });
    expect((await fetch(`http://127.0.0.1:${open.port}/v2/health/live`)).status).toBe(200);
  });

  it('answers a corpus of bad requests with 4xx and keeps serving', async () => {
    const reg = await registry([
      { name: 'mlp', file: 'm.onnx', model: mlp({ inputSize: 64 }) },
    ]);
    const server = await serveRegistry(reg);
    const valid = mlpRequest(1);
    const corpus: [string, string, unknown, Record<string, string>?][] = [
      ['wrong dtype', '/v2/models/mlp/infer', { inputs: [{ ...valid.inputs[0], datatype: 'INT32' }] }],
      ['wrong shape', '/v2/models/mlp/infer', { inputs: [{ ...valid.inputs[0], shape: [1, 63] }] }],
      ['data/shape count mismatch', '/v2/models/mlp/infer', { inputs: [{ ...valid.inputs[0], shape: [2, 64] }] }],
      ['missing input', '/v2/models/mlp/infer', { inputs: [{ name: 'other', shape: [1], datatype: 'FP32', data: [1] }] }],
      ['no inputs', '/v2/models/mlp/infer', {}],
      ['string element', '/v2/models/mlp/infer', { inputs: [{ ...valid.inputs[0], data: ['x', ...valid.inputs[0]!.data.slice(1)] }] }],
      ['unknown output', '/v2/models/mlp/infer', { ...valid, outputs: [{ name: 'nope' }] }],
      ['unknown model', '/v2/models/ghost/infer', valid],
      ['unknown version', '/v2/models/mlp/versions/7/infer', valid],
      ['invalid JSON', '/v2/models/mlp/infer', '{"inputs": [{'],
      ['NaN literal', '/v2/models/mlp/infer', JSON.stringify(valid).replace('"data":[', '"data":[NaN,')],
      ['Infinity literal', '/v1/models/mlp:predict', '{"instances": [[Infinity]]}'],
      ['header length beyond body', '/v2/models/mlp/infer', JSON.stringify(valid), { 'inference-header-content-length': '999999' }],
      ['binary size beyond body', '/v2/models/mlp/infer', JSON.stringify({ inputs: [{ name: 'input', shape: [1, 64], datatype: 'FP32', parameters: { binary_data_size: 256 } }] }), { 'inference-header-content-length': '999' }],
      ['10 MB of garbage', '/v2/models/mlp/infer', Buffer.from(randomFloats(10 * 1024 * 256, 9))],
      ['an array body', '/v2/models/mlp/infer', '[1,2,3]'],
      ['TF unknown input', '/v1/models/mlp:predict', { inputs: { nope: [[1]] } }],
    ];
    for (const [label, path, body, headers] of corpus) {
      const r = await server.post(path, body, headers);
      expect(r.status, `${label}: ${r.raw.toString().slice(0, 200)}`).toBeGreaterThanOrEqual(400);
      expect(r.status, label).toBeLessThan(500);
      expect(typeof r.json?.error, label).toBe('string');
    }
    expect((await server.get('/v2/health/live')).json).toEqual({ live: true });
    expect((await server.post('/v2/models/mlp/infer', valid)).status).toBe(200);
  });

  it('hot-reloads a new version and an alias move under load without failing a request', async () => {
    const reg = await registry([{ name: 'mlp', file: 'v1.onnx', model: mlp({ inputSize: 64, seed: 1 }) }]);
    const server = await serveRegistry(reg, { pollMs: 50 });
    const statuses: number[] = [];
    const versions = new Set<string>();
    let running = true;
    const client = async () => {
      while (running) {
        const r = await server.post('/v2/models/mlp/infer', mlpRequest(statuses.length));
        statuses.push(r.status);
        if (r.json?.model_version) versions.add(r.json.model_version);
      }
    };
    const clients = Array.from({ length: 4 }, client);
    await sleep(200);
    expect((await reg.cli('register', writeModel(reg.work, 'v2.onnx', mlp({ inputSize: 64, seed: 2 })), '--name', 'mlp')).exitCode).toBe(0);
    for (let i = 0; i < 100 && !versions.has('2'); i++) await sleep(50);
    expect((await reg.cli('tag', 'mlp@1', 'stable')).exitCode).toBe(0);
    for (let i = 0; i < 100 && (await server.get('/v2/models/mlp/versions/stable/ready')).status !== 200; i++) await sleep(50);
    await sleep(200);
    running = false;
    await Promise.all(clients);
    expect(versions).toEqual(new Set(['1', '2']));
    expect(statuses.length).toBeGreaterThan(20);
    expect(statuses.filter((s) => s !== 200)).toEqual([]);
    expect((await server.get('/v2/models/mlp')).json.versions.sort()).toEqual(['1', '2']);
    expect(server.logs).toContain('mlp: now serving version 2 (was 1)');
    // Moving the alias away unloads version 1 once its requests are done.
    expect((await reg.cli('tag', 'mlp', 'stable', '--delete')).exitCode).toBe(0);
    for (let i = 0; i < 100 && !server.logs.includes('unloaded mlp@1 (no longer served)'); i++) await sleep(50);
    expect(server.logs).toContain('unloaded mlp@1 (no longer served)');
    expect((await server.get('/v2/models/mlp/versions/1')).status).toBe(404);
  });

  it('keeps serving, and says why, when a served model disappears from the registry', async () => {
    const reg = await registry([{ name: 'mlp', file: 'm.onnx', model: mlp({ inputSize: 64 }) }]);
    const server = await serveRegistry(reg, { pollMs: 50, targets: [{ name: 'mlp', selector: { kind: 'latest' } }] });
    expect((await reg.cli('rm', 'mlp@1')).exitCode).toBe(0);
    for (let i = 0; i < 100 && !server.logs.some((l) => l.startsWith('mlp@latest no longer resolves')); i++) await sleep(50);
    expect(server.logs.find((l) => l.startsWith('mlp@latest no longer resolves'))).toMatch(/no model named 'mlp'.*still serving mlp@1 until it does/);
    expect((await server.post('/v2/models/mlp/infer', mlpRequest(1))).status).toBe(200);
  });

  it('finishes requests in flight on shutdown, then refuses new connections', async () => {
    // The batcher holds them (waiting for company) until the server is closing.
    const server = await servedSlow({ flags: { maxBatch: 8, batchDelayMs: 500 } });
    const inFlight = Array.from({ length: 6 }, (_, i) => server.post('/v2/models/slow/infer', slowRequest(i)));
    // Close once the server holds all six (client and server share this event loop: a sleep would race).
    while (metricValue((await server.get('/metrics')).text, 'maas_queue_depth{model="slow"') < 6) await sleep(5);
    await server.close();
    const results = await Promise.all(inFlight);
    expect(results.map((r) => r.status)).toEqual(Array(6).fill(200));
    await expect(fetch(`${server.url}/v2/health/live`)).rejects.toThrow();
  });

  it('answers or refuses, never resets, a request sent on a keep-alive connection as the server closes', async () => {
    const reg = await makeRegistry();
    expect((await reg.cli('register', reg.fixture('mlp.onnx'))).exitCode).toBe(0);
    const server = await serveRegistry(reg);
    const agent = new Agent({ keepAlive: true, maxSockets: 8 });
    const body = JSON.stringify({ inputs: [{ name: 'input', shape: [1, 4], datatype: 'FP32', data: [1, 2, 3, 4] }] });
    const outcomes: string[] = [];
    const send = () => new Promise<string>((resolve) => {
      const req = httpRequest(`${server.url}/v2/models/mlp/infer`, { method: 'POST', agent, headers: { 'content-type': 'application/json' } }, (res) => {
        res.resume();
        res.on('end', () => resolve(String(res.statusCode)));
      });
      req.on('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? error.message));
      req.end(body);
    });
    let stopping = false;
    const workers = Array.from({ length: 8 }, async () => {
      for (;;) {
        const outcome = await send();
        outcomes.push(outcome);
        // A new connection refused is the server gone; only a request cut on an open one is a failure.
        if (outcome === 'ECONNREFUSED' || (stopping && outcome !== '200' && outcome !== '503')) return;
      }
    });
    while (outcomes.length < 200) await sleep(5);
    stopping = true;
    await server.close();
    await Promise.all(workers);
    agent.destroy();
    const cut = outcomes.filter((o) => !['200', '503', 'ECONNREFUSED'].includes(o));
    expect(cut).toEqual([]);
  });
});
