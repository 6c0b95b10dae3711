/**
 * Many models on one server: Triton's repository extension (index, load, unload) over REST and
 * gRPC, load on first request under a budget (LRU eviction of idle, unpinned versions; one load
 * shared by concurrent requests), keep-alive, pins, swaps under a tight budget, warm-up samples,
 * the OpenAPI document, and the `deploy` / `undeploy` / `ps` clients.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Validator } from '@seriousme/openapi-schema-validator';
import { describe, expect, it } from 'vitest';
import { largeMatmul, mlp, writeModel } from '../../fixtures/models.js';
import { type ModelInit, valueInfoProto } from '../../src/onnx/build.js';
import { DataType } from '../../src/onnx/dtypes.js';
import { ROUTES } from '../../src/serve/http/routes.js';
import { grpcClient, statusOf } from '../helpers/grpc.js';
import { HAVE_REGISTRY, REQUIRE_TOOLS, startOciRegistry } from '../helpers/oci-registry.js';
import { makeRegistry, type TestRegistry } from '../helpers/registry.js';
import { type TestServer, serveRegistry } from '../helpers/serve.js';

const INFER = { inputs: [{ name: 'input', shape: [1, 4], datatype: 'FP32', data: [1, 2, 3, 4] }] };

/** A registry with one mlp per name (different weights each). */
async function models(names: string[], reg?: TestRegistry): Promise<TestRegistry> {
  const registry = reg ?? (await makeRegistry());
  for (const [i, name] of names.entries()) {
    const r = await registry.cli('register', writeModel(registry.work, `${name}.onnx`, mlp({ seed: 10 + i })), '--name', name);
    expect(r.exitCode, r.stderr).toBe(0);
  }
  return registry;
}

type Status = { name: string; version: string; state: string; reason: string; resident_bytes: number | null; file_bytes: number; pinned: boolean };

async function index(server: TestServer, ready = false): Promise<Status[]> {
  const r = await server.post('/v2/repository/index', { ready });
  expect(r.status, JSON.stringify(r.json)).toBe(200);
  return r.json as Status[];
}

async function states(server: TestServer): Promise<Record<string, string>> {
  return Object.fromEntries((await index(server)).map((s) => [`${s.name}@${s.version}`, s.state]));
}

/** `connections` clients sending infer requests to `path` until stop() is called; stop() gives every status. */
function loadOn(server: TestServer, path: string, connections = 4): { stop: () => Promise<number[]> } {
  let running = true;
  const statuses: number[] = [];
  const loops = Array.from({ length: connections }, async () => {
    while (running) statuses.push((await server.post(path, INFER)).status);
  });
  return { stop: async () => { running = false; await Promise.all(loops); return statuses; } };
}

async function metric(server: TestServer, line: RegExp): Promise<number | undefined> {
  const text = (await server.get('/metrics')).text;
  const found = text.split('\n').find((l) => line.test(l));
  return found === undefined ? undefined : Number(found.split(' ').at(-1));
}

async function until(what: string, check: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

describe("Triton's repository extension", () => {
  it('lists every version it could load, and loads and unloads over REST and gRPC while another model is under load, failing none of its requests', async () => {
    const reg = await models(['hot', 'cold']);
    expect((await reg.cli('register', writeModel(reg.work, 'cold2.onnx', mlp({ seed: 99 })), '--name', 'cold')).exitCode).toBe(0);
    const server = await serveRegistry(reg, { grpcPort: 0 });
    const grpc = grpcClient(server.grpc!.address);
    const traffic = loadOn(server, '/v2/models/hot/infer');

    const before = await index(server);
    expect(before.map((s) => `${s.name}@${s.version} ${s.state}`)).toEqual(['cold@1 UNAVAILABLE', 'cold@2 READY', 'hot@1 READY']);
    expect(before[0]!.reason).toMatch(/not in the version policy latest:1\+aliases/);
    expect((await index(server, true)).map((s) => `${s.name}@${s.version}`)).toEqual(['cold@2', 'hot@1']);

    // REST: load a version outside the policy, then unload the model.
    const loaded = await server.post('/v2/repository/models/cold/load', { parameters: { version: 1 } });
    expect(loaded.status, JSON.stringify(loaded.json)).toBe(200);
    expect(loaded.json.versions).toMatchObject([{ name: 'cold', version: '1', state: 'READY' }]);
    expect((await server.post('/v2/models/cold/versions/1/infer', INFER)).status).toBe(200);
    const unloaded = await server.post('/v2/repository/models/cold/unload', {});
    expect(unloaded.status).toBe(200);
    expect(await states(server)).toMatchObject({ 'cold@1': 'UNAVAILABLE', 'cold@2': 'UNAVAILABLE', 'hot@1': 'READY' });
    const refused = await server.post('/v2/models/cold/infer', INFER);
    expect(refused.status).toBe(503);
    expect(refused.json.error).toMatch(/unloaded through the management API/);
    expect((await index(server)).find((s) => s.version === '2' && s.name === 'cold')!.reason).toBe('unloaded through the management API');

    // gRPC: the same three calls, Triton's messages.
    expect(await statusOf(grpc.call('RepositoryModelLoad', { model_name: 'cold' }))).toBe('OK');
    expect((await grpc.call('ModelReady', { name: 'cold' })).ready).toBe(true);
    const grpcIndex = await grpc.call('RepositoryIndex', { ready: true });
    expect(grpcIndex.models.map((m: { name: string; version: string; state: string }) => `${m.name}@${m.version} ${m.state}`)).toEqual(['cold@2 READY', 'hot@1 READY']);
    expect(await statusOf(grpc.call('RepositoryModelUnload', { model_name: 'cold', parameters: { version: { string_param: '2' } } }))).toBe('OK');
    expect((await grpc.call('ModelReady', { name: 'cold' })).ready).toBe(false);
    expect(await statusOf(grpc.call('RepositoryModelLoad', { model_name: 'nope' }))).toBe('NOT_FOUND');
    expect(await statusOf(grpc.call('RepositoryModelLoad', { model_name: 'cold', parameters: { source: { string_param: 'oci-layout:/etc' } } }))).toBe('INVALID_ARGUMENT');

    const statuses = await traffic.stop();
    expect(statuses.length).toBeGreaterThan(20);
    expect(statuses.filter((s) => s !== 200)).toEqual([]);
  });

  it('answers bad management requests with 4xx and the fix, and refuses management off loopback without a token', async () => {
    const reg = await models(['m']);
    const server = await serveRegistry(reg);
    expect((await server.post('/v2/repository/models/nope/load', {})).status).toBe(404);
    expect((await server.post('/v2/repository/models/m/load', { parameters: { version: 7 } })).status).toBe(404);
    expect((await server.post('/v2/repository/models/m/load', { parameters: { version: [1] } })).status).toBe(400);
    // Triton's configuration and file overrides would change the model: refused, not ignored.
    for (const parameters of [{ config: '{"max_batch_size":4}' }, { 'file:1/model.onnx': 'AAAA' }]) {
      const refused = await server.post('/v2/repository/models/m/load', { parameters });
      expect(refused.status, JSON.stringify(parameters)).toBe(400);
      expect(refused.json.error).toContain("overrides Triton's model configuration or files");
    }
    expect((await server.post('/v2/repository/models/m/load', '{"parameters":')).status).toBe(400);
    expect((await server.post('/v2/repository/index', { ready: 'yes' })).status).toBe(400);
    const layout = await server.post('/v2/repository/models/m/load', { parameters: { source: 'oci-layout:/tmp' } });
    expect(layout.status).toBe(400);
    expect(layout.json.error).toMatch(/oci:\/\//);

    const open = await serveRegistry(reg, { host: '0.0.0.0', insecure: true });
    const forbidden = await fetch(`http://127.0.0.1:${open.port}/v2/repository/index`, { method: 'POST', body: '{}' });
    expect(forbidden.status).toBe(403);
    expect(((await forbidden.json()) as { error: string }).error).toMatch(/management API is off on 0\.0\.0\.0 without a token/);
    expect((await fetch(`http://127.0.0.1:${open.port}/v2/models/m/infer`, { method: 'POST', body: JSON.stringify(INFER) })).status).toBe(200);
  });
});

describe('a memory budget', () => {
  it('loads on first request and evicts the least recently used idle version; a request for an evicted one waits and answers as before', async () => {
    const reg = await models(['a', 'b', 'c']);
    const server = await serveRegistry(reg, { budget: { models: 2 } });
    expect(await states(server)).toEqual({ 'a@1': 'UNAVAILABLE', 'b@1': 'UNAVAILABLE', 'c@1': 'UNAVAILABLE' });
    expect((await index(server))[0]!.reason).toBe('not loaded yet: loads on its first request');

    const first = await server.post('/v2/models/b/infer', INFER);
    expect(first.status).toBe(200);
    expect((await server.post('/v2/models/a/infer', INFER)).status).toBe(200);
    expect((await server.post('/v2/models/b/infer', INFER)).status).toBe(200); // b is now the most recent
    expect((await server.post('/v2/models/c/infer', INFER)).status).toBe(200); // evicts a, the least recent
    expect(await states(server)).toEqual({ 'a@1': 'UNAVAILABLE', 'b@1': 'READY', 'c@1': 'READY' });
    expect(server.logs).toContain('unloaded a@1 (evicted: --max-loaded-models)');
    expect((await index(server))[0]!.reason).toBe('evicted (max loaded models): loads again on its next request');

    const again = await server.post('/v2/models/b/infer', INFER);
    expect(again.json.outputs).toEqual(first.json.outputs);
    const back = await server.post('/v2/models/a/infer', INFER); // waits for its load, evicting c
    expect(back.status).toBe(200);
    expect(await states(server)).toEqual({ 'a@1': 'READY', 'b@1': 'READY', 'c@1': 'UNAVAILABLE' });
    expect(await metric(server, /^maas_model_evictions_total\{model="a",reason="max_models"\}/)).toBe(1);
    expect(await metric(server, /^maas_model_loads_total\{model="a",version="1"\}/)).toBe(2);
    expect(await metric(server, /^maas_models_loaded /)).toBe(2);
  });

  it('shares one load between concurrent first requests', async () => {
    const reg = await models(['m']);
    const server = await serveRegistry(reg, { budget: { models: 4 } });
    const answers = await Promise.all(Array.from({ length: 24 }, () => server.post('/v2/models/m/infer', INFER)));
    expect(answers.map((a) => a.status)).toEqual(Array(24).fill(200));
    expect(server.logs.filter((l) => l.startsWith('loaded m@1'))).toHaveLength(1);
    expect(await metric(server, /^maas_model_loads_total\{model="m",version="1"\}/)).toBe(1);
  });

  it('under --max-loaded-models 1, requests for two models at once all answer: a waiting load is not idle, and a load waits for room', async () => {
    const reg = await models(['m', 'n']);
    const server = await serveRegistry(reg, { budget: { models: 1 } });
    for (let round = 0; round < 3; round++) {
      const answers = await Promise.all(Array.from({ length: 6 }, (_, i) => server.post(`/v2/models/${i % 2 ? 'n' : 'm'}/infer`, INFER)));
      expect(answers.map((a) => `${a.status} ${a.status === 200 ? '' : JSON.stringify(a.json)}`)).toEqual(Array(6).fill('200 '));
    }
  });

  it('a version that cannot fit beside the pinned ones is 507 with what it needs, and nothing is evicted for it', async () => {
    const reg = await models(['pinned', 'x']);
    const server = await serveRegistry(reg, { budget: { models: 1 }, pins: [{ name: 'pinned' }] });
    const refused = await server.post('/v2/models/x/infer', INFER);
    expect(refused.status).toBe(507);
    expect(refused.headers.get('retry-after')).toBeNull();
    expect(refused.json.error).toBe('x@1 does not fit --max-loaded-models 1: 1 pinned version is loaded');
    expect((await server.post('/v2/models/x/infer', INFER)).status).toBe(507); // each time, not a failed load to wait out
    expect(await states(server)).toMatchObject({ 'pinned@1': 'READY', 'x@1': 'UNAVAILABLE' });
    // Its weights (564 B) over the budget: refused before loading.
    const tiny = await serveRegistry(await models(['y']), { budget: { bytes: 100 } });
    const tooBig = await tiny.post('/v2/models/y/infer', INFER);
    expect(tooBig.status).toBe(507);
    expect(tooBig.json.error).toMatch(/^y@1 needs about 564 B, and the memory budget is 100 B$/);
    // Its weights fit, its measured memory does not: it answers, and the log says the budget is exceeded.
    const small = await serveRegistry(await models(['z']), { budget: { bytes: 1000 } });
    expect((await small.post('/v2/models/z/infer', INFER)).status).toBe(200);
    expect(small.logs.join('\n')).toMatch(/z@1 is loaded at .+ resident, over the budget: .*raise --memory-budget/);
  });

  it('keeps the measured memory of what is loaded under --memory-budget, evicting the least recently used', async () => {
    const reg = await makeRegistry();
    for (const name of ['a', 'b', 'c', 'd']) {
      expect((await reg.cli('register', writeModel(reg.work, `${name}.onnx`, largeMatmul(16 << 20)), '--name', name)).exitCode).toBe(0);
    }
    const budget = 150e6;
    const server = await serveRegistry(reg, { budget: { bytes: budget } });
    const side = 2048;
    const request = { inputs: [{ name: 'input', shape: [1, side], datatype: 'FP32', data: Array(side).fill(0.5) }] };
    const used: string[] = []; // least recent first
    let evictions = 0;
    for (const name of ['a', 'b', 'c', 'd', 'a', 'c']) {
      const before = (await index(server, true)).map((s) => s.name);
      expect((await server.post(`/v2/models/${name}/infer`, request)).status).toBe(200);
      const loaded = await index(server, true);
      const total = loaded.reduce((n, s) => n + s.resident_bytes!, 0);
      // Measured, never below the weights; within the budget unless one version alone exceeds it.
      for (const s of loaded) expect(s.resident_bytes!).toBeGreaterThanOrEqual(s.file_bytes);
      if (loaded.length > 1) expect(total).toBeLessThanOrEqual(budget);
      // Whatever left was idle and the least recently used of those loaded.
      const gone = before.filter((n) => !loaded.some((s) => s.name === n));
      const order = used.filter((n) => before.includes(n) && n !== name);
      expect(gone).toEqual(order.slice(0, gone.length));
      evictions += gone.length;
      if (used.includes(name)) used.splice(used.indexOf(name), 1);
      used.push(name);
    }
    expect(evictions).toBeGreaterThan(0);
    expect(await metric(server, /^maas_memory_budget_bytes /)).toBe(budget);
  });

  it('never evicts a pinned version, and loads it at start', async () => {
    const reg = await models(['pinned', 'x', 'y', 'z']);
    const server = await serveRegistry(reg, { budget: { models: 2 }, pins: [{ name: 'pinned' }], flags: { keepAliveMs: 300 } });
    expect(await states(server)).toMatchObject({ 'pinned@1': 'READY', 'x@1': 'UNAVAILABLE' });
    for (const name of ['x', 'y', 'z', 'x']) expect((await server.post(`/v2/models/${name}/infer`, INFER)).status).toBe(200);
    await sleep(1500); // past keep-alive, twice over the sweep
    const after = await index(server);
    expect(after.find((s) => s.name === 'pinned')).toMatchObject({ state: 'READY', pinned: true });
    expect(server.logs.filter((l) => l.startsWith('unloaded pinned'))).toEqual([]);
  });

  it('refuses a pin that names a model it does not serve', async () => {
    const reg = await models(['m']);
    await expect(serveRegistry(reg, { targets: [{ name: 'm' }], pins: [{ name: 'other' }] })).rejects.toThrow(/--pin other names a model this server does not serve/);
  });

  it('refuses to start when a pinned version can never fit the budget, rather than serve without it', async () => {
    const reg = await models(['pinned', 'x']);
    await expect(serveRegistry(reg, { budget: { bytes: 100 }, pins: [{ name: 'pinned' }] })).rejects.toThrow(/pinned@1 needs about 564 B, and the memory budget is 100 B/);
  });
});

describe('keep-alive', () => {
  it('unloads a version idle that long (flag or maas.yaml per model); its next request loads it again', async () => {
    const reg = await models(['brief', 'lasting']);
    writeFileSync(join(reg.dir, 'maas.yaml'), `${readFileSync(join(reg.dir, 'maas.yaml'), 'utf8')}models:\n  brief:\n    keepAlive: 1s\n`);
    const server = await serveRegistry(reg);
    expect(await states(server)).toEqual({ 'brief@1': 'READY', 'lasting@1': 'READY' });
    const [idle] = await index(server);
    expect(idle!.name).toBe('brief');
    await until('brief to unload', async () => (await states(server))['brief@1'] === 'UNAVAILABLE', 5000);
    expect((await states(server))['lasting@1']).toBe('READY');
    expect((await index(server))[0]!.reason).toMatch(/unloaded after 1s idle \(keep-alive\)/);
    expect(server.logs).toContain('unloaded brief@1 (idle past its keep-alive)');
    expect((await server.post('/v2/models/brief/infer', INFER)).status).toBe(200);
    expect((await states(server))['brief@1']).toBe('READY');
    expect(await metric(server, /^maas_model_evictions_total\{model="brief",reason="keep_alive"\}/), server.logs.join("\n")).toBe(1);
  });
});

describe('hot swaps under a tight budget', () => {
  it('unloads the old version first and makes requests wait for the new one, failing none', async () => {
    const reg = await models(['m']);
    const server = await serveRegistry(reg, { budget: { models: 1 } });
    expect((await server.post('/v2/models/m/infer', INFER)).status).toBe(200);
    const traffic = loadOn(server, '/v2/models/m/infer');
    expect((await reg.cli('register', writeModel(reg.work, 'm2.onnx', mlp({ seed: 77 })), '--name', 'm')).exitCode).toBe(0);
    await until('version 2 to serve', async () => (await server.post('/v2/models/m/infer', INFER)).json?.model_version === '2');
    const statuses = await traffic.stop();
    expect(statuses.filter((s) => s !== 200)).toEqual([]);
    expect(server.logs.some((l) => /swap-wait|requests wait while 1 unloads and 2 loads|unloaded m@1/.test(l))).toBe(true);
    expect(await states(server)).toEqual({ 'm@1': 'UNAVAILABLE', 'm@2': 'READY' });
  });
});

describe('warm-up', () => {
  it('says once, not on every on-demand reload, that a model refused its generated warm-up request', async () => {
    const reg = await models(['x']);
    // Reshape to a fixed [2, 4]: the generated one-row warm-up cannot run, two-row requests can.
    const pairs: ModelInit = {
      producerName: 'maas-tests',
      graph: {
        name: 'pairs',
        nodes: [
          { op: 'Constant', inputs: [], outputs: ['shape'], name: 'shape', attributes: { value: { tensor: { name: 'shape', dataType: DataType.INT64, dims: [2], raw: Buffer.from(BigInt64Array.from([2n, 4n]).buffer) } } } },
          { op: 'Reshape', inputs: ['input', 'shape'], outputs: ['output'] },
        ],
        initializers: [],
        inputs: [valueInfoProto('input', DataType.FLOAT, ['batch', 4])],
        outputs: [valueInfoProto('output', DataType.FLOAT, [2, 4])],
      },
    };
    expect((await reg.cli('register', writeModel(reg.work, 'pairs.onnx', pairs), '--name', 'pairs')).exitCode).toBe(0);
    const server = await serveRegistry(reg, { budget: { models: 1 } });
    const two = { inputs: [{ name: 'input', shape: [2, 4], datatype: 'FP32', data: [1, 2, 3, 4, 5, 6, 7, 8] }] };
    for (const [model, body] of [['pairs', two], ['x', INFER], ['pairs', two], ['x', INFER], ['pairs', two]] as const) {
      expect((await server.post(`/v2/models/${model}/infer`, body)).status, model).toBe(200);
    }
    expect(server.logs.filter((l) => l.startsWith('loaded pairs@1'))).toHaveLength(3);
    expect(server.logs.filter((l) => l.includes('generated warm-up request failed'))).toHaveLength(1);
  });

  it('stores --warmup samples with the version and runs them on every load before it is READY; samples that do not fit are refused at register', async () => {
    const reg = await makeRegistry();
    const model = writeModel(reg.work, 'w.onnx', mlp());
    const bad = join(reg.work, 'bad.jsonl');
    writeFileSync(bad, `${JSON.stringify(INFER)}\n${JSON.stringify({ inputs: [{ name: 'nope', shape: [1, 4], datatype: 'FP32', data: [1, 2, 3, 4] }] })}\n`);
    const refused = await reg.cli('register', model, '--name', 'w', '--warmup', bad);
    expect(refused.exitCode).toBe(2);
    expect(refused.stderr).toMatch(/warm-up request 2 in .*bad\.jsonl: unknown input 'nope'/);
    expect((await reg.cli('list', '--json')).json().models).toEqual([]);

    const good = join(reg.work, 'warmup.jsonl');
    writeFileSync(good, `${JSON.stringify(INFER)}\n${JSON.stringify({ inputs: [{ name: 'input', shape: [2, 4], datatype: 'FP32', data: [0, 0, 0, 0, 1, 1, 1, 1] }] })}\n`);
    const registered = await reg.cli('register', model, '--name', 'w', '--warmup', good, '--json');
    expect(registered.exitCode, registered.stderr).toBe(0);
    const shown = (await reg.cli('show', 'w@1', '--json')).json();
    expect(JSON.stringify(shown)).toContain('warmup.json');
    const server = await serveRegistry(reg);
    expect(server.logs.find((l) => l.startsWith('loaded w@1'))).toMatch(/warm-up \d+ ms on 2 stored samples/);
    expect((await server.post('/v2/models/w/infer', INFER)).status).toBe(200);
  });
});

describe('the OpenAPI document', () => {
  it('documents every route of the table and is valid OpenAPI 3.1', async () => {
    const reg = await models(['m']);
    const server = await serveRegistry(reg);
    const doc = (await server.get('/openapi.json')).json;
    const result = await new Validator().validate(doc);
    expect(result.errors ?? [], JSON.stringify(result.errors)).toEqual([]);
    expect(result.valid).toBe(true);
    const documented = Object.entries(doc.paths as Record<string, Record<string, unknown>>).flatMap(([path, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${path}`)).sort();
    const routed = ROUTES.flatMap((r) => Object.keys(r.methods).map((m) => `${m} ${r.path}`)).sort();
    expect(documented).toEqual(routed);
    expect(doc.paths['/v2/health/live'].get.security).toEqual([]);
    expect(doc.paths['/v2/models/{model}/infer'].post.responses).toHaveProperty('413');
  });
});

describe('deploy, undeploy and ps', () => {
  it('deploys a version the server can see, shows it in ps, and undeploys it; says what is wrong with a bad server, token or ref', async () => {
    const reg = await models(['a', 'b']);
    const server = await serveRegistry(reg, { token: 'sekret', budget: { models: 4 } });
    const to = ['--to', server.url, '--token', 'sekret'];

    const deployed = await reg.cli('deploy', 'a@1', ...to, '--json');
    expect(deployed.exitCode, deployed.stderr).toBe(0);
    expect(deployed.json()).toMatchObject({ name: 'a', version: 1, via: 'registry', versions: [{ name: 'a', version: '1', state: 'READY' }] });

    const ps = await reg.cli('ps', '--server', server.url, '--token', 'sekret');
    expect(ps.exitCode, ps.stderr).toBe(0);
    const lines = ps.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^MODEL\s+VERSION\s+STATE\s+DEVICE\s+MEMORY\s+IN FLIGHT\s+IDLE\s+KEEP-ALIVE$/);
    expect(lines.slice(1)).toHaveLength(1);
    expect(lines[1]).toMatch(/^a\s+1\s+READY\s+cpu\s+\d[\d.]* MB\s+0\s+\S+\s+forever$/);
    expect((await reg.cli('ps', '--server', server.url, '--token', 'sekret', '--all', '--json')).json().models.map((m: Status) => `${m.name} ${m.state}`)).toEqual(['a READY', 'b UNAVAILABLE']);

    const undeployed = await reg.cli('undeploy', 'a', ...to);
    expect(undeployed.exitCode, undeployed.stderr).toBe(0);
    expect(undeployed.stdout).toContain('Unloaded a from');
    expect((await server.post('/v2/models/a/infer', INFER, { authorization: 'Bearer sekret' })).status).toBe(503);
    expect((await reg.cli('deploy', 'a@1', ...to)).exitCode).toBe(0);
    expect((await server.post('/v2/models/a/infer', INFER, { authorization: 'Bearer sekret' })).status).toBe(200);

    const wrongToken = await reg.cli('deploy', 'a@1', '--to', server.url, '--token', 'nope');
    expect(wrongToken.exitCode).toBe(5);
    expect(wrongToken.stderr).toMatch(/answered 401.*\n.*--token/);
    const nowhere = await reg.cli('ps', '--server', 'http://127.0.0.1:1');
    expect(nowhere.exitCode).toBe(5);
    expect(nowhere.stderr).toMatch(/cannot reach http:\/\/127\.0\.0\.1:1/);
    expect((await reg.cli('deploy', 'a@1')).exitCode).toBe(2);
    expect((await reg.cli('deploy', 'a@9', ...to)).exitCode).toBe(4);
  });

  it.skipIf(!HAVE_REGISTRY && !REQUIRE_TOOLS)('pushes a version the server lacks to a registry the server pulls from, then loads it there', async () => {
    const oci = await startOciRegistry('none');
    const served = await models(['other']);
    const server = await serveRegistry(served, { budget: { models: 4 } });
    const laptop = await models(['fresh']);

    const noRemote = await laptop.cli('deploy', 'fresh@1', '--to', server.url);
    expect(noRemote.exitCode).toBe(2);
    expect(noRemote.stderr).toMatch(/does not have fresh@1, and there is no remote to push it to/);

    const deployed = await laptop.cli('deploy', 'fresh@1', '--to', server.url, '--remote', `oci://${oci.host}/team/fresh`, '--json');
    expect(deployed.exitCode, deployed.stderr).toBe(0);
    expect(deployed.json()).toMatchObject({ via: 'remote', source: `oci://${oci.host}/team/fresh:1`, versions: [{ name: 'fresh', version: '1', state: 'READY' }] });
    writeFileSync(join(laptop.work, 'request.json'), JSON.stringify(INFER));
    const direct = await laptop.cli('predict', 'fresh@1', '--input', join(laptop.work, 'request.json'));
    const remote = await server.post('/v2/models/fresh/infer', INFER);
    expect(remote.status).toBe(200);
    expect(remote.json.outputs).toEqual(JSON.parse(direct.stdout).outputs);
    // Deployed again: the server has it now, with the same digest.
    expect((await laptop.cli('deploy', 'fresh@1', '--to', server.url, '--json')).json().via).toBe('registry');
  });
});
