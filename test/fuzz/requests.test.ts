/**
 * Fuzz: a generated, seeded corpus of malformed requests against a real `maas serve` process.
 * Every one must get a 4xx (or, for bytes the HTTP parser itself refuses, at most a closed
 * connection), the server must stay up and answer a valid request after each batch, its RSS
 * must stay bounded, and nothing outside the registry's own state may change on disk.
 * MAAS_FUZZ_CASES and MAAS_FUZZ_SEED change the corpus; a failure names the case to replay.
 */
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { seededRandom, writeModel } from '../../fixtures/models.js';
import { valueInfoProto } from '../../src/onnx/build.js';
import { DataType } from '../../src/onnx/dtypes.js';
import { makeRegistry } from '../helpers/registry.js';
import { type ServeProcess, rawHttp, spawnServe } from '../helpers/serve-process.js';

const SEED = Number(process.env.MAAS_FUZZ_SEED ?? 8);
const CASES = Number(process.env.MAAS_FUZZ_CASES ?? 600);
const BATCH = 50;
const TOKEN = 'fuzz-token-0123';
const MAX_BODY_MB = 1;

interface Case {
  what: string;
  bytes: Buffer;
  /** bytes the HTTP parser itself refuses: it may close without an answer. */
  parserMayRefuse?: boolean;
  /** the client half-closes after sending, as one that promised more body than it has. */
  halfClose?: boolean;
}

type Rng = () => number;
const pick = <T>(rng: Rng, items: readonly T[]): T => items[Math.floor(rng() * items.length)]!;
const int = (rng: Rng, min: number, max: number) => min + Math.floor(rng() * (max - min + 1));

function request(method: string, target: string, body: Buffer | string = '', headers: Record<string, string | number> = {}, auth = true): Buffer {
  const head = [`${method} ${target} HTTP/1.1`, 'Host: fuzz', 'Connection: close'];
  if (auth) head.push(`Authorization: Bearer ${TOKEN}`);
  const lower = Object.keys(headers).map((k) => k.toLowerCase());
  if (!lower.includes('content-length') && !lower.includes('transfer-encoding') && (body.length > 0 || method === 'POST')) head.push(`Content-Length: ${Buffer.byteLength(body)}`);
  for (const [k, v] of Object.entries(headers)) head.push(`${k}: ${v}`);
  return Buffer.concat([Buffer.from(`${head.join('\r\n')}\r\n\r\n`, 'latin1'), Buffer.isBuffer(body) ? body : Buffer.from(body)]);
}

const deep = (depth: number, leaf = '1') => `${'['.repeat(depth)}${leaf}${']'.repeat(depth)}`;
/** JSON with raw tokens JSON.stringify cannot write (NaN, Infinity, deep lists): `"@RAW@"` is replaced. */
const withRaw = (value: unknown, raw: string) => JSON.stringify(value).replace('"@RAW@"', raw);

const MLP_INPUT = { name: 'input', shape: [1, 4], datatype: 'FP32', data: [1, 2, 3, 4] };
const HOSTILE_VALUES = [null, 1, -1, 1.5, 'x', '', true, {}, [], [null], [[]], 'x'.repeat(5000), { b64: 1 }];
const RAW_TOKENS = ['NaN', 'Infinity', '-Infinity', '1e400', '-1e400', 'undefined', '0x10', '01', '.5', "'x'", deep(1000), deep(100_000)];

/** KServe JSON bodies, each a valid request with one thing broken. */
function kserveJson(rng: Rng): Case {
  const target = pick(rng, ['/v2/models/mlp/infer', '/v2/models/mlp/versions/1/infer', '/v2/models/mlp/versions/prod/infer']);
  const field = pick(rng, ['inputs', 'name', 'datatype', 'shape', 'data', 'raw-data', 'id', 'parameters', 'outputs', 'input-twice', 'unknown-input', 'truncated', 'bad-utf8', 'not-json', 'raw-top']);
  const input: Record<string, unknown> = { ...MLP_INPUT };
  let body: string | Buffer;
  switch (field) {
    case 'inputs': body = JSON.stringify({ inputs: pick(rng, [null, 1, 'x', {}, [], [null], [1], ['input'], [[MLP_INPUT]]]) }); break;
    case 'name': body = JSON.stringify({ inputs: [{ ...input, name: pick(rng, [1, null, '', 'nope', 'x'.repeat(10_000), {}, [], 'input\u0000']) }] }); break;
    case 'datatype': body = JSON.stringify({ inputs: [{ ...input, datatype: pick(rng, ['fp32', 'FP33', '', 1, null, 'BYTES', 'INT8', 'FP16', 'BOOL', 'FP64', 'INT64', {}]) }] }); break;
    case 'shape': body = JSON.stringify({ inputs: [{ ...input, shape: pick(rng, [[-1, 4], [1, -4], [1.5, 4], ['1', 4], [1], [1, 4, 1], [], null, 'x', [2 ** 53, 4], [1e308, 4], [0, 4], [2, 4], Array(70).fill(1), [0, 2 ** 53 - 1], [2 ** 53 - 1, 4], [4, 1], [1, 4, 0]]) }] }); break;
    case 'data': body = JSON.stringify({ inputs: [{ ...input, data: pick(rng, [[], [1, 2, 3], [1, 2, 3, 4, 5], ['1', '2', '3', '4'], [true, false, true, false], [null, 1, 2, 3], [{}, 1, 2, 3], [[[1, 2, 3, 4]]], 'data', {}, 7, [[1, 2], [3]], [[[1], [2]], [[3], [4]]]]) }] }); break;
    case 'raw-data': body = withRaw({ inputs: [{ ...input, data: [1, 2, 3, '@RAW@'] }] }, pick(rng, RAW_TOKENS)); break;
    case 'id': body = JSON.stringify({ id: pick(rng, [1, {}, [], null, true]), inputs: [input] }); break;
    case 'parameters': body = JSON.stringify({ inputs: [{ ...input, parameters: pick(rng, [1, 'x', [], { binary_data_size: 16 }, { binary_data_size: -1 }, { binary_data_size: 'x' }]) }] }); break;
    case 'outputs': body = JSON.stringify({ inputs: [input], outputs: pick(rng, [[], {}, 'output', [{ name: 'nope' }], [{ name: 'output' }, { name: 'output' }], [1], [{ name: 1 }], [{ name: 'output', parameters: 5 }], null]) }); break;
    case 'input-twice': body = JSON.stringify({ inputs: [input, input] }); break;
    case 'unknown-input': body = JSON.stringify({ inputs: [input, { ...input, name: 'extra' }] }); break;
    case 'truncated': {
      const valid = JSON.stringify({ id: 'x', inputs: [input] });
      body = valid.slice(0, int(rng, 0, valid.length - 1));
      break;
    }
    case 'bad-utf8': {
      const valid = Buffer.from(JSON.stringify({ inputs: [input] }));
      const at = int(rng, 0, valid.length - 1);
      body = Buffer.concat([valid.subarray(0, at), Buffer.from(pick(rng, [[0xff], [0xfe, 0xff], [0xc0, 0x80], [0xed, 0xa0, 0x80], [0xf8, 0x88, 0x80, 0x80, 0x80]])), valid.subarray(at)]);
      break;
    }
    case 'not-json': body = pick(rng, ['', 'null', '[]', '"str"', '1', 'true', '{', '}', '{"inputs":', Buffer.from(Array.from({ length: 64 }, () => int(rng, 0, 255)))]); break;
    default: body = pick(rng, [deep(100_000), `{"inputs":${deep(50_000)}}`, `{"a":`.repeat(20_000)]);
  }
  return { what: `kserve json ${field} → ${target}`, bytes: request('POST', target, body) };
}

/** KServe bodies with the binary extension, lengths lying in every way. */
function kserveBinary(rng: Rng): Case {
  const floats = Buffer.from(new Float32Array([1, 2, 3, 4]).buffer);
  const what = pick(rng, ['header-length', 'binary-size', 'tail', 'both', 'bytes-prefix', 'fp16-size']);
  let json: object = { inputs: [{ ...MLP_INPUT, data: undefined, parameters: { binary_data_size: 16 } }] };
  let tail: Buffer = floats;
  let headerLength: string | undefined;
  let target = '/v2/models/mlp/infer';
  switch (what) {
    case 'header-length': headerLength = pick(rng, ['abc', '-1', '1e3', '', ' 5', String(2 ** 60), '0', 'NaN', '99999999']); break;
    case 'binary-size': json = { inputs: [{ ...MLP_INPUT, data: undefined, parameters: { binary_data_size: pick(rng, [15, 17, -1, 1.5, 'x', 2 ** 53, 0, null]) } }] }; break;
    case 'tail': tail = pick(rng, [Buffer.alloc(0), floats.subarray(0, 7), Buffer.concat([floats, Buffer.alloc(5)])]); break;
    case 'both': json = { inputs: [{ ...MLP_INPUT, parameters: { binary_data_size: 16 } }] }; break;
    case 'bytes-prefix':
      target = '/v2/models/types/infer';
      json = { inputs: [{ name: 'x_string', shape: [1, 2], datatype: 'BYTES', parameters: { binary_data_size: 8 } }] };
      tail = Buffer.from(pick(rng, [[0xff, 0xff, 0xff, 0xff, 1, 2, 3, 4], [1, 0, 0, 0, 0x61, 0, 0, 0], [0, 0, 0, 0, 0, 0, 0, 0]]));
      break;
    default:
      target = '/v2/models/types/infer';
      json = { inputs: [{ name: 'x_float16', shape: [1, 2], datatype: 'FP16', parameters: { binary_data_size: 3 } }] };
      tail = Buffer.alloc(3);
  }
  const head = Buffer.from(JSON.stringify(json));
  const body = Buffer.concat([head, tail]);
  return { what: `kserve binary ${what}`, bytes: request('POST', target, body, { 'Inference-Header-Content-Length': headerLength ?? head.length, 'Content-Type': 'application/octet-stream' }) };
}

/** TF Serving :predict bodies. */
function tfServing(rng: Rng): Case {
  const target = pick(rng, ['/v1/models/mlp:predict', '/v1/models/mlp/versions/1:predict', '/v1/models/mlp/labels/prod:predict', '/v1/models/types:predict']);
  const body = pick<string>(rng, [
    '{}', '[]', 'null', JSON.stringify({ instances: [[1, 2, 3, 4]], inputs: [[1, 2, 3, 4]] }), JSON.stringify({ instances: [] }), JSON.stringify({ instances: null }),
    JSON.stringify({ instances: 1 }), JSON.stringify({ instances: [[1, 2, 3]] }), JSON.stringify({ instances: [[1, 2, 3, '4']] }), JSON.stringify({ instances: [[1, 2, 3, 4], [1, 2]] }),
    JSON.stringify({ instances: [{ input: [1, 2, 3, 4] }, {}] }), JSON.stringify({ instances: [{ nope: [1, 2, 3, 4] }] }), JSON.stringify({ inputs: {} }), JSON.stringify({ inputs: { nope: 1 } }),
    JSON.stringify({ inputs: 'x' }), JSON.stringify({ inputs: { b64: 1 } }), JSON.stringify({ signature_name: 'nope', instances: [[1, 2, 3, 4]] }), JSON.stringify({ signature_name: 1, instances: [[1, 2, 3, 4]] }),
    `{"instances":${deep(100_000)}}`, `{"instances":[[1,2,3,${deep(60_000)}]]}`, `{"inputs":{"input":[[1,2,3,{"b64":${deep(60_000)}}]]}}`, withRaw({ instances: [[1, 2, 3, '@RAW@']] }, pick(rng, RAW_TOKENS)),
    JSON.stringify({ instances: [Array(70).fill(1)] }), JSON.stringify({ instances: [pick(rng, HOSTILE_VALUES)] }), '{"instances":[[1,2,3,4]]',
  ]);
  return { what: `tf serving ${body.slice(0, 60)} → ${target}`, bytes: request('POST', target, body) };
}

const GET_ROUTES = ['/', '/openapi.json', '/v2/health/ready', '/v2', '/metrics', '/v2/models/mlp', '/v2/models/mlp/ready', '/v2/models/mlp/versions/1', '/v2/models/mlp/versions/prod/ready', '/v1/models/mlp', '/v1/models/mlp/metadata', '/v1/models/mlp/versions/1/metadata', '/v1/models/mlp/labels/prod'];
const INFER_ROUTES = ['/v2/models/mlp/infer', '/v1/models/mlp:predict'];
const POST_ROUTES = [...INFER_ROUTES, '/v2/repository/index', '/v2/repository/models/mlp/load', '/v2/repository/models/nope/unload'];

/** Every route with a method it does not take, unknown names, climbing paths, and no or the wrong token. */
function routes(rng: Rng): Case {
  const kind = pick(rng, ['method', 'unknown', 'auth']);
  if (kind === 'method') {
    const onGet = rng() < 0.6;
    const target = pick(rng, onGet ? [...GET_ROUTES, '/v2/health/live'] : POST_ROUTES);
    // (HEAD is a GET route's own: it answers like GET.)
    const method = pick(rng, onGet ? ['POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'FOO', 'get', 'CONNECT'] : ['GET', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'HEAD']);
    // Node's parser refuses methods it does not know (FOO, get) and CONNECT to a path.
    return { what: `${method} ${target}`, bytes: request(method, target, method === 'POST' ? '{}' : ''), parserMayRefuse: ['FOO', 'get', 'CONNECT'].includes(method) };
  }
  if (kind === 'unknown') {
    const target = pick(rng, [
      '/v2/models/nope/infer', '/v2/models/mlp/versions/99', '/v2/models/mlp/versions/nope/infer', '/v2/models/..%2F..%2Fetc%2Fpasswd/infer', '/v1/models/..%2F..%2Fetc/metadata',
      '/v2/models/mlp/versions/1%2F..%2F2', '/v3/x', '/v2/models/mlp/infer/extra', '/x', '/%00', '/v2/repository/models/mlp', '/v2/repository/models/mlp/load/extra', '/v2/models/%00/infer', '/v2/models/../../../etc/passwd', '/v1/models/mlp/versions/-1',
      `/v2/models/${'a'.repeat(2000)}`, '/v2/models/mlp/versions/99999999999999999999999', '/v1/models/mlp/labels/nope/metadata', '/v2/models//infer', '/metrics/../v2',
      `/v2/models/random${int(rng, 0, 1e9)}/infer`,
    ]);
    return { what: `unknown ${target.slice(0, 80)}`, bytes: request(pick(rng, ['GET', 'POST']), target, '{}') };
  }
  const target = pick(rng, [...GET_ROUTES, ...POST_ROUTES]);
  const auth = pick(rng, ['', 'Bearer', 'Bearer ', `Bearer ${TOKEN}x`, `bearer ${TOKEN.slice(0, -1)}`, TOKEN, `Basic ${TOKEN}`, 'Bearer \u00ff']);
  const bytes = request(POST_ROUTES.includes(target) ? 'POST' : 'GET', target, JSON.stringify({ inputs: [MLP_INPUT] }), auth ? { Authorization: auth } : {}, false);
  return { what: `auth '${auth}' ${target}`, bytes };
}

/** Content-Length and Transfer-Encoding that lie. */
function lengths(rng: Rng): Case {
  const body = JSON.stringify({ inputs: [{ ...MLP_INPUT, data: [1, 2, 3] }] });
  const target = pick(rng, INFER_ROUTES);
  switch (pick(rng, ['longer', 'shorter', 'negative', 'nonnumeric', 'twice', 'huge', 'chunked-bad', 'chunked-and-length', 'chunked-invalid-body', 'over-limit'])) {
    case 'longer': return { what: 'Content-Length longer than the body', bytes: request('POST', target, body, { 'Content-Length': body.length + int(rng, 1, 1000) }), parserMayRefuse: true, halfClose: true };
    case 'shorter': return { what: 'Content-Length shorter than the body', bytes: request('POST', target, body, { 'Content-Length': int(rng, 0, body.length - 1) }) };
    case 'negative': return { what: 'negative Content-Length', bytes: request('POST', target, body, { 'Content-Length': -int(rng, 1, 100) }), parserMayRefuse: true };
    case 'nonnumeric': return { what: 'non-numeric Content-Length', bytes: request('POST', target, body, { 'Content-Length': pick(rng, ['abc', '1e3', '0x10', '', ' ']) }), parserMayRefuse: true };
    case 'twice': return { what: 'two Content-Lengths', bytes: request('POST', target, body, { 'Content-Length': `${body.length}\r\nContent-Length: ${body.length + 1}` }), parserMayRefuse: true };
    case 'huge': return { what: 'Content-Length of a terabyte', bytes: request('POST', target, body, { 'Content-Length': 2 ** 40 }) };
    case 'chunked-bad': return { what: 'chunk size that is not hex', bytes: request('POST', target, `zz\r\n${body}\r\n0\r\n\r\n`, { 'Transfer-Encoding': 'chunked' }), parserMayRefuse: true };
    case 'chunked-and-length': return { what: 'chunked and a Content-Length', bytes: request('POST', target, `${body.length.toString(16)}\r\n${body}\r\n0\r\n\r\n`, { 'Transfer-Encoding': 'chunked', 'Content-Length': body.length }), parserMayRefuse: true };
    case 'chunked-invalid-body': return { what: 'chunked, a broken body', bytes: request('POST', target, `${body.length.toString(16)}\r\n${body}\r\n0\r\n\r\n`, { 'Transfer-Encoding': 'chunked' }) };
    default: {
      const big = JSON.stringify({ inputs: [{ ...MLP_INPUT, data: Array(300_000).fill(1.5) }] });
      return { what: 'a body over --max-body-mb', bytes: request('POST', target, big) };
    }
  }
}

/** Request lines and targets the HTTP parser or the URL parser may choke on. */
function requestLines(rng: Rng): Case {
  const line = pick(rng, [
    () => Buffer.concat([Buffer.from(Array.from({ length: int(rng, 1, 200) }, () => int(rng, 0, 255))), Buffer.from('\r\n\r\n')]),
    () => 'GET\r\n\r\n', () => 'GET /\r\n\r\n', () => 'GET / HTTP/2.0\r\nHost: x\r\n\r\n', () => 'GET /v2/health/ready HTTP/1.1\r\n\r\n',
    () => `GET /v2/${'\u0001\u007f'} HTTP/1.1\r\nHost: x\r\n\r\n`, () => 'GET /v2 /health HTTP/1.1\r\nHost: x\r\n\r\n', () => `GET /${'a'.repeat(20_000)} HTTP/1.1\r\nHost: x\r\n\r\n`,
    () => 'GET / HTTP/1.1\r\nHost: x\r\nNoColon\r\n\r\n', () => 'GET / HTTP/1.1\r\nHost: x\r\nX: a\u0000b\r\n\r\n', () => 'GET / HTTP/1.1\r\nHost: x\r\nX: a\r\n folded\r\n\r\n',
    () => `GET / HTTP/1.1\r\nHost: x\r\n${Array.from({ length: 3000 }, (_, i) => `X-${i}: ${i}`).join('\r\n')}\r\n\r\n`, () => 'GET / HTTP/1.1\nHost: x\n\n',
  ])();
  if (typeof line !== 'string' || rng() < 0.5) return { what: `raw request line ${JSON.stringify(line.toString('latin1').slice(0, 40))}`, bytes: Buffer.from(line as string, 'latin1'), parserMayRefuse: true };
  const target = pick(rng, ['//%zz', '//%zz/v2/health/live', '//[', '//a:b@:99999/', 'http://[::1', 'http://x/v2/models/nope/infer', '*', '%zz', 'v2/health/ready', '/v2/models/%zz/infer', '/v2/models/mlp/versions/%E0%A4%A/infer', '/v1/models/mlp/labels/%ff%fe:predict', '/v2/models/mlp%', '/%', '/v2/models/nope#frag%zz', 'http://', 'https://a:b@c:0/%', '//']);
  return { what: `target ${target}`, bytes: request(pick(rng, ['GET', 'POST']), target, '{}'), parserMayRefuse: target === 'http://' };
}

const GENERATORS = [kserveJson, kserveJson, kserveBinary, tfServing, routes, lengths, requestLines];

/** Paths, sizes and mtimes of every file under `dir`, except `skip`. */
function snapshot(dir: string, skip: string[]): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (d: string) => {
    for (const entry of readdirSync(d, { withFileTypes: true })) {
      const path = join(d, entry.name);
      if (skip.includes(path)) continue;
      if (entry.isDirectory()) walk(path);
      else out.set(path, `${statSync(path).size}:${statSync(path).mtimeMs}`);
    }
  };
  walk(dir);
  return out;
}

function rssMb(pid: number): number {
  return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) / 1024;
}

async function assertServes(server: ServeProcess, after: string): Promise<void> {
  expect(server.alive(), `the server died after ${after}: ${server.stderr()}`).toBe(true);
  const res = await fetch(`${server.url}/v2/models/mlp/infer`, { method: 'POST', body: JSON.stringify({ inputs: [MLP_INPUT] }), headers: { authorization: `Bearer ${TOKEN}` } });
  expect(res.status, `a valid request after ${after}`).toBe(200);
}

describe('fuzzed requests', () => {
  it(`answers ${CASES} malformed requests (seed ${SEED}) with 4xx, stays up, bounded, and writes nothing outside`, async () => {
    const reg = await makeRegistry();
    for (const [file, name] of [['mlp.onnx', 'mlp'], ['all_types.onnx', 'types']] as const) {
      expect((await reg.cli('register', reg.fixture(file), '--name', name)).exitCode).toBe(0);
    }
    const free = writeModel(reg.work, 'free.onnx', {
      producerName: 'fuzz',
      graph: { name: 'free', nodes: [{ op: 'Identity', inputs: ['x'], outputs: ['y'] }], initializers: [], inputs: [valueInfoProto('x', DataType.FLOAT, ['a', 'b', 'c'])], outputs: [valueInfoProto('y', DataType.FLOAT, ['a', 'b', 'c'])] },
    });
    expect((await reg.cli('register', free, '--name', 'free')).exitCode).toBe(0);
    expect((await reg.cli('tag', 'mlp@1', 'prod')).exitCode).toBe(0);
    const before = snapshot(reg.home, [join(reg.dir, '.maas')]);
    const server = await spawnServe(['--port', '0', '--device', 'cpu', '--token', TOKEN, '--max-body-mb', String(MAX_BODY_MB), '--poll-ms', '60000'], { cwd: reg.dir, env: reg.env });
    await assertServes(server, 'start');
    const port = Number(new URL(server.url).port);

    // Shapes whose element count overflows, on a model whose every dim is free.
    for (const shape of [[0, 2 ** 30, 2 ** 30], [0, 2 ** 53 - 1, 2], [2 ** 26, 2 ** 26, 2 ** 2]]) {
      const answer = await rawHttp(port, request('POST', '/v2/models/free/infer', JSON.stringify({ inputs: [{ name: 'x', shape, datatype: 'FP32', data: [] }] })));
      expect(answer.status, `shape [${shape}]: ${answer.text}`).toBe(400);
    }

    const rng = seededRandom(SEED);
    let warmRss = 0;
    const statuses = new Map<string, number>();
    for (let i = 0; i < CASES; i++) {
      const fuzz = pick(rng, GENERATORS)(rng);
      const answer = await rawHttp(port, fuzz.bytes, 5000, fuzz.halfClose);
      const label = `case ${i} (seed ${SEED}): ${fuzz.what}`;
      statuses.set(String(answer.status ?? 'closed'), (statuses.get(String(answer.status ?? 'closed')) ?? 0) + 1);
      if (answer.status === undefined) expect(fuzz.parserMayRefuse, `${label}: closed without an answer to ${fuzz.bytes.toString("latin1").slice(0, 400)}\n${server.stderr().slice(-2000)}`).toBe(true);
      else expect(answer.status, `${label}: ${answer.text.slice(0, 300)}`).toBeGreaterThanOrEqual(400);
      if (answer.status !== undefined) expect(answer.status, `${label}: ${answer.text.slice(0, 300)}`).toBeLessThan(500);
      expect(answer.text, label).not.toMatch(/^HTTP\/1\.1 5\d\d/m);
      if ((i + 1) % BATCH === 0) {
        await assertServes(server, label);
        if (i + 1 === BATCH) warmRss = rssMb(server.pid);
      }
    }
    await assertServes(server, 'the whole corpus');
    const finalRss = rssMb(server.pid);
    console.log(`fuzz: ${CASES} cases, answers ${JSON.stringify(Object.fromEntries(statuses))}, RSS ${warmRss.toFixed(0)} MB after ${BATCH}, ${finalRss.toFixed(0)} MB at the end`);
    expect(finalRss).toBeLessThan(Math.max(warmRss * 1.5, warmRss + 150));
    expect(await server.stop()).toBe(0);
    expect(snapshot(reg.home, [join(reg.dir, '.maas')])).toEqual(before);
  }, 240_000);
});
