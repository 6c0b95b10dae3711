/**
 * What every transport shares: the model manager (once loaded), auth, limits, metrics and logs.
 * REST and gRPC each turn their requests into the same calls on it, so a model answers the
 * same whichever way it is asked.
 */
import { MaasError, messageOf } from '../core/errors.js';
import type { ModelManager, ServeEvent, Slot } from '../inference/manager.js';
import type { ModelRuntime } from '../inference/runtime.js';
import type { WireTensor } from '../inference/tensors.js';
import { Enum, INSTANCE_KINDS, TRITON_BACKEND, TRITON_PLATFORM, tritonScheduling, tritonSignature, tritonVersionPolicy } from '../inference/triton.js';
import type { Device } from '../registry/config.js';
import type { ServeMetrics } from './metrics.js';

/** The label of a model or version not served: hostile names must not each make a series. */
export const UNKNOWN = '(unknown)';

/** Extensions the server metadata names (REST `GET /v2`, gRPC ServerMetadata). */
export const EXTENSIONS = ['binary_tensor_data', 'model_configuration', 'model_repository', 'statistics'];

export interface RequestLabels {
  model: string;
  version: string;
  protocol: string;
}

export interface ServingCore {
  /** the manager once every model is loaded; MAAS_MODEL_NOT_READY before. */
  manager(): ModelManager;
  /** readiness on every transport: the models to load at start are loaded, and shutdown has not begun. */
  ready(): boolean;
  /** set once shutdown starts: requests that arrive after it are turned away (503 / UNAVAILABLE). */
  draining(): boolean;
  metrics: ServeMetrics;
  token: string | undefined;
  timeoutMs: number;
  maxBodyBytes: number;
  version: string;
  /** one JSON line per request too; without it, request events are not even built. */
  jsonLogs: boolean;
  logEvent(event: ServeEvent | Record<string, unknown>): void;
  /** what went wrong outside any one model: a line for people, or an event for --json-logs. */
  logFailure(event: string, line: string): void;
  /** why the management API is refused (a non-loopback address without a token), or undefined. */
  managementRefused: string | undefined;
  /** pulls an oci:// reference into the served registry as `name`: a management load's source. */
  pull(source: string, name: string): Promise<{ name: string; version: number }>;
}

/**
 * The served version a request names, loaded or not; `labels` become the model's, or UNKNOWN for
 * a name or version not served, so even a 404 is counted without minting a series per hostile name.
 */
export function resolveSlot(core: ServingCore, name: string, version: string | undefined, labels: RequestLabels): Slot {
  const manager = core.manager();
  labels.model = manager.route(name) ? name : UNKNOWN;
  labels.version = UNKNOWN;
  const slot = manager.resolve(name, version);
  labels.model = slot.name;
  labels.version = slot.versionLabel;
  return slot;
}

/** Runs one request on a runtime under the request timeout and, when the client set one, its own deadline. */
export function infer(core: ServingCore, runtime: ModelRuntime, feeds: Record<string, WireTensor>, outputs: string[], clientDeadline?: number): Promise<Record<string, WireTensor>> {
  const deadline = Math.min(Date.now() + core.timeoutMs, clientDeadline ?? Number.POSITIVE_INFINITY);
  return runtime.infer({ feeds, outputs, deadline });
}

/** The versions a model serves, as the metadata documents list them. */
export function servedVersions(core: ServingCore, name: string): string[] {
  return [...(core.manager().route(name)?.versions.keys() ?? [])].sort((a, b) => a - b).map(String);
}

/**
 * A served version as Triton's ModelConfig (the model configuration extension), as plain JSON:
 * batching, inputs and outputs, queue, instances and the versions served, from the runtime it
 * runs on once loaded, else from what it would load with. A client written for Triton
 * (perf_analyzer, tritonclient's get_model_config) reads its batch size and tensors here.
 */
export function servedModelConfig(core: ServingCore, slot: Slot): Record<string, unknown> {
  const { policy, runtime: configured } = core.manager().servingOf(slot.name);
  const runtime = slot.runtime?.options ?? configured;
  const described = tritonSignature(`${slot.name}@${slot.version}`, slot.signature, runtime.maxBatch);
  const config = {
    name: slot.name,
    platform: TRITON_PLATFORM,
    backend: TRITON_BACKEND,
    version_policy: tritonVersionPolicy(policy, servedVersions(core, slot.name).map(Number)),
    ...described,
    dynamic_batching: tritonScheduling(runtime, described.max_batch_size as number),
    // What it runs on (its provider once loaded) or would run on (the device asked for); WebGPU is a GPU.
    instance_group: [{ kind: new Enum(INSTANCE_KINDS[(slot.runtime?.provider || runtime.device) as Device] ?? 'KIND_GPU'), count: runtime.workers }],
  };
  return JSON.parse(JSON.stringify(config)) as Record<string, unknown>;
}

/** A port that cannot be bound: the flag to change, and that nothing was loaded yet. */
export function listenError(error: unknown, host: string, port: number, flag: string): MaasError {
  const code = (error as NodeJS.ErrnoException).code;
  const message = code === 'EADDRINUSE' ? `${host}:${port} is already in use` : `cannot listen on ${host}:${port}: ${messageOf(error)}`;
  return new MaasError('MAAS_USAGE', message, { hint: `Pick another ${flag} (0 picks a free one) or --host; no model was loaded.` });
}
