/**
 * The one table of serving defaults. `serve`, `predict`, `doctor`, `demo`, convert's accuracy
 * runs, the option tables' help texts and the tests all read these; no other file writes a
 * default for them. Light on purpose: `maas --help` reads it, so it imports nothing heavy.
 */
import { constants } from 'node:buffer';
import { availableParallelism } from 'node:os';
import { parseDuration } from '../core/units.js';
import { DEFAULT_DEVICE, type Device, type RegistryConfig } from '../registry/config.js';
import { DEFAULT_VERSION_POLICY, type VersionPolicy, parseVersionPolicy } from '../registry/policy.js';

/** How one served version runs: its worker pool, batching and admission. */
export interface RuntimeOptions {
  device: Device;
  workers: number;
  /** onnxruntime intra-op threads per worker. */
  threads: number;
  /** rows merged into one run by dynamic batching; 1 turns batching off. */
  maxBatch: number;
  /** how long an under-full batch waits for company (Triton's max_queue_delay). */
  batchDelayMs: number;
  /** queued requests per version before MAAS_OVERLOADED (503 / UNAVAILABLE). */
  maxQueue: number;
  /** a CPU model whose one-row run takes at most this many µs also runs small requests on the main thread (runtime.ts); 0: never. */
  inlineUs: number;
}

export const SERVING_DEFAULTS = {
  host: '127.0.0.1',
  port: 8080,
  device: DEFAULT_DEVICE,
  workers: 1,
  maxBatch: 32,
  batchDelayMs: 0,
  maxQueue: 1024,
  /** per-request deadline, then MAAS_TIMEOUT (504 / DEADLINE_EXCEEDED). */
  timeoutMs: 30_000,
  /** largest request body, then 413 (REST) or RESOURCE_EXHAUSTED (gRPC). */
  maxBodyMb: 64,
  /** how often the server looks for new versions and alias moves. */
  pollMs: 1000,
  /** below this one-row run time (µs), small requests skip the hop to a worker (runtime.ts). */
  inlineUs: 100,
  /** which versions of a model are served (registry/policy.ts). */
  versionPolicy: DEFAULT_VERSION_POLICY,
} as const;

/** The longest an inline batch may block the main thread, estimated from the probe: larger requests go to a worker. */
export const INLINE_BLOCK_US = 2000;

/** The most one Buffer holds (4 GiB in Node 20): a larger body could never be read. */
export const MAX_BODY_MB = Math.floor(constants.MAX_LENGTH / (1024 * 1024));

/** Intra-op threads when none are given: the machine's cores shared between the workers. */
export function defaultThreads(workers: number): number {
  return Math.max(1, Math.floor(availableParallelism() / workers));
}

/** A served version's runtime from what was asked; everything not asked is the default. */
export function servingRuntime(asked: { [K in keyof RuntimeOptions]?: RuntimeOptions[K] | undefined }): RuntimeOptions {
  const workers = asked.workers ?? SERVING_DEFAULTS.workers;
  return {
    device: asked.device ?? SERVING_DEFAULTS.device,
    workers,
    threads: asked.threads ?? defaultThreads(workers),
    maxBatch: asked.maxBatch ?? SERVING_DEFAULTS.maxBatch,
    batchDelayMs: asked.batchDelayMs ?? SERVING_DEFAULTS.batchDelayMs,
    maxQueue: asked.maxQueue ?? SERVING_DEFAULTS.maxQueue,
    inlineUs: asked.inlineUs ?? SERVING_DEFAULTS.inlineUs,
  };
}

/**
 * One caller running a few requests in turn (predict, doctor, convert's accuracy proof): one
 * worker with the whole machine, no batching, a queue as long as the requests it will get.
 */
export function oneShotRuntime(device: Device, requests = 1): RuntimeOptions {
  return { device, workers: 1, threads: availableParallelism(), maxBatch: 1, batchDelayMs: 0, maxQueue: Math.max(1, requests), inlineUs: 0 };
}

/** What `maas serve` was told on its command line; unset keys fall to maas.yaml, then the defaults. */
export interface ServingFlags extends Partial<RuntimeOptions> {
  versionPolicy?: VersionPolicy | undefined;
  /** unload a version idle this long (ms). */
  keepAliveMs?: number | undefined;
}

export interface ModelServing {
  policy: VersionPolicy;
  runtime: RuntimeOptions;
  /** unload a version idle this long; undefined: never. */
  keepAliveMs: number | undefined;
}

/** How one model is served: a flag, else its `models.NAME` entry in maas.yaml, else `defaults`, else the built-in default. */
export function modelServing(name: string, config: RegistryConfig, flags: ServingFlags): ModelServing {
  const yaml = { ...config.defaults, ...config.models[name] };
  const policy = flags.versionPolicy ?? parseVersionPolicy(yaml.versionPolicy ?? SERVING_DEFAULTS.versionPolicy, `maas.yaml's versionPolicy for ${name}`);
  return {
    policy,
    keepAliveMs: flags.keepAliveMs ?? (yaml.keepAlive === undefined ? undefined : parseDuration(yaml.keepAlive)),
    runtime: servingRuntime({
      device: flags.device ?? config.defaults.device,
      workers: flags.workers ?? yaml.workers,
      threads: flags.threads,
      maxBatch: flags.maxBatch ?? yaml.maxBatch,
      batchDelayMs: flags.batchDelayMs ?? yaml.batchDelayMs,
      maxQueue: flags.maxQueue ?? yaml.maxQueue,
      inlineUs: flags.inlineUs,
    }),
  };
}

/** `maas bench`'s defaults (inference/bench.ts): the batch sizes, the measuring time per batch size, the largest batch asked for. */
export const BENCH_DEFAULTS = {
  batches: [1, 8, 32] as readonly number[],
  durationMs: 10_000,
  /** beyond it a generated input alone could take gigabytes. */
  maxBatch: 65_536,
} as const;
