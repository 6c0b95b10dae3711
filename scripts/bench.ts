/**
 * `npm run bench`: served throughput and latency as ratios of their physical limits
 * (../shared/notes/perf.md §4-5). Not a test: it prints a table and one JSON line per cell.
 *
 *   raw      in-process session.run loop, same model, threads and batch (batch 1)
 *   served   `maas serve` defaults, batch-1 JSON requests, wrk with 32 connections
 *   batching served with --max-batch 32 (default) vs --max-batch 1, medium model
 *   liveness /v2/health/live p99 while the large model is saturated
 *   baseline a hand-written node:http server running onnxruntime on its main thread
 *   overhead maas REST on the tiny model vs a bare node:http server that parses the same JSON
 *            and returns a fixed answer (wrk); both this and grpc alternate ROUNDS rounds of their
 *            two sides and compare medians
 *   grpc     gRPC ModelInfer with raw contents vs REST with the binary tensor extension, medium
 *            model, batch 1, 32 calls in flight, both from h2load (nghttp2's C load generator);
 *            and the floor under it: CPU per answer of bare node:http and node:http2 (gRPC-framed)
 *            servers sending fixed 4 KB answers to the same load
 *   hash     maas's streamed SHA-256 vs `openssl dgst -sha256` on a warm 1 GiB file
 *   push     `maas push` of a 1 GiB model to docker-registry on loopback vs a plain loopback
 *            copy of the same bytes (TCP into a file on the same disk); the CLI's peak RSS
 *
 *   convert  every conversion mode (optimize, fp16, int8 dynamic / static / weight-only, int4):
 *            size, raw batch-1 and batch-32 latency, accuracy, on the medium and large MLPs, then
 *            on each real model of the corpus in .corpus/
 *
 *   models   many models on one server: cold vs warm first answer, memory per version against
 *            its file, medium's p99 while large is loaded and unloaded beside it
 *
 * BENCH_ONLY=serve|transport|models|answers|hash|push|convert runs one group (transport: overhead and grpc; serve runs them too).
 */
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createRequire } from 'node:module';
import { availableParallelism, cpus } from 'node:os';
import { createReadStream, createWriteStream, existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { connect, createServer as createNetServer } from 'node:net';
import { pathToFileURL } from 'node:url';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import * as ort from 'onnxruntime-node';
import { modelProto, writeMessage } from '../src/onnx/build.js';
import { hashFile } from '../src/registry/store.js';
import { CORPUS_MODELS, corpusFile, corpusRequest } from '../fixtures/corpus.js';
import { type DeepMlp, deepMlp, identity, largeMatmul, randomFloats } from '../fixtures/models.js';
import { DataType } from '../src/onnx/dtypes.js';

const ROOT = resolve(import.meta.dirname, '..');
const WORK = join(ROOT, '.bench');
const BIN = join(ROOT, 'bin/maas.js');
const THREADS = availableParallelism();
const DURATION = Number(process.env.BENCH_SECONDS ?? 5);
const CONNECTIONS = 32;

interface Mlp extends DeepMlp { name: string }
/** Three sizes: perf.md §5's tiny S, a medium of about 1-2 ms per run, a large of over 5 ms. */
const MODELS: Mlp[] = [
  { name: 'small', input: 16, hidden: 32, layers: 2, output: 4 },
  { name: 'medium', input: 1024, hidden: 2048, layers: 5, output: 1000 },
  { name: 'large', input: 1024, hidden: 2048, layers: 12, output: 1000 },
];
/** The model the hand-written baseline was measured on: 2048×2048, 4 layers. */
const BASELINE_MODEL: Mlp = { name: 'baseline2048', input: 2048, hidden: 2048, layers: 4, output: 2048 };

function requestBody(m: Mlp): string {
  const data = Array.from(new Float32Array(randomFloats(m.input, 99).buffer));
  return JSON.stringify({ inputs: [{ name: 'input', shape: [1, m.input], datatype: 'FP32', data }] });
}

async function rawRunsPerSecond(path: string, m: Mlp, batch = 1): Promise<{ runsPerSec: number; msPerRun: number }> {
  const session = await ort.InferenceSession.create(path, { intraOpNumThreads: THREADS, interOpNumThreads: 1, executionMode: 'sequential' });
  const feeds = { input: new ort.Tensor('float32', new Float32Array(randomFloats(m.input * batch, 99).buffer), [batch, m.input]) };
  for (let i = 0; i < 20; i++) await session.run(feeds);
  const start = performance.now();
  let runs = 0;
  while (performance.now() - start < 3000) {
    await session.run(feeds);
    runs++;
  }
  const seconds = (performance.now() - start) / 1000;
  await session.release();
  return { runsPerSec: runs / seconds, msPerRun: (seconds * 1000) / runs };
}

interface WrkResult { rps: number; p50: number; p99: number; errors: number }

/** Runs wrk and reads requests/s and the latency percentiles (ms) from its --latency report. */
function wrk(url: string, body: string | undefined, connections: number, seconds = DURATION): Promise<WrkResult> {
  const script = join(WORK, `wrk-${Math.random().toString(36).slice(2)}.lua`);
  const bodyFile = `${script}.json`;
  if (body !== undefined) writeFileSync(bodyFile, body);
  writeFileSync(script, body === undefined ? '' : `wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\nlocal f = io.open("${bodyFile}", "rb")\nwrk.body = f:read("*a")\nf:close()\n`);
  return new Promise((resolveRun, reject) => {
    const child = spawn('wrk', ['-t1', `-c${connections}`, `-d${seconds}s`, '--latency', '-s', script, url]);
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.on('error', reject);
    child.on('close', () => {
      const ms = (label: string) => {
        const m = new RegExp(`^\\s*${label}%\\s+([\\d.]+)(us|ms|s)`, 'm').exec(out);
        if (!m) return NaN;
        return Number(m[1]) * (m[2] === 'us' ? 0.001 : m[2] === 's' ? 1000 : 1);
      };
      const errors = Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0) + Number(/Socket errors: .*?(\d+)/.exec(out)?.[1] ?? 0);
      resolveRun({ rps: Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? NaN), p50: ms('50'), p99: ms('99'), errors });
    });
  });
}

async function waitForUrl(child: ChildProcess): Promise<string> {
  return new Promise((resolveUrl, reject) => {
    let out = '';
    child.stdout!.on('data', (d) => {
      out += d;
      const m = /"url":"([^"]+)"/.exec(out) ?? /listening on (http:\S+)/.exec(out);
      if (m) resolveUrl(m[1]!);
    });
    child.once('exit', (code) => reject(new Error(`server exited with ${code}`)));
  });
}

async function serve(registry: string, model: string, extra: string[] = []): Promise<{ url: string; grpc: string | undefined; stop: () => Promise<void> }> {
  const child = spawn(process.execPath, [BIN, 'serve', ...(model ? [model] : []), '--port', '0', '--device', 'cpu', '--json', ...extra], { cwd: registry, stdio: ['ignore', 'pipe', 'ignore'] });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  const url = await waitForUrl(child);
  const grpc = /"grpc":\{"address":"([^"]+)"/.exec(out)?.[1];
  const stop = () => new Promise<void>((done) => {
    child.once('exit', () => done());
    child.kill('SIGTERM');
  });
  return { url, grpc, stop };
}

const BASELINE_SERVER = `
const http = require('node:http');
const ort = require(process.argv[1]);
ort.InferenceSession.create(process.argv[2], { intraOpNumThreads: Number(process.argv[3]) }).then((session) => {
  http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', async () => {
      const body = JSON.parse(Buffer.concat(chunks).toString());
      const input = body.inputs[0];
      const out = await session.run({ [input.name]: new ort.Tensor('float32', Float32Array.from(input.data), input.shape) });
      const t = out[session.outputNames[0]];
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ outputs: [{ name: session.outputNames[0], shape: t.dims, datatype: 'FP32', data: Array.from(t.data) }] }));
    });
  }).listen(0, '127.0.0.1', function () { process.stdout.write('listening on http://127.0.0.1:' + this.address().port + '\\n'); });
});`;

async function handWritten(path: string): Promise<{ url: string; stop: () => Promise<void> }> {
  const ortPath = createRequire(import.meta.url).resolve('onnxruntime-node');
  const child = spawn(process.execPath, ['-e', BASELINE_SERVER, ortPath, path, String(THREADS)], { stdio: ['ignore', 'pipe', 'ignore'] });
  const url = await waitForUrl(child);
  return { url, stop: () => new Promise<void>((done) => { child.once('exit', () => done()); child.kill('SIGTERM'); }) };
}

/** A bare node:http server that parses the same JSON and returns a fixed answer: the cost of HTTP and JSON alone. */
const BARE_SERVER = `
const http = require('node:http');
const answer = JSON.stringify({ model_name: 'small', model_version: '1', outputs: [{ name: 'output', datatype: 'FP32', shape: [1, 4], data: [0.1, 0.2, 0.3, 0.4] }] });
http.createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    JSON.parse(Buffer.concat(chunks).toString());
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(answer) });
    res.end(answer);
  });
}).listen(0, '127.0.0.1', function () { process.stdout.write('listening on http://127.0.0.1:' + this.address().port + '\\n'); });`;

/**
 * The transport floor under the grpc cell: bare servers that read a 4 KB binary request and send
 * a fixed 4 KB answer, one on node:http (as REST with the binary extension), one on node:http2
 * with gRPC's framing and trailers (as ModelInfer). Their CPU per answer is what either protocol
 * costs before any of maas runs.
 */
const BARE_H1_BINARY = `
const answer = Buffer.alloc(4096, 1);
require('node:http').createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    Buffer.concat(chunks);
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': answer.length });
    res.end(answer);
  });
}).listen(0, '127.0.0.1', function () { process.stdout.write('listening on http://127.0.0.1:' + this.address().port + '\\n'); });`;

const BARE_H2_GRPC = `
const answer = Buffer.alloc(5 + 4096, 1);
answer[0] = 0;
answer.writeUInt32BE(4096, 1);
const server = require('node:http2').createServer();
server.on('stream', (stream) => {
  const chunks = [];
  stream.on('data', (c) => chunks.push(c));
  stream.on('end', () => {
    Buffer.concat(chunks);
    if (stream.destroyed) return;
    stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
    stream.once('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
    stream.end(answer);
  });
  stream.on('error', () => {});
});
server.listen(0, '127.0.0.1', function () { process.stdout.write('listening on http://127.0.0.1:' + this.address().port + '\\n'); });`;

async function bareServer(source = BARE_SERVER): Promise<{ url: string; pid: number; stop: () => Promise<void> }> {
  const child = spawn(process.execPath, ['-e', source], { stdio: ['ignore', 'pipe', 'ignore'] });
  const url = await waitForUrl(child);
  return { url, pid: child.pid!, stop: () => new Promise<void>((done) => { child.once('exit', () => done()); child.kill('SIGTERM'); }) };
}

/** CPU seconds a process has used (Linux /proc: user + system clock ticks, 100 a second). */
function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/**
 * h2load (nghttp2's C load generator) as the one client of both transports, so neither pays for
 * a heavier client on the same two cores: REST as HTTP/1.1 with CONNECTIONS connections, gRPC as
 * one HTTP/2 connection with CONNECTIONS streams in flight (how gRPC clients multiplex).
 */
function h2load(args: string[]): Promise<{ rps: number; p50: number; done: number; failed: number }> {
  return new Promise((resolveRun, reject) => {
    const child = spawn('h2load', args);
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.on('error', reject);
    child.on('close', () => {
      const number = (re: RegExp) => Number(re.exec(out)?.[1] ?? NaN);
      // h2load prints no percentiles; its mean request time stands in for p50.
      const meanMs = /time for request:\s+\S+\s+\S+\s+([\d.]+)(us|ms|s)/.exec(out);
      resolveRun({
        rps: number(/finished in [\d.]+s, ([\d.]+) req\/s/),
        p50: meanMs ? Number(meanMs[1]) * (meanMs[2] === 'us' ? 0.001 : meanMs[2] === 's' ? 1000 : 1) : NaN,
        done: number(/requests: \d+ total, \d+ started, (\d+) done/),
        failed: number(/(\d+) failed/) + number(/(\d+) errored/),
      });
    });
  });
}

/** One batch-1 request of `m` as REST with the binary extension and as a framed gRPC ModelInfer message. */
async function binaryRequests(m: Mlp): Promise<{ rest: string; restHeaderLength: number; grpc: string }> {
  const raw = randomFloats(m.input, 99);
  const header = Buffer.from(JSON.stringify({ inputs: [{ name: 'input', shape: [1, m.input], datatype: 'FP32', parameters: { binary_data_size: raw.length } }], parameters: { binary_data_output: true } }));
  const rest = join(WORK, `${m.name}-rest.bin`);
  writeFileSync(rest, Buffer.concat([header, raw]));
  const { loadGrpc, loadServiceDefinition } = await import('../src/serve/grpc/proto.js');
  const message = (await loadServiceDefinition(await loadGrpc())).ModelInfer!.requestSerialize({ model_name: m.name, inputs: [{ name: 'input', datatype: 'FP32', shape: [1, m.input] }], raw_input_contents: [raw] });
  // gRPC's length-prefixed message: a compression flag (0), the length, the bytes.
  const framed = Buffer.alloc(5 + message.length);
  framed.writeUInt32BE(message.length, 1);
  message.copy(framed, 5);
  const grpc = join(WORK, `${m.name}-grpc.bin`);
  writeFileSync(grpc, framed);
  return { rest, restHeaderLength: header.length, grpc };
}

/** Answers other than 200 / OK in the server's own counters: h2load counts a gRPC error status as a success. */
async function failedAnswers(url: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  return [...text.matchAll(/^maas_requests_total\{[^}]*code="([^"]+)"\} (\d+)/gm)].filter(([, code]) => code !== '200' && code !== 'OK').reduce((n, [, , count]) => n + Number(count), 0);
}

function row(cells: (string | number)[]): string {
  return `| ${cells.map((c) => (typeof c === 'number' ? (Number.isInteger(c) ? String(c) : c.toFixed(2)) : c)).join(' | ')} |`;
}

/** Streams a file through a loopback TCP socket into a file on the same disk. */
async function loopbackCopy(source: string, target: string): Promise<number> {
  const server = createNetServer((socket) => socket.pipe(createWriteStream(target)));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const started = performance.now();
  await new Promise<void>((resolveCopy, reject) => {
    server.on('connection', (socket) => socket.on('close', () => resolveCopy()));
    const socket = connect((server.address() as { port: number }).port, '127.0.0.1', () => createReadStream(source, { highWaterMark: 1 << 20 }).pipe(socket));
    socket.on('error', reject);
  });
  const seconds = (performance.now() - started) / 1000;
  server.close();
  return seconds;
}

async function benchPush(registry: string, record: (cell: Record<string, unknown>) => void): Promise<void> {
  if (spawnSync('docker-registry', ['--version']).error) {
    console.error('push bench skipped: needs docker-registry (apt-get install docker-registry)');
    return;
  }
  const model = join(WORK, 'push-1g.onnx');
  writeMessage(model, modelProto(largeMatmul(1 << 30, 7)));
  execFileSync(process.execPath, [BIN, 'register', model, '--name', 'push1g', '--registry', registry], { stdio: 'ignore' });
  const port = 5000 + Math.floor(Math.random() * 1000);
  mkdirSync(join(WORK, 'oci-data'), { recursive: true });
  writeFileSync(join(WORK, 'oci.yml'), `version: 0.1\nlog: { level: error }\nstorage: { filesystem: { rootdirectory: ${join(WORK, 'oci-data')} } }\nhttp: { addr: "127.0.0.1:${port}" }\n`);
  const oci = spawn('docker-registry', ['serve', join(WORK, 'oci.yml')], { stdio: 'ignore' });
  await sleep(1000);
  const bytes = statSync(model).size;
  const started = performance.now();
  const cli = pathToFileURL(join(ROOT, 'dist/cli.js')).href;
  const run = spawnSync(process.execPath, [join(ROOT, 'test/helpers/rss-run.mjs'), cli, 'push', 'push1g@1', `oci://127.0.0.1:${port}/bench/push1g`, '--registry', registry, '--json'], { encoding: 'utf8' });
  const pushSeconds = (performance.now() - started) / 1000;
  oci.kill('SIGTERM');
  if (run.status !== 0) throw new Error(`push failed: ${run.stdout}${run.stderr}`);
  const copySeconds = await loopbackCopy(model, join(WORK, 'copy.bin'));
  rmSync(join(WORK, 'copy.bin'));
  const rssKb = Number(/MAXRSS_KB=(\d+)/.exec(run.stderr)?.[1]);
  record({ bench: 'push', bytes, pushMBps: bytes / pushSeconds / 1e6, loopbackCopyMBps: bytes / copySeconds / 1e6, ratio: copySeconds / pushSeconds, maxRssMB: rssKb / 1024 });
}

/** Writes and registers the serving models; their files by name. */
function registerModels(registry: string, env: NodeJS.ProcessEnv): Record<string, string> {
  const paths: Record<string, string> = {};
  for (const m of [...MODELS, BASELINE_MODEL]) {
    paths[m.name] = join(WORK, `${m.name}.onnx`);
    writeMessage(paths[m.name]!, modelProto(deepMlp(m)));
    execFileSync(process.execPath, [BIN, 'register', paths[m.name]!, '--name', m.name, '--registry', registry], { stdio: 'ignore', env });
  }
  return paths;
}

async function benchServing(registry: string, paths: Record<string, string>, record: (cell: Record<string, unknown>) => void): Promise<void> {

  const table: string[] = [];
  for (const m of MODELS) {
    const raw = await rawRunsPerSecond(paths[m.name]!, m);
    const server = await serve(registry, m.name);
    await wrk(`${server.url}/v2/models/${m.name}/infer`, requestBody(m), CONNECTIONS, 1);
    const served = await wrk(`${server.url}/v2/models/${m.name}/infer`, requestBody(m), CONNECTIONS);
    let liveness: WrkResult | undefined;
    if (m.name === 'large') {
      const [, live] = await Promise.all([wrk(`${server.url}/v2/models/${m.name}/infer`, requestBody(m), CONNECTIONS), wrk(`${server.url}/v2/health/live`, undefined, 1)]);
      liveness = live;
    }
    await server.stop();
    // The same without batching: serving overhead alone, like for like with raw batch 1.
    const single = await serve(registry, m.name, ['--max-batch', '1']);
    const unbatched = await wrk(`${single.url}/v2/models/${m.name}/infer`, requestBody(m), CONNECTIONS);
    await single.stop();
    const cell = {
      bench: 'served-vs-raw', model: m.name, msPerRun: raw.msPerRun, rawRunsPerSec: raw.runsPerSec,
      servedRps: served.rps, ratio: served.rps / raw.runsPerSec, p50: served.p50, p99: served.p99, p99OverP50: served.p99 / served.p50, errors: served.errors + unbatched.errors,
      unbatchedRps: unbatched.rps, unbatchedRatio: unbatched.rps / raw.runsPerSec, unbatchedP50: unbatched.p50, unbatchedP99: unbatched.p99, livenessP99: liveness?.p99,
    };
    record(cell);
    table.push(row([m.name, raw.msPerRun, Math.round(raw.runsPerSec), Math.round(served.rps), cell.ratio, served.p50, served.p99, cell.p99OverP50, Math.round(unbatched.rps), cell.unbatchedRatio, unbatched.p50, unbatched.p99, cell.errors]));
  }

  const medium = MODELS[1]!;
  const unbatched = await serve(registry, medium.name, ['--max-batch', '1']);
  const off = await wrk(`${unbatched.url}/v2/models/${medium.name}/infer`, requestBody(medium), CONNECTIONS);
  await unbatched.stop();
  const batched = await serve(registry, medium.name);
  const on = await wrk(`${batched.url}/v2/models/${medium.name}/infer`, requestBody(medium), CONNECTIONS);
  await batched.stop();
  record({ bench: 'batching', model: medium.name, unbatchedRps: off.rps, batchedRps: on.rps, ratio: on.rps / off.rps, unbatchedP99: off.p99, batchedP99: on.p99 });

  const base = await handWritten(paths[BASELINE_MODEL.name]!);
  const hand = await wrk(`${base.url}/`, requestBody(BASELINE_MODEL), CONNECTIONS);
  await base.stop();
  const rawBase = await rawRunsPerSecond(paths[BASELINE_MODEL.name]!, BASELINE_MODEL);
  const ours = await serve(registry, BASELINE_MODEL.name);
  const maasBase = await wrk(`${ours.url}/v2/models/${BASELINE_MODEL.name}/infer`, requestBody(BASELINE_MODEL), CONNECTIONS);
  await ours.stop();
  record({ bench: 'vs-hand-written', model: BASELINE_MODEL.name, rawRunsPerSec: rawBase.runsPerSec, handRps: hand.rps, handOverRaw: hand.rps / rawBase.runsPerSec, handP50: hand.p50, handP99: hand.p99, maasRps: maasBase.rps, maasOverRaw: maasBase.rps / rawBase.runsPerSec, maasP50: maasBase.p50, maasP99: maasBase.p99, ratio: maasBase.rps / hand.rps });

  console.log('\n| model | ms/run raw | raw runs/s | served req/s | served/raw | p50 ms | p99 ms | p99/p50 | --max-batch 1 req/s | its /raw | its p50 | its p99 | errors |');
  console.log('|---|---|---|---|---|---|---|---|---|---|---|---|---|');
  for (const line of table) console.log(line);
}

/** Alternating rounds of the two sides of a ratio: a neighbour's burst on this shared machine then hits both, not one. */
const ROUNDS = 3;

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

async function benchTransports(registry: string, record: (cell: Record<string, unknown>) => void): Promise<void> {
  // Per-request overhead on the tiny model: maas REST against a server that only parses the JSON.
  const small = MODELS[0]!;
  const bare = await bareServer();
  const tiny = await serve(registry, small.name);
  const bareUrl = `${bare.url}/`;
  const tinyUrl = `${tiny.url}/v2/models/${small.name}/infer`;
  await wrk(bareUrl, requestBody(small), CONNECTIONS, 1);
  await wrk(tinyUrl, requestBody(small), CONNECTIONS, 1);
  const bareRuns: WrkResult[] = [];
  const tinyRuns: WrkResult[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    bareRuns.push(await wrk(bareUrl, requestBody(small), CONNECTIONS));
    tinyRuns.push(await wrk(tinyUrl, requestBody(small), CONNECTIONS));
  }
  await bare.stop();
  await tiny.stop();
  const bareRps = median(bareRuns.map((r) => r.rps));
  const maasRps = median(tinyRuns.map((r) => r.rps));
  record({ bench: 'overhead', model: small.name, rounds: ROUNDS, bareRps, maasRps, ratio: maasRps / bareRps, roundRatios: tinyRuns.map((r, i) => r.rps / bareRuns[i]!.rps), maasP50: median(tinyRuns.map((r) => r.p50)), maasP99: median(tinyRuns.map((r) => r.p99)), errors: tinyRuns.reduce((n, r) => n + r.errors, 0) });

  // gRPC with raw contents against REST with the binary extension: same server, same C client.
  const medium = MODELS[1]!;
  const files = await binaryRequests(medium);
  const both = await serve(registry, medium.name, ['--grpc-port', '0']);
  const restArgs = (seconds: number) => ['--h1', '-D', String(seconds), '-c', String(CONNECTIONS), '-d', files.rest, '-H', `inference-header-content-length: ${files.restHeaderLength}`, '-H', 'content-type: application/octet-stream', `${both.url}/v2/models/${medium.name}/infer`];
  const grpcArgs = (seconds: number) => ['-D', String(seconds), '-c', '1', '-m', String(CONNECTIONS), '-d', files.grpc, '-H', 'content-type: application/grpc', '-H', 'te: trailers', `http://${both.grpc}/inference.GRPCInferenceService/ModelInfer`];
  await h2load(restArgs(1));
  await h2load(grpcArgs(1));
  const restRuns: Awaited<ReturnType<typeof h2load>>[] = [];
  const grpcRuns: Awaited<ReturnType<typeof h2load>>[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    restRuns.push(await h2load(restArgs(DURATION)));
    grpcRuns.push(await h2load(grpcArgs(DURATION)));
  }
  const errors = [...restRuns, ...grpcRuns].reduce((n, r) => n + r.failed, 0) + (await failedAnswers(both.url));
  await both.stop();
  const restRps = median(restRuns.map((r) => r.rps));
  const grpcRps = median(grpcRuns.map((r) => r.rps));
  const floor = { rest: [] as number[], grpc: [] as number[] };
  for (const [side, source, args] of [['rest', BARE_H1_BINARY, restArgs], ['grpc', BARE_H2_GRPC, grpcArgs]] as const) {
    const bare = await bareServer(source);
    const url = new URL(bare.url);
    const retarget = (list: string[]) => [...list.slice(0, -1), side === 'rest' ? `${bare.url}/` : `http://${url.host}/inference.GRPCInferenceService/ModelInfer`];
    await h2load(retarget(args(1)));
    for (let round = 0; round < ROUNDS; round++) {
      const before = cpuSeconds(bare.pid);
      const run = await h2load(retarget(args(DURATION)));
      floor[side].push(((cpuSeconds(bare.pid) - before) * 1e6) / run.done);
    }
    await bare.stop();
  }
  record({ bench: 'transport-floor', bareHttp1CpuUsPerAnswer: median(floor.rest), bareHttp2GrpcCpuUsPerAnswer: median(floor.grpc), ratio: median(floor.rest) / median(floor.grpc) });
  record({ bench: 'grpc-vs-rest', model: medium.name, rounds: ROUNDS, restRps, grpcRps, ratio: grpcRps / restRps, roundRatios: grpcRuns.map((r, i) => r.rps / restRuns[i]!.rps), restMeanMs: median(restRuns.map((r) => r.p50)), grpcMeanMs: median(grpcRuns.map((r) => r.p50)), errors });
}

/** POSTs JSON to a server route; the answer's JSON. */
async function postJson(url: string, body: unknown): Promise<any> {
  const res = await fetch(url, { method: 'POST', body: JSON.stringify(body) });
  if (!res.ok) throw new Error(`${url}: ${res.status} ${await res.text()}`);
  return res.json();
}

/**
 * Many models on one server (issue 10): time to the first answer of a cold version (load and
 * warm-up included) against a warm one, memory per loaded version against its file, and the p99
 * of the medium model under load while the large one is loaded and unloaded beside it.
 */
/**
 * Large JSON answers: three concurrent requests whose answers are 4M float32 values as JSON
 * (about 40 MB each) against an Identity model, and a liveness probe every 20 ms meanwhile.
 * The worst probe is what a Kubernetes liveness probe would see.
 */
async function benchAnswers(registry: string, record: (cell: Record<string, unknown>) => void): Promise<void> {
  const path = join(WORK, 'wide.onnx');
  writeMessage(path, modelProto(identity(DataType.FLOAT, ['n'])));
  execFileSync(process.execPath, [BIN, 'register', path, '--name', 'wide', '--registry', registry], { stdio: 'ignore' });
  const server = await serve(registry, 'wide');
  const values = Float32Array.from({ length: 4 << 20 }, (_, i) => (i % 1000) / 7);
  const header = JSON.stringify({ inputs: [{ name: 'x', shape: [values.length], datatype: 'FP32', parameters: { binary_data_size: values.byteLength } }] });
  const body = Buffer.concat([Buffer.from(header), Buffer.from(values.buffer)]);
  const infer = async () => {
    const res = await fetch(`${server.url}/v2/models/wide/infer`, { method: 'POST', body, headers: { 'inference-header-content-length': String(header.length) } });
    return (await res.arrayBuffer()).byteLength;
  };
  await infer();
  const probes: number[] = [];
  let done = false;
  const probing = (async () => {
    while (!done) {
      const started = performance.now();
      await fetch(`${server.url}/v2/health/live`);
      probes.push(performance.now() - started);
      await sleep(20);
    }
  })();
  const started = performance.now();
  const sizes = await Promise.all([infer(), infer(), infer()]);
  const totalMs = performance.now() - started;
  done = true;
  await probing;
  await server.stop();
  probes.sort((a, b) => a - b);
  record({ bench: 'large-json-answers', answers: 3, answerBytes: sizes[0], totalMs: Math.round(totalMs), probes: probes.length, livenessP50Ms: Math.round(probes[probes.length >> 1]!), livenessWorstMs: Math.round(probes.at(-1)!) });
}

async function benchModels(registry: string, record: (cell: Record<string, unknown>) => void): Promise<void> {
  const server = await serve(registry, '', ['--max-loaded-models', '8']);
  for (const m of MODELS) {
    const url = `${server.url}/v2/models/${m.name}/infer`;
    const body = JSON.parse(requestBody(m));
    let started = performance.now();
    await postJson(url, body);
    const coldMs = performance.now() - started;
    const warm: number[] = [];
    for (let i = 0; i < 20; i++) {
      started = performance.now();
      await postJson(url, body);
      warm.push(performance.now() - started);
    }
    const status = (await postJson(`${server.url}/v2/repository/index`, { ready: true })).find((s: { name: string }) => s.name === m.name);
    record({ bench: 'cold-vs-warm', model: m.name, coldMs, warmMs: warm.sort((a, b) => a - b)[10], fileMB: status.file_bytes / 1e6, residentMB: status.resident_bytes / 1e6, residentOverFile: status.resident_bytes / status.file_bytes });
  }
  const medium = MODELS[1]!;
  const large = MODELS[2]!;
  const url = `${server.url}/v2/models/${medium.name}/infer`;
  const alone = await wrk(url, requestBody(medium), CONNECTIONS);
  let churning = true;
  let cycles = 0;
  const churn = (async () => {
    while (churning) {
      await postJson(`${server.url}/v2/repository/models/${large.name}/load`, {});
      await postJson(`${server.url}/v2/repository/models/${large.name}/unload`, {});
      cycles++;
    }
  })();
  const beside = await wrk(url, requestBody(medium), CONNECTIONS);
  churning = false;
  await churn;
  await server.stop();
  record({ bench: 'p99-beside-churn', model: medium.name, churned: large.name, loadUnloadCycles: cycles, aloneP99: alone.p99, besideP99: beside.p99, ratio: beside.p99 / alone.p99, aloneRps: alone.rps, besideRps: beside.rps, errors: alone.errors + beside.errors });
}

async function benchHash(record: (cell: Record<string, unknown>) => void): Promise<void> {
  const big = join(WORK, 'hash.bin');
  execFileSync('sh', ['-c', `head -c ${1 << 30} /dev/urandom > ${big} && cat ${big} > /dev/null`]);
  let t = performance.now();
  await hashFile(big);
  const maasHash = (1 << 30) / ((performance.now() - t) / 1000);
  t = performance.now();
  execFileSync('openssl', ['dgst', '-sha256', big], { stdio: 'ignore' });
  const opensslHash = (1 << 30) / ((performance.now() - t) / 1000);
  rmSync(big);
  record({ bench: 'hash', maasMBps: maasHash / 1e6, opensslMBps: opensslHash / 1e6, ratio: maasHash / opensslHash });

}

interface ConvertJson { output: { size: number }; accuracy: { worst: number; outputs: { cosine: number }[] }; latency?: { ratio: number; originalP50Ms: number; convertedP50Ms: number } }

/** `maas convert ... --json` in a process of its own; the result, or the error's message. */
function convertCli(args: string[]): ConvertJson | { error: string } {
  const run = spawnSync(process.execPath, [BIN, 'convert', ...args, '--json'], { encoding: 'utf8', cwd: WORK });
  const json = JSON.parse(run.stdout) as ConvertJson & { error?: { message: string } };
  return json.error ? { error: json.error.message } : json;
}

/**
 * Every conversion mode on the medium and large MLPs (size, raw batch-1 and batch-32 latency
 * against float32, accuracy), then on each real model of the corpus that is in .corpus/ (size,
 * convert's own batch-1 latency line, accuracy on the corpus request, or why it was refused).
 */
async function benchConvert(record: (cell: Record<string, unknown>) => void): Promise<void> {
  const calibration = join(WORK, 'calibration.jsonl');
  const variants: [string, (m: Mlp) => string[]][] = [
    ['optimized', () => ['--optimize', 'extended']],
    ['fp16', () => ['--fp16', '--keep-io-types']],
    ['int8 dynamic', () => ['--int8']],
    ['int8 static', (m) => {
      writeFileSync(calibration, Array.from({ length: 32 }, (_, i) => JSON.stringify({ inputs: [{ name: 'input', datatype: 'FP32', shape: [1, m.input], data: Array.from(new Float32Array(randomFloats(m.input, 500 + i).buffer)) }] })).join('\n'));
      return ['--int8', 'static', '--calibrate', calibration];
    }],
    ['int8 weight-only', () => ['--int8', 'weight-only']],
    // Uniform random weights are int4's worst case: its error is recorded, not gated.
    ['int4', () => ['--int4', '--tolerance', '1']],
  ];
  console.log('\n| model | variant | size MB | ×size | batch-1 ms | ×latency | batch-32 ms | ×latency | worst normalized error | cosine |');
  console.log('|---|---|---|---|---|---|---|---|---|---|');
  for (const m of MODELS.slice(1)) {
    const original = join(WORK, `${m.name}-convert.onnx`);
    writeMessage(original, modelProto(deepMlp(m)));
    const base = { size: statSync(original).size, ms1: (await rawRunsPerSecond(original, m)).msPerRun, ms32: (await rawRunsPerSecond(original, m, 32)).msPerRun };
    console.log(row([m.name, 'original', base.size / 1e6, 1, base.ms1, 1, base.ms32, 1, '-', '-']));
    for (const [variant, flags] of variants) {
      const out = join(WORK, `${m.name}.${variant.replace(' ', '-')}.onnx`);
      const result = convertCli([original, ...flags(m), '--no-latency', '-o', out]);
      if ('error' in result) {
        console.log(row([m.name, variant, `refused: ${result.error.slice(0, 80)}`]));
        continue;
      }
      const [ms1, ms32] = [(await rawRunsPerSecond(out, m)).msPerRun, (await rawRunsPerSecond(out, m, 32)).msPerRun];
      const cosine = Math.min(...result.accuracy.outputs.map((o) => o.cosine));
      record({ bench: 'convert', model: m.name, variant, sizeBytes: result.output.size, sizeRatio: result.output.size / base.size, ms1, latency1: ms1 / base.ms1, ms32, latency32: ms32 / base.ms32, worstError: result.accuracy.worst, cosine });
      console.log(row([m.name, variant, result.output.size / 1e6, result.output.size / base.size, ms1, ms1 / base.ms1, ms32, ms32 / base.ms32, result.accuracy.worst.toExponential(2), cosine.toFixed(6)]));
    }
  }
  const corpus = CORPUS_MODELS.filter((model) => existsSync(corpusFile(model)));
  if (corpus.length === 0) return;
  console.log('\n| real model | variant | ×size | batch-1 p50 ms | ×latency | worst normalized error | |');
  console.log('|---|---|---|---|---|---|---|');
  for (const model of corpus) {
    const samples = join(WORK, `${model.name}-request.json`);
    writeFileSync(samples, JSON.stringify(corpusRequest(model)));
    for (const [variant, flags] of [['fp16', ['--fp16']], ['int8 dynamic', ['--int8']], ['int8 weight-only', ['--int8', 'weight-only']], ['int4', ['--int4']]] as const) {
      const result = convertCli([corpusFile(model), ...flags, '--samples', samples, '-o', join(WORK, `${model.name}.${variant.replace(' ', '-')}.onnx`)]);
      if ('error' in result) {
        record({ bench: 'convert-corpus', model: model.name, variant, refused: result.error });
        console.log(row([model.name, variant, '-', '-', '-', '-', result.error.slice(0, 100)]));
        continue;
      }
      const source = statSync(corpusFile(model)).size;
      record({ bench: 'convert-corpus', model: model.name, variant, sizeRatio: result.output.size / source, latency: result.latency, worstError: result.accuracy.worst });
      console.log(row([model.name, variant, result.output.size / source, result.latency ? `${result.latency.originalP50Ms.toFixed(3)} → ${result.latency.convertedP50Ms.toFixed(3)}` : '-', result.latency?.ratio ?? '-', result.accuracy.worst.toExponential(2), '']));
    }
  }
}

async function main(): Promise<void> {
  const only = process.env.BENCH_ONLY;
  if ((!only || only === 'serve' || only === 'transport' || only === 'models') && (spawnSync('wrk', ['-v']).error || spawnSync('h2load', ['--version']).error)) {
    console.error('npm run bench needs wrk and h2load: apt-get install wrk nghttp2-client (or BENCH_ONLY=hash|push|convert)');
    process.exit(2);
  }
  rmSync(WORK, { recursive: true, force: true });
  mkdirSync(WORK, { recursive: true });
  const registry = join(WORK, 'registry');
  execFileSync(process.execPath, [BIN, 'init', registry, '--yes'], { stdio: 'ignore' });
  const env = { ...process.env };
  const record = (cell: Record<string, unknown>) => console.log(JSON.stringify(cell));
  console.error(`bench: ${cpus()[0]?.model}, ${THREADS} cores, node ${process.version}, onnxruntime-node ${ort.env.versions.node}, ${DURATION}s per cell, wrk -t1 -c${CONNECTIONS}`);

  const paths = !only || only === 'serve' || only === 'transport' || only === 'models' ? registerModels(registry, env) : {};
  if (!only || only === 'serve') await benchServing(registry, paths, record);
  if (!only || only === 'serve' || only === 'transport') await benchTransports(registry, record);
  if (!only || only === 'models') await benchModels(registry, record);
  if (!only || only === 'answers') await benchAnswers(registry, record);
  if (!only || only === 'hash') await benchHash(record);
  if (!only || only === 'push') await benchPush(registry, record);
  if (!only || only === 'convert') await benchConvert(record);
}

await main();
