/**
 * A load generator and a `maas serve` in its own process, shared by the soak test, the slow
 * client tests and `npm run soak`: many keep-alive connections, each sending its next request
 * as soon as the last is answered (closed loop, saturation), with every answer's status and
 * latency recorded, and the server's resident memory read from /proc.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { fileURLToPath } from 'node:url';

const BIN = fileURLToPath(new URL('../../bin/maas.js', import.meta.url));

export interface ServeProcess {
  url: string;
  child: ChildProcess;
  /** resident memory of the server process, in bytes (Linux). */
  rss(): number;
  stop(): Promise<number | null>;
}

/** `maas serve ARGS --port 0 --json` in `cwd`; resolves once it listens. */
export function serveProcess(cwd: string, env: Record<string, string | undefined>, args: string[]): Promise<ServeProcess> {
  const child = spawn(process.execPath, [BIN, 'serve', ...args, '--port', '0', '--device', 'cpu', '--json'], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (d) => (err += d));
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d) => {
      out += d;
      const url = /"url":"([^"]+)"/.exec(out)?.[1];
      if (!url) return;
      child.stdout!.removeAllListeners('data');
      child.stdout!.resume();
      resolve({
        url,
        child,
        rss: () => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'))?.[1] ?? NaN) * 1024,
        stop: () => new Promise((done) => {
          if (child.exitCode !== null) return done(child.exitCode);
          child.once('exit', (code) => done(code));
          child.kill('SIGTERM');
        }),
      });
    });
    child.once('exit', (code) => reject(new Error(`maas serve exited with ${code}: ${err}`)));
  });
}

export interface LoadResult {
  /** requests answered after the warm-up, and in how long. */
  requests: number;
  seconds: number;
  /** answers by status code, warm-up included. */
  statuses: Record<number, number>;
  /** requests that got no HTTP answer at all (reset, refused, timed out), warm-up included. */
  connectionErrors: number;
  p50: number;
  p99: number;
}

export function percentile(values: number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = Float64Array.from(values).sort();
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]!;
}

export interface LoadOptions {
  url: string;
  path: string;
  body?: Buffer;
  connections: number;
  seconds: number;
  /** load before the measured `seconds`, on the same connections; its latencies are not counted. */
  warmupSeconds?: number;
  /** called about once a second while the load runs, warm-up included. */
  tick?: (elapsedSeconds: number) => void;
}

/** Runs a closed loop of `connections` keep-alive clients for warm-up plus `seconds`. */
export async function runLoad(options: LoadOptions): Promise<LoadResult> {
  const agent = new Agent({ keepAlive: true, maxSockets: options.connections });
  const latencies: number[] = [];
  const statuses: Record<number, number> = {};
  let connectionErrors = 0;
  let measured = 0;
  const started = performance.now();
  const warm = started + (options.warmupSeconds ?? 0) * 1000;
  const until = warm + options.seconds * 1000;
  const ticker = setInterval(() => options.tick?.((performance.now() - started) / 1000), 1000);
  const one = () => new Promise<void>((resolve) => {
    const sent = performance.now();
    const req = request(options.url + options.path, {
      agent,
      method: options.body ? 'POST' : 'GET',
      headers: options.body ? { 'content-type': 'application/json', 'content-length': options.body.length } : {},
      timeout: 30_000,
    }, (res) => {
      res.resume();
      res.on('end', () => {
        if (sent >= warm) {
          latencies.push(performance.now() - sent);
          measured++;
        }
        statuses[res.statusCode!] = (statuses[res.statusCode!] ?? 0) + 1;
        resolve();
      });
    });
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', () => {
      connectionErrors++;
      if (sent >= warm) measured++;
      resolve();
    });
    req.end(options.body);
  });
  await Promise.all(Array.from({ length: options.connections }, async () => {
    while (performance.now() < until) await one();
  }));
  clearInterval(ticker);
  agent.destroy();
  return {
    requests: measured,
    seconds: (performance.now() - warm) / 1000,
    statuses,
    connectionErrors,
    p50: percentile(latencies, 0.5),
    p99: percentile(latencies, 0.99),
  };
}

export interface SoakResult {
  load: LoadResult;
  /** the server's RSS at the start and at the end of the measured load (medians, see soak()), in bytes. */
  rssAfterWarmup: number;
  rssAtEnd: number;
  rssGrowth: number;
  warmupSeconds: number;
  /** one RSS reading a second after warm-up, in bytes. */
  rssSamples: number[];
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? NaN;
}

/**
 * Saturates `maas serve` on `model` (a registry in `cwd`) with JSON infer requests for
 * `seconds` after a warm-up of a quarter of that (at least 10 s: V8's heap and onnxruntime's
 * arenas grow to their working size), reading its RSS once a second. Growth compares the median
 * of the middle third of the readings after warm-up with the median of the last third: a leak
 * climbs through the whole run, while one reading against one other would mostly measure where
 * each fell in the garbage collector's saw-tooth. The first third is left out: on a slow machine
 * the arenas still take their last step there (129 → 141 MiB, then flat at 141-143, in one CI run).
 */
export async function soak(options: { cwd: string; env: Record<string, string | undefined>; model: string; body: Buffer; seconds: number; connections: number; maxQueue: number; log?: (line: string) => void }): Promise<SoakResult> {
  const server = await serveProcess(options.cwd, options.env, [options.model, '--max-queue', String(options.maxQueue)]);
  try {
    const path = `/v2/models/${options.model}/infer`;
    const warmupSeconds = Math.max(10, options.seconds / 4);
    const rssSamples: number[] = [];
    const load = await runLoad({
      url: server.url, path, body: options.body, connections: options.connections, seconds: options.seconds, warmupSeconds,
      tick: (t) => {
        const rss = server.rss();
        if (t >= warmupSeconds) rssSamples.push(rss);
        if (Math.round(t) % 10 === 0) options.log?.(`${Math.round(t)} s: RSS ${(rss / 2 ** 20).toFixed(1)} MiB`);
      },
    });
    rssSamples.push(server.rss());
    const third = Math.max(1, Math.floor(rssSamples.length / 3));
    const rssAfterWarmup = median(rssSamples.slice(third, 2 * third));
    const rssAtEnd = median(rssSamples.slice(-third));
    return { load, rssAfterWarmup, rssAtEnd, rssGrowth: rssAtEnd / rssAfterWarmup - 1, warmupSeconds, rssSamples };
  } finally {
    await server.stop();
  }
}
