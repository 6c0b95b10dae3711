import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { isAbsolute, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { ALL_TYPES, largeMatmul, mlp, writeModel } from '../../fixtures/models.js';
import { freePort } from '../helpers/oci-registry.js';
import { makeRegistry, type TestRegistry } from '../helpers/registry.js';
import { tfDtype } from '../../src/serve/http/tfserving.js';
import { serveRegistry } from '../helpers/serve.js';
import { rawHttp, spawnServe } from '../helpers/serve-process.js';

const request = { inputs: [{ name: 'input', shape: [1, 4], datatype: 'FP32', data: [1, 1, 1, 1] }] };

async function withModels(...models: [file: string, name: string][]): Promise<TestRegistry> {
  const reg = await makeRegistry();
  for (const [file, name] of models) {
    const r = await reg.cli('register', reg.fixture(file), '--name', name);
    expect(r.exitCode, r.stderr).toBe(0);
  }
  return reg;
}

function blobOf(reg: TestRegistry, name: string, version: number): string {
  const manifest = JSON.parse(readFileSync(join(reg.dir, 'models', name, String(version), 'manifest.json'), 'utf8')) as { layers: { digest: string }[] };
  return join(reg.dir, 'blobs', 'sha256', manifest.layers[0]!.digest.slice('sha256:'.length));
}

/** Flips bytes in the middle of a stored blob, keeping its size. */
function corrupt(path: string): void {
  const bytes = readFileSync(path);
  for (let i = bytes.length >> 1; i < (bytes.length >> 1) + 8; i++) bytes[i] = bytes[i]! ^ 0xff;
  writeFileSync(path, bytes);
}

const get = (target: string) => `GET ${target} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer sesame-1234\r\nConnection: close\r\n\r\n`;

describe('no request ends the server', () => {
  it('answers 400 to request targets URL parsing rejects, token or not, and keeps serving', async () => {
    const reg = await withModels(['mlp.onnx', 'mlp']);
    for (const token of [[], ['--token', 'sesame-1234']]) {
      const server = await spawnServe(['--port', '0', '--device', 'cpu', ...token], { cwd: reg.dir, env: reg.env });
      // A broken escape or target is a 400; a path that only names nothing here is a 404.
      const targets: [string, number][] = [
        ['//%zz', 400], ['//%zz/v2/health/live', 400], ['/v2/models/%zz', 400], ['/v2/models/mlp/versions/%E0%A4%A', 400], ['/v1/models/%:predict', 400],
        ['/v1/models/mlp/labels/%ff%fe/metadata', 400], ['http://[::1', 400], ['*', 400], ['//[', 404], ['//a:b@:99999/', 404],
      ];
      for (const [target, status] of targets) {
        const answer = await rawHttp(server.port, get(target));
        expect(answer.status, `${target}: ${answer.text}`).toBe(status);
        expect(server.alive(), server.stderr()).toBe(true);
      }
      const ok = await fetch(`${server.url}/v2/models/mlp/infer`, { method: 'POST', body: JSON.stringify(request), headers: { authorization: 'Bearer sesame-1234' } });
      expect(ok.status).toBe(200);
      expect(await server.stop()).toBe(0);
    }
  });

  it('survives clients that vanish mid-body and malformed request lines', async () => {
    const reg = await withModels(['mlp.onnx', 'mlp']);
    const server = await serveRegistry(reg);
    const port = Number(new URL(server.url).port);
    const body = JSON.stringify(request);
    await rawHttp(port, `POST /v2/models/mlp/infer HTTP/1.1\r\nHost: x\r\nContent-Length: ${body.length + 100}\r\n\r\n${body}`, 200);
    const garbage = await rawHttp(port, 'GARBAGE\x00\x01 / HTTP/9.9\r\n\r\n');
    expect(garbage.status).toBe(400);
    expect((await server.post('/v2/models/mlp/infer', request)).status).toBe(200);
  });
});

describe('tokens', () => {
  it('refuses an empty --token or MAAS_TOKEN instead of serving without auth', async () => {
    const reg = await withModels(['mlp.onnx', 'mlp']);
    const flag = await reg.cli('serve', '--port', '0', '--token', '', '--json');
    expect(flag.exitCode).toBe(2);
    expect(flag.json().error).toMatchObject({ code: 'MAAS_USAGE', message: expect.stringContaining('empty'), hint: expect.stringContaining('--token') });
    const env = await spawnServe(['--port', '0'], { cwd: reg.dir, env: { ...reg.env, MAAS_TOKEN: '' } }).catch((error: Error) => error);
    expect(env).toBeInstanceOf(Error);
    expect((env as Error).message).toContain('serve exited with 2');
    expect((env as Error).message).toContain('MAAS_TOKEN');
  });

  it('never logs the token, right or wrong', async () => {
    const reg = await withModels(['mlp.onnx', 'mlp']);
    const server = await spawnServe(['--port', '0', '--device', 'cpu', '--token', 'sesame-1234', '--json-logs'], { cwd: reg.dir, env: reg.env });
    for (const auth of ['Bearer sesame-1234', 'Bearer sesame-1235', 'Bearer sesame-12345', 'sesame-1234']) {
      await fetch(`${server.url}/v2/models/mlp/infer?token=x`, { method: 'POST', body: '{', headers: { authorization: auth } });
      await fetch(`${server.url}/v2/models/nope`, { headers: { authorization: auth } });
    }
    expect(await server.stop()).toBe(0);
    expect(server.stderr()).toContain('"status":401');
    expect(server.stderr() + server.stdout()).not.toContain('sesame');
  });
});

describe('TF Serving conformance', () => {
  it("names every dtype as TensorFlow's types.proto does", async () => {
    const reg = await withModels(['all_types.onnx', 'types']);
    const server = await serveRegistry(reg);
    const meta = (await server.get('/v1/models/types/metadata')).json;
    const inputs = meta.metadata.signature_def.signature_def.serving_default.inputs as Record<string, { dtype: string }>;
    const TF: Record<string, string> = {
      bool: 'DT_BOOL', uint8: 'DT_UINT8', uint16: 'DT_UINT16', uint32: 'DT_UINT32', uint64: 'DT_UINT64', int8: 'DT_INT8', int16: 'DT_INT16',
      int32: 'DT_INT32', int64: 'DT_INT64', float16: 'DT_HALF', float32: 'DT_FLOAT', float64: 'DT_DOUBLE', string: 'DT_STRING',
    };
    expect(Object.fromEntries(ALL_TYPES.map(([t]) => [t, inputs[`x_${t}`]!.dtype]))).toEqual(TF);
  });

  it('names the dtypes onnxruntime cannot serve too, and DT_INVALID where TensorFlow has none', () => {
    const names = ['bfloat16', 'complex64', 'complex128', 'float8e4m3fn', 'float8e4m3fnuz', 'float8e5m2', 'float8e5m2fnuz', 'int4', 'uint4', 'float4e2m1', 'float8e8m0', 'unknown(99)'];
    expect(names.map(tfDtype)).toEqual([
      'DT_BFLOAT16', 'DT_COMPLEX64', 'DT_COMPLEX128', 'DT_FLOAT8_E4M3FN', 'DT_FLOAT8_E4M3FNUZ', 'DT_FLOAT8_E5M2', 'DT_FLOAT8_E5M2FNUZ', 'DT_INT4', 'DT_UINT4', 'DT_INVALID', 'DT_INVALID', 'DT_INVALID',
    ]);
  });

  it('rejects an unknown signature_name as TF Serving does', async () => {
    const reg = await withModels(['mlp.onnx', 'mlp']);
    const server = await serveRegistry(reg);
    const ok = await server.post('/v1/models/mlp:predict', { signature_name: 'serving_default', instances: [[1, 1, 1, 1]] });
    expect(ok.status).toBe(200);
    const bad = await server.post('/v1/models/mlp:predict', { signature_name: 'classify_x', instances: [[1, 1, 1, 1]] });
    expect(bad.status).toBe(400);
    expect(bad.json.error).toBe('Serving signature name: "classify_x" not found in signature def');
    const notString = await server.post('/v1/models/mlp:predict', { signature_name: 7, instances: [[1, 1, 1, 1]] });
    expect(notString.status).toBe(400);
    const meta = await server.get('/v1/models/mlp/metadata?signature_name=classify_x');
    expect(meta.status).toBe(400);
    expect(meta.json.error).toBe('Serving signature name: "classify_x" not found in signature def');
  });
});

describe('metrics', () => {
  it('counts 404s for unknown models and versions, in a bounded number of series', async () => {
    const reg = await withModels(['mlp.onnx', 'mlp']);
    const server = await serveRegistry(reg);
    for (let i = 0; i < 20; i++) {
      expect((await server.post(`/v2/models/random${i}/infer`, request)).status).toBe(404);
      expect((await server.get(`/v2/models/mlp/versions/${i + 7}`)).status).toBe(404);
      expect((await server.get(`/v1/models/random${i}/versions/${i}/metadata`)).status).toBe(404);
    }
    const lines = (await server.get('/metrics')).text.split('\n').filter((l) => l.startsWith('maas_requests_total{'));
    expect(lines).toContain('maas_requests_total{model="(unknown)",version="(unknown)",protocol="v2",code="404"} 20');
    expect(lines).toContain('maas_requests_total{model="mlp",version="(unknown)",protocol="v2",code="404"} 20');
    expect(lines).toContain('maas_requests_total{model="(unknown)",version="(unknown)",protocol="v1",code="404"} 20');
    expect(lines).toHaveLength(3);
  });
});

describe('start-up', () => {
  it('finds its port taken before loading any model, and exits 2 (pick another --port)', async () => {
    const reg = await withModels(['mlp.onnx', 'mlp']);
    const taken = createServer().listen(0, '127.0.0.1');
    await new Promise((resolve) => taken.once('listening', resolve));
    try {
      const port = (taken.address() as { port: number }).port;
      const r = await spawnServe(['--port', String(port), '--device', 'cpu', '--json-logs'], { cwd: reg.dir, env: reg.env }).catch((error: Error) => error.message);
      expect(r).toContain('serve exited with 2');
      expect(r).toContain(`127.0.0.1:${port} is already in use`);
      expect(r).not.toContain('"event":"loaded"');
    } finally {
      taken.close();
    }
  });

  it('answers liveness while it loads, and 503 for readiness and models until every model is loaded', async () => {
    const reg = await withModels(['mlp.onnx', 'mlp']);
    expect((await reg.cli('register', writeModel(reg.work, 'big.onnx', largeMatmul(16 << 20)), '--name', 'big')).exitCode).toBe(0);
    const port = await freePort();
    let started = false;
    const starting = serveRegistry(reg, { port }).then((server) => (started = true) && server);
    const ready: number[] = [];
    const infer: number[] = [];
    let live = 0;
    while (!started) {
      const probes = await Promise.all(['/v2/health/live', '/v2/health/ready', '/v2/models/mlp/infer'].map((path) =>
        fetch(`http://127.0.0.1:${port}${path}`, path.endsWith('infer') ? { method: 'POST', body: JSON.stringify(request) } : {}).then((r) => r.status, () => undefined)));
      if (probes[0] === 200) live++;
      if (probes[1] !== undefined) ready.push(probes[1]);
      if (probes[2] !== undefined) infer.push(probes[2]);
    }
    await starting;
    expect(live).toBeGreaterThan(0);
    expect(ready).toContain(503);
    // Once ready, ready for good; models answer 503 until then, never a 404 or a 500.
    expect(ready.slice(ready.indexOf(200) === -1 ? ready.length : ready.indexOf(200))).not.toContain(503);
    expect(infer.every((status) => status === 503 || status === 200)).toBe(true);
    expect(infer).toContain(503);
  });

  it('takes --max-body-mb up to 4096 without overflowing, and refuses more', async () => {
    const reg = await withModels(['mlp.onnx', 'mlp']);
    const server = await spawnServe(['--port', '0', '--device', 'cpu', '--max-body-mb', '2048'], { cwd: reg.dir, env: reg.env });
    const res = await fetch(`${server.url}/v2/models/mlp/infer`, { method: 'POST', body: JSON.stringify(request) });
    expect(res.status).toBe(200);
    await server.stop();
    const r = await reg.cli('serve', '--port', '0', '--max-body-mb', '4097', '--json');
    expect(r.exitCode).toBe(2);
    expect(r.json().error.message).toContain('--max-body-mb');
  });
});

describe('400, not 500, for malformed input', () => {
  const deep = (n: number) => `${'['.repeat(n)}1${']'.repeat(n)}`;
  const cases: [string, string][] = [
    ['data nested 100k deep', `{"inputs":[{"name":"input","shape":[1,4],"datatype":"FP32","data":${deep(100_000)}}]}`],
    ['data nested deeper than the shape', `{"inputs":[{"name":"input","shape":[1,4],"datatype":"FP32","data":[[[1,1,1,1]]]}]}`],
    ['ragged data nested deep', `{"inputs":[{"name":"input","shape":[1,4],"datatype":"FP32","data":[1,1,1,${deep(50_000)}]}]}`],
    ['an empty outputs list', JSON.stringify({ ...request, outputs: [] })],
    ['an output asked twice', JSON.stringify({ ...request, outputs: [{ name: 'output' }, { name: 'output' }] })],
    ['a shape whose element count overflows', JSON.stringify({ inputs: [{ name: 'input', shape: [2 ** 53 - 1, 4], datatype: 'FP32', data: [] }] })],
    ['a zero dim beside a huge one', JSON.stringify({ inputs: [{ name: 'input', shape: [0, 2 ** 53 - 1], datatype: 'FP32', data: [] }] })],
  ];

  it.each(cases)('the server answers 400 to %s, and predict exits 2 with the same message', async (_what, body) => {
    const reg = await withModels(['mlp.onnx', 'mlp']);
    const server = await serveRegistry(reg);
    const answer = await server.post('/v2/models/mlp/infer', body);
    expect(answer.status, JSON.stringify(answer.json)).toBe(400);
    writeFileSync(join(reg.work, 'req.json'), body);
    const r = await reg.cli('predict', 'mlp', '--input', join(reg.work, 'req.json'), '--json');
    expect(r.exitCode).toBe(2);
    expect(r.json().error.message).toBe(answer.json.error);
  });

  it('answers 400 to TF Serving bodies nested 100k deep', async () => {
    const reg = await withModels(['mlp.onnx', 'mlp']);
    const server = await serveRegistry(reg);
    for (const body of [`{"instances":${deep(100_000)}}`, `{"instances":[[1,1,1,${deep(100_000)}]]}`, `{"inputs":{"input":[[1,1,1,{"b64":${deep(100_000)}}]]}}`]) {
      const answer = await server.post('/v1/models/mlp:predict', body);
      expect(answer.status, JSON.stringify(answer.json)).toBe(400);
    }
  });
});

describe('blob integrity', () => {
  it('refuses a version whose blob is corrupt, at start and on hot reload, and serves the others', async () => {
    const reg = await withModels(['mlp.onnx', 'mlp'], ['multi_io.onnx', 'ranker']);
    expect((await reg.cli('tag', 'mlp@1', 'prod')).exitCode).toBe(0);
    expect((await reg.cli('register', writeModel(reg.work, 'mlp2.onnx', mlp({ seed: 9 })), '--name', 'mlp')).exitCode).toBe(0);
    corrupt(blobOf(reg, 'ranker', 1));
    const server = await serveRegistry(reg, { targets: [{ name: 'mlp', selector: { kind: 'alias', alias: 'prod' } }, { name: 'ranker', selector: { kind: 'latest' } }] as never, pollMs: 50 });
    expect(server.models.map((m) => m.name)).toEqual(['mlp']);
    expect(server.logs.join('\n')).toMatch(/could not load ranker@1: .*blob sha256:[0-9a-f]{64} is corrupt/);
    const ranker = await server.get('/v2/models/ranker');
    expect(ranker.status).toBe(503);
    expect(ranker.json.error).toMatch(/^ranker@1 failed to load: .*is corrupt/);
    expect(Number(ranker.headers.get('retry-after'))).toBeGreaterThan(20); // when it is tried again, not every second
    writeFileSync(join(reg.work, 'ranker.json'), JSON.stringify({ inputs: [{ name: 'features', shape: [1, 3], datatype: 'FP32', data: [1, 2, 3] }, { name: 'ids', shape: [1], datatype: 'INT64', data: [1] }] }));
    const predicted = await reg.cli('predict', 'ranker', '--input', join(reg.work, 'ranker.json'), '--json');
    expect(predicted.exitCode).toBe(8);
    expect(predicted.json().error.message).toMatch(/ranker@1: blob sha256:[0-9a-f]{64} is corrupt/);

    corrupt(blobOf(reg, 'mlp', 2));
    expect((await reg.cli('tag', 'mlp@2', 'prod')).exitCode).toBe(0);
    for (let i = 0; i < 200 && !server.logs.some((l) => l.includes('could not load mlp@2')); i++) await sleep(25);
    expect(server.logs.join('\n')).toMatch(/could not load mlp@2, still serving the previous version \(1\): .*is corrupt/);
    const still = await server.post('/v2/models/mlp/infer', request);
    expect(still.status).toBe(200);
    expect(still.json.model_version).toBe('1');
  });
});

describe('doctor', () => {
  it("prints the real path of onnxruntime-node's install script in the CUDA fix", async () => {
    const reg = await makeRegistry();
    const r = await reg.cli('doctor', '--json');
    const cuda = (r.json().providers as { name: string; fix?: string }[]).find((p) => p.name === 'cuda')!;
    const path = /node (\S+install\.js)/.exec(cuda.fix ?? '')?.[1]?.replace(/^'|'$/g, '');
    expect(path, cuda.fix).toBeDefined();
    expect(isAbsolute(path!)).toBe(true);
    expect(existsSync(path!)).toBe(true);
  });
});

describe('serving a remote reference', () => {
  it('says which name it serves a pushed model under, and --name picks another', async () => {
    const reg = await withModels(['mlp.onnx', 'mlp']);
    const layout = join(reg.work, 'silero');
    expect((await reg.cli('push', 'mlp@1', `oci-layout:${layout}`)).exitCode).toBe(0);
    const env = { ...reg.env, MAAS_CACHE_DIR: join(reg.home, 'cache') };
    const plain = await spawnServe([`oci-layout:${layout}:1`, '--port', '0', '--device', 'cpu'], { cwd: reg.home, env });
    await plain.stop();
    expect(plain.stderr()).toContain("serving it as 'mlp', the name it was pushed under (--name picks another)");
    const named = await spawnServe([`oci-layout:${layout}:1`, '--name', 'silero', '--port', '0', '--device', 'cpu'], { cwd: reg.home, env });
    expect((await fetch(`${named.url}/v2/models/silero/infer`, { method: 'POST', body: JSON.stringify(request) })).status).toBe(200);
    await named.stop();
    const two = await reg.cli('serve', `oci-layout:${layout}:1`, `oci-layout:${layout}:1`, '--name', 'x', '--json');
    expect(two.exitCode).toBe(2);
    const local = await reg.cli('serve', 'mlp', '--name', 'x', '--json');
    expect(local.exitCode).toBe(2);
    execFileSync('true');
  });
});
