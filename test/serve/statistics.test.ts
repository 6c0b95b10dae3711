/**
 * Triton's statistics extension over REST and gRPC: what a Triton dashboard or perf_analyzer
 * reads, counted where the inference core sees each request and each batch run.
 */
import { describe, expect, it } from 'vitest';
import { grpcClient, statusOf } from '../helpers/grpc.js';
import { makeRegistry } from '../helpers/registry.js';
import { serveRegistry } from '../helpers/serve.js';
import { VersionStatistics } from '../../src/serve/statistics.js';

const row = (seed: number) => [seed, seed + 1, seed + 2, seed + 3];
const inferBody = (rows: number[][]) => ({ inputs: [{ name: 'input', shape: [rows.length, 4], datatype: 'FP32', data: rows.flat() }] });

async function served(flags: Record<string, number>) {
  const reg = await makeRegistry();
  for (const [file, name] of [['mlp.onnx', 'mlp'], ['multi_io.onnx', 'ranker']]) {
    const r = await reg.cli('register', reg.fixture(file!), '--name', name!);
    expect(r.exitCode, r.stderr).toBe(0);
  }
  // inlineUs 0: the tiny MLP runs on a worker, through the queue the batch delay holds.
  const server = await serveRegistry(reg, { grpcPort: 0, flags: { inlineUs: 0, ...flags } });
  return { server, client: grpcClient(server.grpc!.address) };
}

interface Duration {
  count: number;
  ns: number;
}

/** gRPC's uint64 fields arrive as decimal strings (exact); as numbers they compare with REST's. */
function numbers(value: unknown): unknown {
  return JSON.parse(JSON.stringify(value), (key, v) => (typeof v === 'string' && key !== 'name' && key !== 'version' && key !== 'type' ? Number(v) : v));
}

describe("Triton's statistics extension", () => {
  it('counts rows, requests, runs and batch sizes, the same over REST and gRPC', async () => {
    const { server, client } = await served({ maxBatch: 8, batchDelayMs: 150 });
    expect((await server.get('/v2')).json.extensions).toEqual(['binary_tensor_data', 'model_configuration', 'model_repository', 'statistics']);

    // Before any request: zeros, and the memory its load took.
    const idle = (await server.get('/v2/models/mlp/stats')).json;
    expect(idle.model_stats).toHaveLength(1);
    expect(idle.model_stats[0]).toMatchObject({ name: 'mlp', version: '1', last_inference: 0, inference_count: 0, execution_count: 0, batch_stats: [] });
    expect(idle.model_stats[0].inference_stats.success).toEqual({ count: 0, ns: 0 });
    expect(idle.model_stats[0].memory_usage).toEqual([{ type: 'CPU', id: 0, byte_size: expect.any(Number) }]);

    const before = Date.now();
    // A 3-row request alone: it waits out the batch delay and runs as a batch of 3.
    expect((await server.post('/v2/models/mlp/infer', inferBody([row(0), row(1), row(2)]))).status).toBe(200);
    // Then 5 one-row requests at once: merged into fewer runs than requests.
    const answers = await Promise.all([1, 2, 3, 4, 5].map((i) => server.post('/v2/models/mlp/infer', inferBody([row(i)]))));
    expect(answers.map((a) => a.status)).toEqual([200, 200, 200, 200, 200]);

    const stats = (await server.get('/v2/models/mlp/stats')).json.model_stats[0];
    expect(stats.inference_count).toBe(8); // rows, not requests
    expect(stats.last_inference).toBeGreaterThanOrEqual(before);
    expect(stats.last_inference).toBeLessThanOrEqual(Date.now());
    const inference = stats.inference_stats as Record<'success' | 'fail' | 'queue' | 'compute_input' | 'compute_infer' | 'compute_output', Duration>;
    expect(inference.success.count).toBe(6);
    expect(inference.fail).toEqual({ count: 0, ns: 0 });
    for (const key of ['queue', 'compute_input', 'compute_infer', 'compute_output'] as const) expect(inference[key].count, key).toBe(6);
    // The batch delay held every request in the queue; a request's whole time includes its wait and its run.
    expect(inference.queue.ns).toBeGreaterThan(0.1e9);
    expect(inference.success.ns).toBeGreaterThan(inference.queue.ns + inference.compute_infer.ns / 6);
    expect(inference.compute_infer.ns).toBeGreaterThan(0);

    const sizes = stats.batch_stats as { batch_size: number; compute_infer: Duration; compute_input: Duration; compute_output: Duration }[];
    expect(sizes.map((s) => s.batch_size)).toEqual([...sizes.map((s) => s.batch_size)].sort((a, b) => a - b));
    expect(sizes.find((s) => s.batch_size === 3)?.compute_infer.count).toBeGreaterThanOrEqual(1);
    const runs = sizes.reduce((n, s) => n + s.compute_infer.count, 0);
    expect(stats.execution_count).toBe(runs);
    expect(runs).toBeLessThan(6); // the five single rows shared runs
    expect(sizes.reduce((n, s) => n + s.batch_size * s.compute_infer.count, 0)).toBe(8);
    for (const s of sizes) expect(s.compute_input.count).toBe(s.compute_infer.count);

    // gRPC's ModelStatistics answers the same, field for field.
    expect(numbers(await client.call('ModelStatistics', { name: 'mlp' }))).toEqual((await server.get('/v2/models/mlp/stats')).json);
    // Every model (by name), one version, an alias of none; unknown names are 404 / NOT_FOUND.
    const all = (await server.get('/v2/models/stats')).json.model_stats as { name: string; inference_count: number }[];
    expect(all.map((s) => s.name)).toEqual(['mlp', 'ranker']);
    expect(all[1]!.inference_count).toBe(0);
    expect(numbers(await client.call('ModelStatistics', {}))).toEqual((await server.get('/v2/models/stats')).json);
    expect((await server.get('/v2/models/mlp/versions/1/stats')).json.model_stats).toHaveLength(1);
    expect((await server.get('/v2/models/mlp/versions/latest/stats')).json.model_stats[0].version).toBe('1');
    expect((await server.get('/v2/models/nope/stats')).status).toBe(404);
    expect((await server.get('/v2/models/mlp/versions/7/stats')).status).toBe(404);
    expect(await statusOf(client.call('ModelStatistics', { name: 'nope' }))).toBe('NOT_FOUND');
    expect(await statusOf(client.call('ModelStatistics', { name: 'mlp', version: '7' }))).toBe('NOT_FOUND');
  });

  it('counts a request turned away by a full queue as a failure, with no rows and no run', async () => {
    // One request waits out the batch delay in the queue; the second finds it full (503).
    const { server } = await served({ maxBatch: 8, batchDelayMs: 400, maxQueue: 1 });
    const [first, second] = await Promise.all([
      server.post('/v2/models/mlp/infer', inferBody([row(0)])),
      new Promise((r) => setTimeout(r, 50)).then(() => server.post('/v2/models/mlp/infer', inferBody([row(1)]))),
    ]);
    expect([first.status, second.status]).toEqual([200, 503]);
    const stats = (await server.get('/v2/models/mlp/stats')).json.model_stats[0];
    expect(stats.inference_stats.success.count).toBe(1);
    expect(stats.inference_stats.fail.count).toBe(1);
    expect(stats.inference_count).toBe(1);
    expect(stats.execution_count).toBe(1);
    expect(stats.batch_stats).toEqual([expect.objectContaining({ batch_size: 1 })]);
  });

  it('gives compute times to the requests a run answered, not to those that failed while it ran', () => {
    const stats = new VersionStatistics(() => 1_000);
    // A batch of three whose run took 2 ms, two of them timed out meanwhile.
    stats.observer.batch({ ok: true, rows: 3, requests: 3, answered: 1, inputMs: 0.1, inferMs: 2, outputMs: 0.1 });
    stats.observer.batch({ ok: false, rows: 1, requests: 1, answered: 1, inputMs: 0.1, inferMs: 1, outputMs: 0 });
    expect(stats.compute.compute_infer).toEqual({ count: 1, ns: 2_000_000 });
    expect(stats.executionCount).toBe(1); // the failed run is no execution
    expect(stats.bySize.get(3)?.compute_infer).toEqual({ count: 1, ns: 2_000_000 });
    expect(stats.bySize.has(1)).toBe(false);
  });

  it('needs the token, like every route but liveness', async () => {
    const reg = await makeRegistry();
    await reg.cli('register', reg.fixture('mlp.onnx'));
    const server = await serveRegistry(reg, { token: 's3cret', grpcPort: 0 });
    expect((await server.get('/v2/models/stats')).status).toBe(401);
    expect((await server.get('/v2/models/mlp/stats')).status).toBe(401);
    expect((await server.get('/v2/models/stats', { authorization: 'Bearer s3cret' })).status).toBe(200);
    const client = grpcClient(server.grpc!.address);
    expect(await statusOf(client.call('ModelStatistics', {}))).toBe('UNAUTHENTICATED');
    expect(await statusOf(client.call('ModelStatistics', {}, { token: 's3cret' }))).toBe('OK');
  });
});
