/**
 * One served model version: a pool of inference workers fed by a bounded queue with dynamic
 * batching. Requests that queue while every worker is busy are merged along dim 0 (up to
 * maxBatch rows) when the model's inputs and outputs all have a dynamic first dim; with
 * batchDelayMs > 0 an under-full batch also waits for company until its oldest request has
 * waited that long (Triton's max_queue_delay).
 *
 * Inline: a model whose one-row run takes under `inlineUs` on the CPU (the first worker times
 * it while warming up) also gets a session on this thread, and small requests run there, batched
 * per turn of the event loop. For such a model a hop to a worker and back costs more than the
 * run, and blocking the loop for a few microseconds a batch is cheaper than the hop. A request
 * too large to run in INLINE_BLOCK_US still goes to a worker; with batchDelayMs > 0 nothing runs
 * inline, as the delay asks for the queue's waiting. (DESIGN.md keeps inference off the
 * HTTP thread; this is the measured exception, see BENCHMARKS.md.)
 */
import { Worker } from 'node:worker_threads';
import { MaasError } from '../core/errors.js';
import type { Signature } from '../onnx/inspect.js';
import { INLINE_BLOCK_US, type RuntimeOptions } from './config.js';
import { DEVICE_FIXES, providerOrder } from './providers.js';
import type { OpenedSession } from './session.js';
import { concatBatch, splitBatch, type WireTensor } from './tensors.js';
import type { WorkerInit, WorkerReady, WorkerReply, WorkerRequest } from './worker.js';

/** One batch run, successful or not; times in ms on this thread's clock. */
export interface BatchRun {
  /** false when onnxruntime failed: its requests all get the error. */
  ok: boolean;
  rows: number;
  requests: number;
  /** requests this run answered: those of the batch not already failed meanwhile (a timeout while it ran). */
  answered: number;
  /** merging the requests' inputs into the batch's. */
  inputMs: number;
  /** onnxruntime's run (in the worker, where one ran it). */
  inferMs: number;
  /** splitting the batch's outputs into each request's answer. */
  outputMs: number;
}

export interface RuntimeObserver {
  batch?(run: BatchRun): void;
  /**
   * One request answered or failed: its rows, ms from queued to settled, and ms it waited in the
   * queue (all of it, for a request that never left the queue).
   */
  settled?(ok: boolean, rows: number, totalMs: number, queueMs: number): void;
}

export interface InferJob {
  feeds: Record<string, WireTensor>;
  /** outputs to return, in order. */
  outputs: string[];
  /** ms since epoch after which the caller gets MAAS_TIMEOUT; none: wait as long as it takes. */
  deadline?: number;
}

interface Pending extends InferJob {
  /** rows along dim 0, or undefined when this request cannot share a batch. */
  rows: number | undefined;
  key: string;
  /** performance.now() when queued, and when its batch started (merging its inputs). */
  enqueuedAt: number;
  startedAt: number | undefined;
  settled: boolean;
  resolve: (outputs: Record<string, WireTensor>) => void;
  reject: (error: MaasError) => void;
}

/** A batch handed to a worker: its requests, and the ms merging their inputs took. */
interface SentBatch {
  group: Pending[];
  inputMs: number;
}

interface PoolWorker {
  worker: Worker;
  /** batches sent and not yet answered, by request id, in the order the worker runs them. */
  running: Map<number, SentBatch>;
}

/** How long close() lets runs under way finish before it terminates their workers. */
const CLOSE_GRACE_MS = 30_000;

/** setTimeout's largest delay; longer ones fire at once. */
const MAX_TIMER_MS = 2 ** 31 - 1;

// From src/ under vitest the worker is the built one: Node 20 cannot run a .ts worker.
const WORKER_URL = new URL(import.meta.url.endsWith('.ts') ? '../../dist/inference/worker.js' : './worker.js', import.meta.url);

export interface RuntimeSpec {
  name: string;
  version: number;
  signature: Signature;
  modelPath: string;
  /** the version's stored warm-up samples; none: each session warms up on a generated sample. */
  samples?: Record<string, WireTensor>[] | undefined;
}

/**
 * Loads several runtimes, hands them to `use`, and closes every one that loaded on every path:
 * a runtime that loaded while its sibling failed is closed too, so no worker keeps the process alive.
 */
export async function withRuntimes<T>(specs: RuntimeSpec[], options: RuntimeOptions, use: (runtimes: ModelRuntime[]) => Promise<T>): Promise<T> {
  const loads = await Promise.allSettled(specs.map((spec) => ModelRuntime.load(spec, options)));
  const loaded = loads.flatMap((l) => (l.status === 'fulfilled' ? [l.value] : []));
  try {
    const failed = loads.find((l): l is PromiseRejectedResult => l.status === 'rejected');
    if (failed) throw failed.reason;
    return await use(loaded);
  } finally {
    await Promise.all(loaded.map((runtime) => runtime.close()));
  }
}

/** A model whose inputs and outputs all have a free first dim can have requests merged. */
export function isBatchable(signature: Signature): boolean {
  const dynamicFirst = (shape: (number | string | null)[] | null) => shape !== null && shape.length > 0 && typeof shape[0] !== 'number';
  return signature.inputs.every((i) => dynamicFirst(i.shape)) && signature.outputs.every((o) => dynamicFirst(o.shape));
}

export class ModelRuntime {
  readonly batchable: boolean;
  provider = '';
  loadMs = 0;
  /** median µs of a one-row run, timed by the first worker after its warm-up; undefined where not measurable. */
  probeUs: number | undefined;
  /** the first worker's warm-up run(s). */
  warmupMs = 0;
  /** why the generated warm-up sample failed, where it did (the version serves all the same). */
  warmupError: string | undefined;
  private readonly pool: PoolWorker[] = [];
  private readonly queue: Pending[] = [];
  private delayTimer: NodeJS.Timeout | undefined;
  private nextId = 1;
  private closed = false;
  private drainWaiters: (() => void)[] = [];
  private readonly depth: number;
  /** every request not yet answered, queued or running: what the deadline sweep looks at. */
  private readonly live = new Set<Pending>();
  private deadlineTimer: NodeJS.Timeout | undefined;
  private nextDeadline: number | undefined;
  /** the session on this thread, for a model a probe found inline-fast. */
  private inline: OpenedSession | undefined;
  /** rows one inline batch may hold: its estimated run stays within INLINE_BLOCK_US. */
  private inlineRows = 0;
  private readonly inlineQueue: Pending[] = [];
  private inlineRunning: Pending[] = [];
  private inlineScheduled = false;

  private constructor(
    readonly name: string,
    readonly version: number,
    readonly signature: Signature,
    private readonly modelPath: string,
    private readonly samples: Record<string, WireTensor>[] | undefined,
    readonly options: RuntimeOptions,
    private readonly observer: RuntimeObserver,
  ) {
    this.batchable = isBatchable(signature) && options.maxBatch > 1;
    // Without batching, a second request waits in the worker's own queue, so the worker starts
    // it the moment the first ends instead of after a round trip through the HTTP thread. With
    // batching, queued requests wait here instead, where they can be merged.
    this.depth = this.batchable ? 1 : 2;
  }

  /** Starts the workers; the first decides the provider (and times the model), the others use the same. */
  static async load(spec: RuntimeSpec, options: RuntimeOptions, observer: RuntimeObserver = {}): Promise<ModelRuntime> {
    const runtime = new ModelRuntime(spec.name, spec.version, spec.signature, spec.modelPath, spec.samples, options, observer);
    const started = performance.now();
    try {
      // Only a model whose warm-up (first runs, with their allocations) stays under 1000× the
      // inline limit is probed: a tiny one's took 1-2 ms idle and 5-10 ms with both cores busy.
      const first = await runtime.spawn(providerOrder(options.device), options.inlineUs > 0 ? options.inlineUs * 1000 : undefined);
      runtime.provider = first.provider;
      runtime.probeUs = first.probeUs;
      runtime.warmupMs = first.warmupMs;
      runtime.warmupError = first.warmupError;
      // allSettled: a worker still starting when another fails must be closed too, not leaked.
      const started = await Promise.allSettled(Array.from({ length: options.workers - 1 }, () => runtime.spawn([runtime.provider], undefined)));
      const failed = started.find((s): s is PromiseRejectedResult => s.status === 'rejected');
      if (failed) throw failed.reason;
      // Inline pays only by batching per turn: unbatched requests run faster on a worker, beside the
      // HTTP thread. A batch delay asks requests to wait for company, which only the queue does.
      if (runtime.batchable && options.batchDelayMs === 0 && runtime.provider === 'cpu' && runtime.probeUs !== undefined && runtime.probeUs <= options.inlineUs) await runtime.openInline();
    } catch (error) {
      await runtime.close();
      throw error;
    }
    runtime.loadMs = performance.now() - started;
    return runtime;
  }

  /** whether small requests run on this thread (see the header). */
  get runsInline(): boolean {
    return this.inline !== undefined;
  }

  get queueDepth(): number {
    return this.queue.length + this.inlineQueue.length;
  }

  get inFlight(): number {
    return this.pool.reduce((n, w) => n + [...w.running.values()].reduce((m, b) => m + b.group.length, 0), 0) + this.inlineRunning.length;
  }

  infer(job: InferJob): Promise<Record<string, WireTensor>> {
    if (this.closed) return Promise.reject(new MaasError('MAAS_MODEL_NOT_READY', `${this.name}@${this.version} is unloading`));
    if (this.queueDepth >= this.options.maxQueue) {
      this.observer.settled?.(false, this.rowsOf(job.feeds) ?? 1, 0, 0);
      return Promise.reject(new MaasError('MAAS_OVERLOADED', `${this.name}@${this.version} has ${this.queueDepth} requests queued (--max-queue ${this.options.maxQueue})`, {
        hint: 'Retry after a moment, or raise --max-queue / --workers.',
      }));
    }
    return new Promise((resolve, reject) => {
      const pending: Pending = { feeds: job.feeds, outputs: job.outputs, deadline: job.deadline, rows: this.rowsOf(job.feeds), key: batchKey(job.feeds), enqueuedAt: performance.now(), startedAt: undefined, settled: false, resolve, reject };
      this.live.add(pending);
      this.armDeadline(pending.deadline);
      if (this.inline && (pending.rows ?? 1) <= this.inlineRows) this.inlineQueue.push(pending);
      else this.queue.push(pending);
      this.schedule();
    });
  }

  /** Resolves once nothing is queued or running: the old version's half of a hot swap. */
  drain(): Promise<void> {
    if (this.queueDepth === 0 && this.inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => this.drainWaiters.push(resolve));
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.delayTimer);
    clearTimeout(this.deadlineTimer);
    const unloaded = new MaasError('MAAS_MODEL_NOT_READY', `${this.name}@${this.version} was unloaded`);
    for (const p of [...this.queue.splice(0), ...this.inlineQueue.splice(0)]) this.settle(p, unloaded);
    // A worker terminated in the middle of session.run aborts the whole process (onnxruntime-node's
    // async work calls back into a torn-down thread): runs under way finish first.
    let grace: NodeJS.Timeout | undefined;
    await Promise.race([this.drain(), new Promise<void>((resolve) => (grace = setTimeout(resolve, CLOSE_GRACE_MS)))]);
    clearTimeout(grace);
    const inline = this.inline;
    this.inline = undefined;
    const pool = this.pool.splice(0);
    for (const p of pool.flatMap((w) => [...w.running.values()].flatMap((b) => b.group))) this.settle(p, unloaded);
    await Promise.all([...pool.map((w) => w.worker.terminate()), inline?.release()]);
  }

  /** Rows along dim 0 when every input agrees on them and the model can batch; else undefined. */
  private rowsOf(feeds: Record<string, WireTensor>): number | undefined {
    if (!this.batchable) return undefined;
    let rows: number | undefined;
    for (const name in feeds) {
      const d = feeds[name]!.dims[0];
      if (d === undefined || (rows !== undefined && d !== rows)) return undefined;
      rows = d;
    }
    return rows;
  }

  private async openInline(): Promise<void> {
    const { openSession, warmUp } = await import('./session.js');
    const { session, tried } = await openSession(this.modelPath, ['cpu'], 1);
    if (!session) throw new MaasError('MAAS_MODEL_INVALID', `cannot load ${this.name}@${this.version} on this thread: ${tried[0]?.error ?? 'unknown'}`);
    await warmUp(session, this.signature, this.samples);
    this.inline = session;
    this.inlineRows = Math.max(1, Math.floor(INLINE_BLOCK_US / Math.max(this.probeUs!, 1)));
  }

  private spawn(providers: string[], timeBelowUs: number | undefined): Promise<{ provider: string; probeUs: number | undefined; warmupMs: number; warmupError: string | undefined }> {
    const init: WorkerInit = { modelPath: this.modelPath, providers, threads: this.options.threads, signature: this.signature, samples: this.samples, timeBelowUs };
    const worker = new Worker(WORKER_URL, { workerData: init });
    return new Promise((resolve, reject) => {
      const onFail = (message: string) => {
        void worker.terminate();
        reject(new MaasError(providers.length === 1 && providers[0] !== 'cpu' ? 'MAAS_DEVICE_UNAVAILABLE' : 'MAAS_MODEL_INVALID', message, {
          hint: DEVICE_FIXES[providers[0]!] ?? 'Check the model with `maas register` (it load-checks on the CPU).',
        }));
      };
      worker.once('error', (error) => onFail(`the inference worker for ${this.name}@${this.version} failed: ${error.message}`));
      worker.once('message', (ready: WorkerReady) => {
        if (ready.type === 'failed' && ready.error !== undefined) {
          // The session loaded; the version's own warm-up samples did not run on it.
          void worker.terminate();
          reject(new MaasError('MAAS_MODEL_INVALID', `${this.name}@${this.version} cannot serve: ${ready.error}`, { hint: 'Register the version again with warm-up samples that fit its signature.' }));
          return;
        }
        if (ready.type === 'failed') {
          const reasons = ready.tried.map((t) => `${t.provider}: ${t.error.split('\n')[0]}`).join('; ');
          onFail(`cannot load ${this.name}@${this.version} on ${providers.join(' or ')}: ${reasons}`);
          return;
        }
        worker.removeAllListeners('error');
        if (this.closed) {
          // closed while this worker started (a sibling failed, or a crash respawn raced close)
          void worker.terminate();
          reject(new MaasError('MAAS_MODEL_NOT_READY', `${this.name}@${this.version} was unloaded while it loaded`));
          return;
        }
        const member: PoolWorker = { worker, running: new Map() };
        worker.on('message', (reply: WorkerReply) => this.finish(member, reply));
        worker.on('error', (error) => this.crashed(member, error));
        this.pool.push(member);
        this.schedule();
        resolve({ provider: ready.provider, probeUs: ready.probeUs, warmupMs: ready.warmupMs, warmupError: ready.warmupError });
      });
    });
  }

  private schedule(): void {
    if (this.inlineQueue.length > 0 && !this.inlineScheduled && this.inlineRunning.length === 0) {
      // Run on a later turn: requests parsed in this one join the batch.
      this.inlineScheduled = true;
      setImmediate(() => void this.runInline());
    }
    if (this.delayTimer !== undefined) {
      clearTimeout(this.delayTimer);
      this.delayTimer = undefined;
    }
    while (this.queue.length > 0) {
      const worker = this.pool.find((w) => w.running.size < this.depth);
      if (!worker) return;
      const head = this.queue[0]!;
      const group = takeGroup(this.queue, this.options.maxBatch);
      const rows = group.reduce((n, p) => n + (p.rows ?? 0), 0);
      const waited = performance.now() - head.enqueuedAt;
      if (this.options.batchDelayMs > 0 && head.rows !== undefined && rows < this.options.maxBatch && waited < this.options.batchDelayMs) {
        this.queue.unshift(...group); // not yet: wait for company, up to the delay
        this.delayTimer = setTimeout(() => this.schedule(), this.options.batchDelayMs - waited);
        return;
      }
      this.dispatch(worker, group);
    }
  }

  /** One turn's inline work: batches until the queue is empty or INLINE_BLOCK_US is spent (with --max-batch 1, one run a request). */
  private async runInline(): Promise<void> {
    this.inlineScheduled = false;
    const turnStarted = performance.now();
    while (this.inline && this.inlineQueue.length > 0 && (performance.now() - turnStarted) * 1000 < INLINE_BLOCK_US) {
      await this.runInlineBatch(this.inline);
    }
    this.schedule();
    this.notifyDrained();
  }

  private async runInlineBatch(session: OpenedSession): Promise<void> {
    const group = takeGroup(this.inlineQueue, Math.min(this.options.maxBatch, this.inlineRows));
    this.inlineRunning = group;
    const { feeds, fetches, inputMs } = this.start(group);
    const started = performance.now();
    let outcome: Record<string, WireTensor> | MaasError;
    try {
      outcome = await session.run(feeds, fetches);
    } catch (error) {
      outcome = new MaasError('MAAS_INFERENCE_FAILED', `onnxruntime failed on ${this.name}@${this.version}: ${error instanceof Error ? error.message : String(error)}`);
    }
    const inferMs = performance.now() - started;
    this.inlineRunning = [];
    this.deliver(group, outcome, inputMs, inferMs);
  }

  /** A batch's first step: its requests leave the queue, and their inputs become the batch's. */
  private start(group: Pending[]): ReturnType<typeof merged> & { inputMs: number } {
    const startedAt = performance.now();
    for (const p of group) p.startedAt = startedAt;
    return { ...merged(group), inputMs: performance.now() - startedAt };
  }

  private dispatch(member: PoolWorker, group: Pending[]): void {
    const { feeds, fetches, inputMs } = this.start(group);
    const transfer = Object.values(feeds).flatMap((t) => (Array.isArray(t.data) ? [] : [t.data.buffer as ArrayBuffer]));
    const request: WorkerRequest = { id: this.nextId++, feeds, fetches };
    member.running.set(request.id, { group, inputMs });
    // A batch of one keeps its buffers: transferring would detach the caller's arrays.
    member.worker.postMessage(request, group.length > 1 ? transfer : []);
  }

  private finish(member: PoolWorker, reply: WorkerReply): void {
    const sent = member.running.get(reply.id);
    member.running.delete(reply.id);
    if (sent) {
      this.deliver(sent.group, reply.error !== undefined || !reply.outputs
        ? new MaasError('MAAS_INFERENCE_FAILED', `onnxruntime failed on ${this.name}@${this.version}: ${reply.error}`)
        : reply.outputs, sent.inputMs, reply.inferMs);
    }
    this.schedule();
    this.notifyDrained();
  }

  /** Hands each request of a batch its rows of the outputs, or the batch's error; then reports the run. */
  private deliver(group: Pending[], outcome: Record<string, WireTensor> | MaasError, inputMs: number, inferMs: number): void {
    const started = performance.now();
    const answered = group.reduce((n, p) => n + (p.settled ? 0 : 1), 0);
    this.answer(group, outcome);
    this.observer.batch?.({ ok: !(outcome instanceof MaasError), rows: group.reduce((n, p) => n + (p.rows ?? 1), 0), requests: group.length, answered, inputMs, inferMs, outputMs: performance.now() - started });
  }

  private answer(group: Pending[], outcome: Record<string, WireTensor> | MaasError): void {
    if (outcome instanceof MaasError) {
      for (const p of group) this.settle(p, outcome);
    } else if (group.length === 1) {
      this.settle(group[0]!, pick(outcome, group[0]!.outputs));
    } else {
      const pieces: Record<string, WireTensor[]> = {};
      for (const [name, tensor] of Object.entries(outcome)) pieces[name] = splitBatch(tensor, group.map((p) => p.rows!));
      group.forEach((p, i) => this.settle(p, Object.fromEntries(p.outputs.map((name) => [name, pieces[name]![i]!]))));
    }
  }

  private crashed(member: PoolWorker, error: Error): void {
    const group = [...member.running.values()].flatMap((b) => b.group);
    this.pool.splice(this.pool.indexOf(member), 1);
    for (const p of group) this.settle(p, new MaasError('MAAS_INFERENCE_FAILED', `the inference worker for ${this.name}@${this.version} crashed: ${error.message}`));
    if (!this.closed) void this.spawn([this.provider], undefined).catch(() => undefined);
    this.notifyDrained();
  }

  /** One timer for every deadline: armed for the earliest, and on firing it times out what is due. */
  private armDeadline(deadline: number | undefined): void {
    if (deadline === undefined || (this.nextDeadline !== undefined && deadline >= this.nextDeadline)) return;
    clearTimeout(this.deadlineTimer);
    this.nextDeadline = deadline;
    this.deadlineTimer = setTimeout(() => this.sweepDeadlines(), Math.min(MAX_TIMER_MS, Math.max(0, deadline - Date.now())));
  }

  private sweepDeadlines(): void {
    this.nextDeadline = undefined;
    const now = Date.now();
    let next: number | undefined;
    for (const p of this.live) {
      if (p.deadline === undefined) continue;
      if (p.deadline <= now) this.expire(p);
      else next = next === undefined ? p.deadline : Math.min(next, p.deadline);
    }
    this.armDeadline(next);
    this.notifyDrained();
  }

  private expire(p: Pending): void {
    for (const queue of [this.queue, this.inlineQueue]) {
      const queued = queue.indexOf(p);
      if (queued !== -1) queue.splice(queued, 1);
    }
    this.settle(p, new MaasError('MAAS_TIMEOUT', `${this.name}@${this.version} did not answer within the request timeout`, { hint: 'Raise --timeout-ms, or add --workers.' }));
  }

  private settle(p: Pending, outcome: Record<string, WireTensor> | MaasError): void {
    if (p.settled) return;
    p.settled = true;
    this.live.delete(p);
    if (this.observer.settled) {
      const now = performance.now();
      this.observer.settled(!(outcome instanceof MaasError), p.rows ?? 1, now - p.enqueuedAt, (p.startedAt ?? now) - p.enqueuedAt);
    }
    if (outcome instanceof MaasError) p.reject(outcome);
    else p.resolve(outcome);
  }

  private notifyDrained(): void {
    if (this.queueDepth > 0 || this.inFlight > 0) return;
    for (const resolve of this.drainWaiters.splice(0)) resolve();
  }
}

/** Requests of the same input names, types and trailing dims can share a batch. */
function batchKey(feeds: Record<string, WireTensor>): string {
  let key = '';
  const names = Object.keys(feeds);
  if (names.length > 1) names.sort();
  for (const name of names) {
    const t = feeds[name]!;
    key += `${name}:${t.type}`;
    for (let i = 1; i < t.dims.length; i++) key += `:${t.dims[i]}`;
    key += '|';
  }
  return key;
}

/**
 * Removes and returns the head request and every queued one that can share its batch, up to
 * `maxRows`. One pass: the requests left behind keep their order.
 */
function takeGroup(queue: Pending[], maxRows: number): Pending[] {
  const head = queue[0]!;
  const group = [head];
  let rows = head.rows ?? maxRows;
  let kept = 0;
  for (let i = 1; i < queue.length; i++) {
    const p = queue[i]!;
    if (rows < maxRows && p.rows !== undefined && p.key === head.key && rows + p.rows <= maxRows) {
      group.push(p);
      rows += p.rows;
    } else {
      queue[kept++] = p;
    }
  }
  queue.length = kept;
  return group;
}

/** A batch's inputs concatenated along dim 0, and the union of the outputs its requests want. */
function merged(group: Pending[]): { feeds: Record<string, WireTensor>; fetches: string[] } {
  const fetches = [...new Set(group.flatMap((p) => p.outputs))];
  const feeds: Record<string, WireTensor> = {};
  for (const name of Object.keys(group[0]!.feeds)) {
    feeds[name] = group.length === 1 ? group[0]!.feeds[name]! : concatBatch(group.map((p) => p.feeds[name]!));
  }
  return { feeds, fetches };
}

function pick(outputs: Record<string, WireTensor>, names: string[]): Record<string, WireTensor> {
  return Object.fromEntries(names.map((n) => [n, outputs[n]!]));
}
