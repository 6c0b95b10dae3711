/**
 * One served model version: a pool of inference workers fed by a bounded queue with dynamic
 * batching. Requests that queue while every worker is busy are merged along dim 0 (up to
 * maxBatch rows) when the model's inputs and outputs all have a dynamic first dim; with
 * batchDelayMs > 0 an under-full batch also waits for company until its oldest request has
 * waited that long (Triton's max_queue_delay).
 */
import { Worker } from 'node:worker_threads';
import { MaasError } from '../core/errors.js';
import type { Signature } from '../onnx/inspect.js';
import type { RuntimeOptions } from './config.js';
import { DEVICE_FIXES, providerOrder } from './providers.js';
import { concatBatch, splitBatch, type WireTensor } from './tensors.js';
import type { WorkerInit, WorkerReady, WorkerReply, WorkerRequest } from './worker.js';

export interface RuntimeObserver {
  batch?(rows: number, requests: number): void;
  inference?(ms: number): void;
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
  enqueuedAt: number;
  settled: boolean;
  resolve: (outputs: Record<string, WireTensor>) => void;
  reject: (error: MaasError) => void;
  timer: NodeJS.Timeout | undefined;
}

interface PoolWorker {
  worker: Worker;
  /** batches sent and not yet answered, by request id, in the order the worker runs them. */
  running: Map<number, Pending[]>;
}

/** setTimeout's largest delay; longer ones fire at once. */
const MAX_TIMER_MS = 2 ** 31 - 1;

// From src/ under vitest the worker is the built one: Node 20 cannot run a .ts worker.
const WORKER_URL = new URL(import.meta.url.endsWith('.ts') ? '../../dist/inference/worker.js' : './worker.js', import.meta.url);

export interface RuntimeSpec {
  name: string;
  version: number;
  signature: Signature;
  modelPath: string;
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
  private readonly pool: PoolWorker[] = [];
  private readonly queue: Pending[] = [];
  private delayTimer: NodeJS.Timeout | undefined;
  private nextId = 1;
  private closed = false;
  private drainWaiters: (() => void)[] = [];
  private readonly depth: number;

  private constructor(
    readonly name: string,
    readonly version: number,
    readonly signature: Signature,
    private readonly modelPath: string,
    private readonly options: RuntimeOptions,
    private readonly observer: RuntimeObserver,
  ) {
    this.batchable = isBatchable(signature) && options.maxBatch > 1;
    // Without batching, a second request waits in the worker's own queue, so the worker starts
    // it the moment the first ends instead of after a round trip through the HTTP thread. With
    // batching, queued requests wait here instead, where they can be merged.
    this.depth = this.batchable ? 1 : 2;
  }

  /** Starts the workers; the first decides the provider, the others use the same. */
  static async load(spec: RuntimeSpec, options: RuntimeOptions, observer: RuntimeObserver = {}): Promise<ModelRuntime> {
    const runtime = new ModelRuntime(spec.name, spec.version, spec.signature, spec.modelPath, options, observer);
    const started = performance.now();
    try {
      runtime.provider = await runtime.spawn(providerOrder(options.device));
      // allSettled: a worker still starting when another fails must be closed too, not leaked.
      const started = await Promise.allSettled(Array.from({ length: options.workers - 1 }, () => runtime.spawn([runtime.provider])));
      const failed = started.find((s): s is PromiseRejectedResult => s.status === 'rejected');
      if (failed) throw failed.reason;
    } catch (error) {
      await runtime.close();
      throw error;
    }
    runtime.loadMs = performance.now() - started;
    return runtime;
  }

  get queueDepth(): number {
    return this.queue.length;
  }

  get inFlight(): number {
    return this.pool.reduce((n, w) => n + [...w.running.values()].reduce((m, g) => m + g.length, 0), 0);
  }

  infer(job: InferJob): Promise<Record<string, WireTensor>> {
    if (this.closed) return Promise.reject(new MaasError('MAAS_MODEL_NOT_READY', `${this.name}@${this.version} is unloading`));
    if (this.queue.length >= this.options.maxQueue) {
      return Promise.reject(new MaasError('MAAS_OVERLOADED', `${this.name}@${this.version} has ${this.queue.length} requests queued (--max-queue ${this.options.maxQueue})`, {
        hint: 'Retry after a moment, or raise --max-queue / --workers.',
      }));
    }
    return new Promise((resolve, reject) => {
      const dims0 = Object.values(job.feeds).map((t) => t.dims[0]);
      const rows = this.batchable && dims0.length > 0 && dims0.every((d) => d !== undefined && d === dims0[0]) ? dims0[0] : undefined;
      const key = Object.entries(job.feeds).map(([n, t]) => `${n}:${t.type}:${t.dims.slice(1).join('x')}`).sort().join('|');
      const pending: Pending = {
        ...job, rows, key, enqueuedAt: Date.now(), settled: false, resolve, reject,
        timer: job.deadline === undefined ? undefined : setTimeout(() => this.expire(pending), Math.min(MAX_TIMER_MS, Math.max(0, job.deadline - Date.now()))),
      };
      this.queue.push(pending);
      this.schedule();
    });
  }

  /** Resolves once nothing is queued or running: the old version's half of a hot swap. */
  drain(): Promise<void> {
    if (this.queue.length === 0 && this.inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => this.drainWaiters.push(resolve));
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.delayTimer);
    for (const p of this.queue.splice(0)) this.settle(p, new MaasError('MAAS_MODEL_NOT_READY', `${this.name}@${this.version} was unloaded`));
    await Promise.all(this.pool.splice(0).map((w) => w.worker.terminate()));
  }

  private spawn(providers: string[]): Promise<string> {
    const init: WorkerInit = { modelPath: this.modelPath, providers, threads: this.options.threads };
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
        resolve(ready.provider);
      });
    });
  }

  private schedule(): void {
    clearTimeout(this.delayTimer);
    this.delayTimer = undefined;
    while (this.queue.length > 0) {
      const worker = this.pool.find((w) => w.running.size < this.depth);
      if (!worker) return;
      const head = this.queue[0]!;
      const group = this.takeGroup();
      const rows = group.reduce((n, p) => n + (p.rows ?? 0), 0);
      const waited = Date.now() - head.enqueuedAt;
      if (this.options.batchDelayMs > 0 && head.rows !== undefined && rows < this.options.maxBatch && waited < this.options.batchDelayMs) {
        this.queue.unshift(...group); // not yet: wait for company, up to the delay
        this.delayTimer = setTimeout(() => this.schedule(), this.options.batchDelayMs - waited);
        return;
      }
      this.dispatch(worker, group);
    }
  }

  /** Removes and returns the head request and every queued one that can share its batch. */
  private takeGroup(): Pending[] {
    const head = this.queue.shift()!;
    const group = [head];
    if (head.rows === undefined) return group;
    let rows = head.rows;
    for (let i = 0; i < this.queue.length && rows < this.options.maxBatch; ) {
      const p = this.queue[i]!;
      if (p.rows !== undefined && p.key === head.key && rows + p.rows <= this.options.maxBatch) {
        group.push(p);
        rows += p.rows;
        this.queue.splice(i, 1);
      } else {
        i++;
      }
    }
    return group;
  }

  private dispatch(member: PoolWorker, group: Pending[]): void {
    const fetches = [...new Set(group.flatMap((p) => p.outputs))];
    const feeds: Record<string, WireTensor> = {};
    for (const name of Object.keys(group[0]!.feeds)) {
      feeds[name] = group.length === 1 ? group[0]!.feeds[name]! : concatBatch(group.map((p) => p.feeds[name]!));
    }
    const transfer = Object.values(feeds).flatMap((t) => (Array.isArray(t.data) ? [] : [t.data.buffer as ArrayBuffer]));
    const request: WorkerRequest = { id: this.nextId++, feeds, fetches };
    member.running.set(request.id, group);
    this.observer.batch?.(group.reduce((n, p) => n + (p.rows ?? 1), 0), group.length);
    // A batch of one keeps its buffers: transferring would detach the caller's arrays.
    member.worker.postMessage(request, group.length > 1 ? transfer : []);
  }

  private finish(member: PoolWorker, reply: WorkerReply): void {
    const group = member.running.get(reply.id) ?? [];
    member.running.delete(reply.id);
    this.observer.inference?.(reply.inferMs);
    if (reply.error !== undefined || !reply.outputs) {
      const error = new MaasError('MAAS_INFERENCE_FAILED', `onnxruntime failed on ${this.name}@${this.version}: ${reply.error}`);
      for (const p of group) this.settle(p, error);
    } else if (group.length === 1) {
      this.settle(group[0]!, pick(reply.outputs, group[0]!.outputs));
    } else {
      const pieces: Record<string, WireTensor[]> = {};
      for (const [name, tensor] of Object.entries(reply.outputs)) pieces[name] = splitBatch(tensor, group.map((p) => p.rows!));
      group.forEach((p, i) => this.settle(p, Object.fromEntries(p.outputs.map((name) => [name, pieces[name]![i]!]))));
    }
    this.schedule();
    this.notifyDrained();
  }

  private crashed(member: PoolWorker, error: Error): void {
    const group = [...member.running.values()].flat();
    this.pool.splice(this.pool.indexOf(member), 1);
    for (const p of group) this.settle(p, new MaasError('MAAS_INFERENCE_FAILED', `the inference worker for ${this.name}@${this.version} crashed: ${error.message}`));
    if (!this.closed) void this.spawn([this.provider]).catch(() => undefined);
    this.notifyDrained();
  }

  private expire(p: Pending): void {
    const queued = this.queue.indexOf(p);
    if (queued !== -1) this.queue.splice(queued, 1);
    this.settle(p, new MaasError('MAAS_TIMEOUT', `${this.name}@${this.version} did not answer within the request timeout`, { hint: 'Raise --timeout-ms, or add --workers.' }));
    this.notifyDrained();
  }

  private settle(p: Pending, outcome: Record<string, WireTensor> | MaasError): void {
    if (p.settled) return;
    p.settled = true;
    clearTimeout(p.timer);
    if (outcome instanceof MaasError) p.reject(outcome);
    else p.resolve(outcome);
  }

  private notifyDrained(): void {
    if (this.queue.length > 0 || this.inFlight > 0) return;
    for (const resolve of this.drainWaiters.splice(0)) resolve();
  }
}

function pick(outputs: Record<string, WireTensor>, names: string[]): Record<string, WireTensor> {
  return Object.fromEntries(names.map((n) => [n, outputs[n]!]));
}
