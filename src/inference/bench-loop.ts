/**
 * The measuring loop `maas bench` runs in-process (bench.ts) and through a server
 * (bench-server.ts): per batch size, generated inputs (the first dim is the batch size, every
 * other free dim 1), a warm-up, then requests back to back, one in flight (Triton
 * perf_analyzer's concurrency 1), each timed; nearest-rank percentiles and throughput.
 */
import { MaasError } from '../core/errors.js';
import type { Signature } from '../onnx/inspect.js';
import type { BatchProfile, BatchStats } from '../registry/profiles.js';
import { BENCH_DEFAULTS } from './config.js';
import { sampleFeeds } from './samples.js';
import type { WireTensor } from './tensors.js';

/** Runs of each batch size before timing starts, at the least (allocations, kernel choice). */
const WARMUP_RUNS = 3;
/** The warm-up's time at most, when a tenth of the duration is longer. */
const MAX_WARMUP_MS = 1000;

export interface ProfileOptions {
  /** batch sizes, measured in this order; each a positive integer. */
  batches: number[];
  /** measuring time per batch size (ms), after its warm-up. */
  durationMs: number;
  /** warm-up time per batch size (ms); default a tenth of durationMs, at most 1 s; at least 3 runs whatever it is. */
  warmupMs?: number | undefined;
  /** a request not answered within this many ms fails the profile (default SERVING_DEFAULTS.timeoutMs). */
  timeoutMs?: number | undefined;
  /** called as each batch size starts: for a progress line. */
  onBatch?: ((batch: number, index: number, total: number) => void) | undefined;
}

/** What a profiling run measured: per batch size, and what ran it. */
export interface ModelProfile {
  /** the provider that ran the model (a server's, as its repository index says; `unknown` if it did not). */
  provider: string;
  /** intra-op threads in-process; undefined through a server. */
  threads?: number;
  durationMs: number;
  batches: BatchProfile[];
}

/** Refuses options no measurement can honour; the command's parsers say it first, this guards other callers. */
export function checkProfileOptions(options: ProfileOptions): void {
  if (options.batches.length === 0 || options.batches.some((b) => !Number.isSafeInteger(b) || b < 1 || b > BENCH_DEFAULTS.maxBatch)) {
    throw new MaasError('MAAS_USAGE', `batch sizes must be integers from 1 to ${BENCH_DEFAULTS.maxBatch}, got ${options.batches.join(',') || 'none'}`, { hint: 'For example --batch 1,8,32.' });
  }
  if (!(options.durationMs > 0) || !Number.isFinite(options.durationMs)) {
    throw new MaasError('MAAS_USAGE', `the duration per batch size must be positive, got ${options.durationMs} ms`, { hint: 'For example --duration 10s.' });
  }
}

/**
 * Why the model cannot take `batch` rows, if it cannot: an input's first dim is fixed at
 * another size, or (for a batch above 1) no input has a first dim to batch along.
 */
export function batchProblem(signature: Signature, batch: number): string | undefined {
  let batchable = false;
  for (const input of signature.inputs) {
    if (input.shape === null || input.shape.length === 0) continue;
    const first = input.shape[0];
    if (typeof first === 'number') {
      if (first !== batch) return `input '${input.name}' has a fixed first dim of ${first}`;
    }
    batchable = true;
  }
  if (!batchable && batch !== 1) return 'no input has a first dim to batch along';
  return undefined;
}

/** Generated inputs of `batch` rows: the first dim (symbolic or unknown) is `batch`, other free dims 1. */
export function batchFeeds(signature: Signature, batch: number, seed = 7): Record<string, WireTensor> {
  const shaped: Signature = {
    inputs: signature.inputs.map((i) => (i.shape && i.shape.length > 0 && i.shape[0] === null ? { ...i, shape: ['batch', ...i.shape.slice(1)] } : i)),
    outputs: signature.outputs,
  };
  return sampleFeeds(shaped, seed, (dim) => (dim === 0 ? batch : 1));
}

const round = (n: number, digits: number) => Number(n.toFixed(digits));

/** Percentiles (nearest rank) and throughput of one batch size's timed requests. */
export function batchStats(batch: number, latenciesMs: number[], elapsedMs: number): BatchStats {
  const sorted = Float64Array.from(latenciesMs).sort();
  const n = sorted.length;
  const at = (q: number) => sorted[Math.min(n - 1, Math.max(0, Math.ceil(q * n) - 1))]!;
  const seconds = elapsedMs / 1000;
  return {
    batch,
    status: 'ok',
    requests: n,
    p50Ms: round(at(0.5), 4),
    p90Ms: round(at(0.9), 4),
    p99Ms: round(at(0.99), 4),
    meanMs: round(sorted.reduce((s, v) => s + v, 0) / n, 4),
    minMs: round(sorted[0]!, 4),
    maxMs: round(sorted[n - 1]!, 4),
    rowsPerSec: round((n * batch) / seconds, 1),
    requestsPerSec: round(n / seconds, 1),
  };
}

/**
 * The loop both modes share: per batch size, one request to find out whether the model takes it
 * (`refused` names why not, or undefined when the error is a real failure), the warm-up, then
 * requests back to back for `durationMs`, each timed.
 */
export async function measureBatches(
  signature: Signature,
  options: ProfileOptions,
  send: (feeds: Record<string, WireTensor>) => Promise<void>,
  refused: (error: unknown) => string | undefined,
): Promise<BatchProfile[]> {
  const results: BatchProfile[] = [];
  const warmupMs = options.warmupMs ?? Math.min(MAX_WARMUP_MS, options.durationMs / 10);
  for (const [index, batch] of options.batches.entries()) {
    options.onBatch?.(batch, index, options.batches.length);
    const problem = batchProblem(signature, batch);
    if (problem !== undefined) {
      results.push({ batch, status: 'skipped', reason: problem });
      continue;
    }
    const feeds = batchFeeds(signature, batch);
    try {
      await send(feeds);
    } catch (error) {
      const reason = refused(error);
      if (reason === undefined) throw error;
      results.push({ batch, status: 'skipped', reason });
      continue;
    }
    const warmStarted = performance.now();
    for (let runs = 1; runs < WARMUP_RUNS || performance.now() - warmStarted < warmupMs; runs++) await send(feeds);
    const latencies: number[] = [];
    const started = performance.now();
    let now = started;
    do {
      const sent = now;
      await send(feeds);
      now = performance.now();
      latencies.push(now - sent);
    } while (now - started < options.durationMs);
    results.push(batchStats(batch, latencies, now - started));
  }
  return results;
}
