/**
 * A model in the terms of Triton's ModelConfig (triton-inference-server/common,
 * protobuf/model_config.proto): what `maas export --format triton` writes as config.pbtxt and
 * what `maas serve` answers at `/v2/models/M/config` and over gRPC ModelConfig, from one
 * description so the two cannot disagree.
 */
import { MaasError } from '../core/errors.js';
import type { Signature, TensorSpec } from '../onnx/inspect.js';
import type { Device } from '../registry/config.js';
import type { VersionPolicy } from '../registry/policy.js';
import type { RuntimeOptions } from './config.js';
import { isBatchable } from './runtime.js';
import { kserveDatatype, ortTypeOfOnnx } from './tensors.js';

export const TRITON_PLATFORM = 'onnxruntime_onnx';
export const TRITON_BACKEND = 'onnxruntime';

/** An enum value: protobuf text format writes it bare, JSON as its name. */
export class Enum {
  constructor(readonly name: string) {}

  toJSON(): string {
    return this.name;
  }
}

export type Field = string | number | Enum | number[] | Message | Message[];
export interface Message {
  [field: string]: Field | undefined;
}

export type InstanceKind = 'KIND_AUTO' | 'KIND_GPU' | 'KIND_CPU';

/** Triton's instance kind for a device; Triton has none for WebGPU. */
export const INSTANCE_KINDS: Record<Device, InstanceKind | undefined> = { auto: 'KIND_AUTO', cuda: 'KIND_GPU', cpu: 'KIND_CPU', webgpu: undefined };

/** Triton's version_policy. */
export type TritonVersionPolicy = { latest: { num_versions: number } } | { all: Record<string, never> } | { specific: { versions: number[] } };

function unsupported(ref: string, spec: TensorSpec, why: string): MaasError {
  return new MaasError('MAAS_MODEL_INVALID', `${ref}: '${spec.name}' ${why}, which a Triton config.pbtxt cannot describe`, {
    hint: "Triton's ONNX Runtime backend serves tensors of BOOL, (U)INT8-64, FP16, FP32, FP64 and STRING with a known rank; serve this version with `maas serve` instead.",
  });
}

/** Triton's data types are the KServe v2 datatypes with TYPE_ before them, BYTES being TYPE_STRING. */
export function tritonType(ref: string, spec: TensorSpec): Enum {
  const type = ortTypeOfOnnx(spec.dtype);
  if (!type) throw unsupported(ref, spec, `is a ${spec.dtype}`);
  const kserve = kserveDatatype(type);
  return new Enum(`TYPE_${kserve === 'BYTES' ? 'STRING' : kserve}`);
}

/**
 * One input or output. Dynamic dims are -1; with batching the first dim is Triton's and left out.
 * Triton wants at least one dim: a scalar is [1], and with batching a [batch] tensor is [1]
 * reshaped to [] (what Triton's ONNX Runtime backend writes when it completes a config itself).
 */
export function tritonTensor(ref: string, spec: TensorSpec, batching: boolean): Message {
  if (spec.shape === null) throw unsupported(ref, spec, 'has no shape');
  const dims = spec.shape.map((d) => (typeof d === 'number' ? d : -1)).slice(batching ? 1 : 0);
  if (dims.length > 0) return { name: spec.name, data_type: tritonType(ref, spec), dims };
  return { name: spec.name, data_type: tritonType(ref, spec), dims: [1], ...(batching ? { reshape: { shape: [] } } : {}) };
}

/** Triton's max_batch_size: maas merges requests only when maxBatch > 1; with 1 a request of any size runs alone, as 0 lets it. */
export function tritonBatchSize(signature: Signature, maxBatch: number): number {
  return isBatchable(signature) && maxBatch > 1 ? maxBatch : 0;
}

/** The batch size, inputs and outputs of a version: what every version under one config must share. */
export function tritonSignature(ref: string, signature: Signature, maxBatch: number): Message {
  const maxBatchSize = tritonBatchSize(signature, maxBatch);
  return {
    max_batch_size: maxBatchSize,
    input: signature.inputs.map((spec) => tritonTensor(ref, spec, maxBatchSize > 0)),
    output: signature.outputs.map((spec) => tritonTensor(ref, spec, maxBatchSize > 0)),
  };
}

/** maas's batch delay and queue bound, in Triton's scheduler; without batching Triton's queue has no bound. */
export function tritonScheduling(runtime: RuntimeOptions, maxBatchSize: number): Message | undefined {
  return maxBatchSize > 0 ? { max_queue_delay_microseconds: runtime.batchDelayMs * 1000, default_queue_policy: { max_queue_size: runtime.maxQueue } } : undefined;
}

/**
 * maas's policy in Triton's terms, for a config that holds exactly `versions`: a single
 * `latest:N` or `all` says the same to Triton; anything else (specific versions, aliases, a
 * union) becomes the version numbers it selected.
 */
export function tritonVersionPolicy(policy: VersionPolicy, versions: number[]): TritonVersionPolicy {
  const [term] = policy.terms;
  if (policy.terms.length === 1 && term?.kind === 'latest') return { latest: { num_versions: term.count } };
  if (policy.terms.length === 1 && term?.kind === 'all') return { all: {} };
  return { specific: { versions } };
}
