/**
 * Triton's statistics extension, the same over REST (`GET /v2/models[/M[/versions/V]]/stats`)
 * and gRPC (ModelStatistics): per served version, what it did since the server started, in
 * Triton's fields, so a dashboard or perf_analyzer written for Triton reads maas unchanged.
 *
 * Requests are counted where the inference core sees them, as Triton's core does: from the
 * moment a decoded request is queued to its answer, not the transport's parsing around it.
 * Per request (inference_stats) a batch's merge, run and split count once for each request in
 * it; per batch size (batch_stats) once per run.
 */
import type { ModelManager, Slot } from '../inference/manager.js';
import type { BatchRun, RuntimeObserver } from '../inference/runtime.js';

/** Triton's StatisticDuration: how many times, and their total in nanoseconds. */
interface Duration {
  count: number;
  ns: number;
}

interface BatchDurations {
  compute_input: Duration;
  compute_infer: Duration;
  compute_output: Duration;
}

const NS_PER_MS = 1e6;

function add(d: Duration, ms: number, times = 1): void {
  d.count += times;
  d.ns += Math.round(ms * NS_PER_MS) * times;
}

const duration = (): Duration => ({ count: 0, ns: 0 });
const batchDurations = (): BatchDurations => ({ compute_input: duration(), compute_infer: duration(), compute_output: duration() });

/** One version's counters: bumped by its runtime's observer, read when a client asks. */
export class VersionStatistics {
  lastInference = 0;
  inferenceCount = 0;
  executionCount = 0;
  readonly success = duration();
  readonly fail = duration();
  readonly queue = duration();
  readonly compute = batchDurations();
  readonly bySize = new Map<number, BatchDurations>();

  constructor(private readonly now: () => number) {}

  readonly observer: Required<RuntimeObserver> = {
    batch: (run: BatchRun) => {
      if (!run.ok) return;
      this.executionCount++;
      // Per request, as Triton's are: only the requests this run answered (a request that timed out
      // while its batch ran is a failure, and Triton counts compute times for successes only).
      add(this.compute.compute_input, run.inputMs, run.answered);
      add(this.compute.compute_infer, run.inferMs, run.answered);
      add(this.compute.compute_output, run.outputMs, run.answered);
      let size = this.bySize.get(run.rows);
      if (!size) this.bySize.set(run.rows, (size = batchDurations()));
      add(size.compute_input, run.inputMs);
      add(size.compute_infer, run.inferMs);
      add(size.compute_output, run.outputMs);
    },
    settled: (ok, rows, totalMs, queueMs) => {
      this.lastInference = this.now();
      add(ok ? this.success : this.fail, totalMs);
      if (!ok) return;
      this.inferenceCount += rows;
      add(this.queue, queueMs);
    },
  };
}

/** Every version's statistics, kept across unloads and reloads for as long as the server runs. */
export class ServeStatistics {
  private readonly versions = new Map<string, VersionStatistics>();

  constructor(private readonly now: () => number = Date.now) {}

  of(model: string, version: number): VersionStatistics {
    const key = `${model}@${version}`;
    let stats = this.versions.get(key);
    if (!stats) this.versions.set(key, (stats = new VersionStatistics(this.now)));
    return stats;
  }

  /** Triton's `$model_stat` for a served version: zeros for one that answered nothing yet. */
  report(slot: Slot) {
    const s = this.of(slot.name, slot.version);
    return {
      name: slot.name,
      version: slot.versionLabel,
      last_inference: s.lastInference,
      inference_count: s.inferenceCount,
      execution_count: s.executionCount,
      inference_stats: { success: s.success, fail: s.fail, queue: s.queue, ...s.compute, cache_hit: duration(), cache_miss: duration() },
      batch_stats: [...s.bySize].sort(([a], [b]) => a - b).map(([size, d]) => ({ batch_size: size, ...d })),
      // What its load added to the process's resident size, while loaded.
      memory_usage: slot.runtime && slot.residentBytes !== undefined ? [{ type: 'CPU', id: 0, byte_size: slot.residentBytes }] : [],
    };
  }
}

export type ModelStatistics = ReturnType<ServeStatistics['report']>;

/**
 * The statistics a request asks for: every served version of every model, of one model, or one
 * version (a number or an alias), each answered as Triton does; an unknown name is NOT_FOUND.
 */
export function modelStatistics(manager: ModelManager, statistics: ServeStatistics, name?: string, version?: string): { model_stats: ModelStatistics[] } {
  const slots = name === undefined
    ? manager.allRoutes().flatMap((route) => [...route.versions.values()])
    : version === undefined
      ? [...manager.route(manager.resolve(name).name)!.versions.values()]
      : [manager.resolve(name, version)];
  slots.sort((a, b) => a.name.localeCompare(b.name) || a.version - b.version);
  return { model_stats: slots.map((slot) => statistics.report(slot)) };
}
