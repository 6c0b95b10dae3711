/**
 * Latency profiles: p50/p90/p99 and throughput per batch size, measured closed loop with one
 * request in flight (Triton perf_analyzer's concurrency 1). Inputs are generated from the
 * signature: the first dim is the batch size, every other free dim 1.
 *
 * - profileModel(): a model FILE in-process, in the runtime `maas predict` uses (one worker,
 *   batching off, the machine's threads). `maas convert` calls it on an original and its
 *   conversion; `maas bench` on a registered version.
 * - profileServer() (bench-server.ts): the same loop through a running `maas serve`'s REST API.
 * - benchVersion(): `maas bench NAME@V`: either of them, then the profile is recorded beside the
 *   version (registry/profiles.ts), keyed by its manifest digest and this machine's fingerprint.
 */
import { createRequire } from 'node:module';
import { availableParallelism, cpus } from 'node:os';
import { basename } from 'node:path';
import { type ClientTlsFiles, readClientTls } from '../core/client-tls.js';
import { isMaasError } from '../core/errors.js';
import type { Signature } from '../onnx/inspect.js';
import type { Device } from '../registry/config.js';
import {
  type BatchProfile, type BatchStats, type BenchMode, type MachineFingerprint, type RecordProfileResult, type VersionProfile,
  machineIdOf, recordProfile,
} from '../registry/profiles.js';
import { parseRef } from '../registry/refs.js';
import { Registry, type RegistryOptions } from '../registry/registry.js';
import { checkBlobs, modelPath } from '../registry/serve-cache.js';
import { type ModelProfile, type ProfileOptions, checkProfileOptions, measureBatches } from './bench-loop.js';
import { SERVING_DEFAULTS, oneShotRuntime } from './config.js';
import { ModelRuntime } from './runtime.js';

export type { BatchProfile, BatchStats, MachineFingerprint, ModelProfile, ProfileOptions, VersionProfile };

export interface ModelFileOptions extends ProfileOptions {
  /** execution provider, as `--device` (auto: the best that loads). */
  device: Device;
  /** onnxruntime intra-op threads; default the machine's (oneShotRuntime). */
  threads?: number | undefined;
}

/** A model file to profile: the path onnxruntime loads, and its signature (onnx/inspect.ts). */
export interface ModelFile {
  path: string;
  signature: Signature;
  /** how errors name it (`name@version`); default the file's name. */
  name?: string | undefined;
  version?: number | undefined;
}

/** The first line of an error's message: onnxruntime's run errors go on for a while. */
function firstLine(error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).split('\n')[0]!.slice(0, 500);
}

/**
 * Profiles a model file in-process: loads it in a one-worker runtime (batching off, the
 * machine's threads, or `threads`), then measures each batch size. A batch size the model cannot
 * take is `skipped` with the reason. Throws MaasError: MAAS_USAGE (bad options),
 * MAAS_MODEL_INVALID / MAAS_DEVICE_UNAVAILABLE (does not load), MAAS_TIMEOUT (a run took longer
 * than `timeoutMs`), MAAS_INFERENCE_FAILED (a run failed after the batch size had worked).
 */
export async function profileModel(file: ModelFile, options: ModelFileOptions): Promise<ModelProfile> {
  checkProfileOptions(options);
  const runtimeOptions = { ...oneShotRuntime(options.device), ...(options.threads === undefined ? {} : { threads: options.threads }) };
  const runtime = await ModelRuntime.load({ name: file.name ?? basename(file.path), version: file.version ?? 0, signature: file.signature, modelPath: file.path }, runtimeOptions);
  try {
    const outputs = file.signature.outputs.map((o) => o.name);
    const timeoutMs = options.timeoutMs ?? SERVING_DEFAULTS.timeoutMs;
    const batches = await measureBatches(
      file.signature,
      options,
      async (feeds) => {
        await runtime.infer({ feeds, outputs, deadline: Date.now() + timeoutMs });
      },
      (error) => (isMaasError(error) && (error.code === 'MAAS_INFERENCE_FAILED' || error.code === 'MAAS_BAD_INPUT') ? firstLine(error) : undefined),
    );
    return { provider: runtime.provider, threads: runtimeOptions.threads, durationMs: options.durationMs, batches };
  } finally {
    await runtime.close();
  }
}

/** onnxruntime-node's version where this maas resolves it. */
export function onnxruntimeVersion(): string {
  return (createRequire(import.meta.url)('onnxruntime-node/package.json') as { version: string }).version;
}

/** This machine, as a profile's key: what its latencies depend on besides the model. */
export function machineFingerprint(provider: string, mode: BenchMode, server?: string): MachineFingerprint {
  return {
    cpu: cpus()[0]?.model.trim().replace(/\s+/g, ' ') || 'unknown',
    cores: availableParallelism(),
    onnxruntime: onnxruntimeVersion(),
    provider,
    mode,
    node: process.version,
    ...(mode === 'server' && server !== undefined ? { server } : {}),
  };
}

export interface BenchOptions extends ProfileOptions {
  ref: string;
  /** in-process: the provider; default maas.yaml's defaults.device. */
  device?: Device | undefined;
  /** measure through the `maas serve` at this URL instead of in-process. */
  server?: string | undefined;
  token?: string | undefined;
  /** with server: a PEM CA file that signed its certificate. */
  /** with `server`: the CA to trust, and a client certificate for mTLS. */
  tls?: ClientTlsFiles | undefined;
}

export interface BenchResult {
  name: string;
  version: number;
  ref: string;
  manifestDigest: string;
  mode: BenchMode;
  /** mode server: the URL measured through. */
  server?: string;
  machine: MachineFingerprint;
  machineId: string;
  provider: string;
  threads?: number;
  durationMs: number;
  batches: BatchProfile[];
  /** where the profile was stored; null when no batch size could be measured (nothing is stored then). */
  recorded: RecordProfileResult | null;
}

/** `maas bench NAME@V`: profiles a registered version (here, or through a server) and records the profile beside it. */
export async function benchVersion(options: BenchOptions, ctx: RegistryOptions): Promise<BenchResult> {
  checkProfileOptions(options);
  const registry = await Registry.open(ctx);
  const { name, version } = registry.resolve(parseRef(options.ref));
  const record = registry.readVersion(name, version);
  const signature = record.onnx.signature;
  let profile: ModelProfile;
  let machine: MachineFingerprint;
  if (options.server === undefined) {
    await checkBlobs(registry, record);
    const path = modelPath(registry, record);
    profile = await profileModel({ path, signature, name, version }, { ...options, device: options.device ?? registry.config.defaults.device });
    machine = machineFingerprint(profile.provider, 'in-process');
  } else {
    const { profileServer, serverUrl } = await import('./bench-server.js');
    const url = serverUrl(options.server);
    const tls = readClientTls(options.tls ?? {}, ctx.cwd);
    profile = await profileServer({ url, token: options.token, tls, name, version, manifestDigest: record.manifestDigest, signature }, options);
    machine = machineFingerprint(profile.provider, 'server', url.hostname);
  }
  const machineId = machineIdOf(machine);
  const entry: VersionProfile = {
    manifestDigest: record.manifestDigest,
    machineId,
    machine,
    at: registry.now().toISOString(),
    durationMs: profile.durationMs,
    ...(profile.threads === undefined ? {} : { threads: profile.threads }),
    batches: profile.batches,
  };
  const measured = profile.batches.some((b) => b.status === 'ok');
  const recorded = measured ? await recordProfile(registry, name, version, entry) : null;
  return {
    name,
    version,
    ref: `${name}@${version}`,
    manifestDigest: record.manifestDigest,
    mode: machine.mode,
    ...(options.server === undefined ? {} : { server: options.server }),
    machine,
    machineId,
    provider: profile.provider,
    ...(profile.threads === undefined ? {} : { threads: profile.threads }),
    durationMs: profile.durationMs,
    batches: profile.batches,
    recorded,
  };
}
