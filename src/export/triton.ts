/**
 * `maas export --format triton`: versions of a model as a Triton model repository, the folder
 * `tritonserver --model-repository=DIR` serves:
 *
 *   DIR/NAME/config.pbtxt            ModelConfig in protobuf text format (Triton's model_config.proto)
 *   DIR/NAME/warmup/sampleN_inputK   warm-up inputs as raw little-endian bytes (model_warmup)
 *   DIR/NAME/<version>/<files>       the version's files as its manifest names them, model.sig when signed
 *
 * Files keep their names (a signature covers them), so a model file not called model.onnx is
 * named by default_model_filename. One config.pbtxt serves every version of a model, so the
 * versions exported together must agree on it. The whole DIR/NAME is written through a staging
 * folder and renamed into place last: a failure leaves nothing half-written.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { MaasError } from '../core/errors.js';
import { writeNewFolder } from '../core/fs.js';
import { modelServing } from '../inference/config.js';
import { decodeWarmup } from '../inference/protocol.js';
import { splitBatch, toBinary, type WireTensor } from '../inference/tensors.js';
import {
  Enum, INSTANCE_KINDS, type InstanceKind, type Message, TRITON_PLATFORM, type TritonVersionPolicy, tritonBatchSize, tritonScheduling, tritonSignature, tritonTensor, tritonType, tritonVersionPolicy,
} from '../inference/triton.js';
import { MODEL_SIGNATURE_FILE, listAttestations } from '../registry/attestations.js';
import type { Device } from '../registry/config.js';
import { type VersionPolicy, formatVersionPolicy, selectVersions } from '../registry/policy.js';
import { formatRef, parseRef } from '../registry/refs.js';
import { Registry, type RegistryOptions, type VersionRecord } from '../registry/registry.js';
import { checkBlobs, readWarmup, writeVersionFiles } from '../registry/serve-cache.js';

export interface TritonExportOptions {
  /** NAME@VERSION or NAME@ALIAS for one version; NAME for every version its policy serves. */
  ref: string;
  /** the model repository folder; DIR/NAME must not exist or be empty. */
  output: string;
  /** instance_group kind: cuda → KIND_GPU, cpu → KIND_CPU, auto → KIND_AUTO; default maas.yaml's device. */
  device?: Device | undefined;
  /** instance_group count; default maas.yaml's workers. */
  workers?: number | undefined;
}

export interface TritonExportResult {
  format: 'triton';
  /** the model repository, as `tritonserver --model-repository` takes it. */
  repository: string;
  model: string;
  /** DIR/NAME: the folder written. */
  dir: string;
  versions: number[];
  /** versions with `model.sig` beside their files. */
  signed: number[];
  /** 0 when the model cannot batch or maas.yaml's maxBatch is 1. */
  maxBatchSize: number;
  instanceGroup: { kind: InstanceKind; count: number };
  /** Triton's version_policy, as config.pbtxt has it. */
  versionPolicy: TritonVersionPolicy;
  warmupSamples: number;
  /** every file written, relative to the repository. */
  files: { path: string; size: number }[];
  /** config.pbtxt as written. */
  config: string;
}

/** The file name Triton's ONNX Runtime backend loads when config.pbtxt names none. */
const TRITON_DEFAULT_FILE = 'model.onnx';
/** Triton reads warm-up input files from this folder of the model (model_config.proto, ModelWarmup.Input). */
const WARMUP_DIR = 'warmup';

function quote(text: string): string {
  return `"${text.replace(/[\\"]/g, '\\$&').replace(/[\x00-\x1f\x7f]/g, (c) => `\\${c.charCodeAt(0).toString(8).padStart(3, '0')}`)}"`;
}

/** Protobuf text format as Triton's own configs are written: messages in braces, repeated numbers as lists. */
function textFormat(message: Message, indent = ''): string[] {
  const lines: string[] = [];
  for (const [field, value] of Object.entries(message)) {
    if (value === undefined) continue;
    const isMessages = Array.isArray(value) && value.some((v) => typeof v === 'object');
    for (const item of isMessages ? (value as Message[]) : [value]) {
      if (typeof item !== 'object') lines.push(`${indent}${field}: ${typeof item === 'string' ? quote(item) : item}`);
      else if (item instanceof Enum) lines.push(`${indent}${field}: ${item.name}`);
      else if (Array.isArray(item)) lines.push(`${indent}${field}: [${item.join(', ')}]`);
      else if (Object.keys(item).length === 0) lines.push(`${indent}${field} {}`);
      else lines.push(`${indent}${field} {`, ...textFormat(item, `${indent}  `), `${indent}}`);
    }
  }
  return lines;
}

/** Refuses a version Triton's ONNX Runtime backend cannot serve (for KServe's Triton runtime too). */
export function checkTritonServes(record: VersionRecord): void {
  const ref = formatRef(record.name, record.version);
  for (const spec of [...record.onnx.signature.inputs, ...record.onnx.signature.outputs]) tritonTensor(ref, spec, false);
}

/** What config.pbtxt says of one version: the versions exported together must all say the same. */
function versionConfig(record: VersionRecord, maxBatch: number): Message {
  return {
    ...(record.onnx.modelFile === TRITON_DEFAULT_FILE ? {} : { default_model_filename: record.onnx.modelFile }),
    ...tritonSignature(formatRef(record.name, record.version), record.onnx.signature, maxBatch),
  };
}

function instanceKind(device: Device): InstanceKind {
  const kind = INSTANCE_KINDS[device];
  if (kind) return kind;
  throw new MaasError('MAAS_USAGE', `Triton has no ${device} instances: --device ${device} (or maas.yaml's defaults.device) cannot be exported`, {
    hint: 'Pass --device cuda (KIND_GPU), cpu (KIND_CPU) or auto (KIND_AUTO: a GPU when there is one, else the CPU).',
  });
}

interface WarmupFile {
  path: string;
  bytes: Buffer;
}

/**
 * The stored warm-up samples as Triton's model_warmup, each input's bytes in a file. Triton
 * sends a batching model's sample as `batch_size` copies of one row, so the file holds the first
 * row and batch_size is the sample's rows (at most max_batch_size, beyond which Triton refuses).
 */
function tritonWarmup(record: VersionRecord, samples: Record<string, WireTensor>[], maxBatchSize: number): { entries: Message[]; files: WarmupFile[] } {
  const ref = formatRef(record.name, record.version);
  const files: WarmupFile[] = [];
  const entries = samples.map((sample, i): Message => {
    const name = `sample${i + 1}`;
    const tensors = record.onnx.signature.inputs.map((spec) => ({ spec, tensor: sample[spec.name]! }));
    const rows = maxBatchSize > 0 ? Math.min(maxBatchSize, ...tensors.map(({ tensor }) => tensor.dims[0]!)) : 1;
    const inputs = tensors.map(({ spec, tensor }, k): Message => {
      const file = `${name}_input${k}`;
      files.push({ path: `${WARMUP_DIR}/${file}`, bytes: toBinary(maxBatchSize > 0 ? splitBatch(tensor, [1])[0]! : tensor) });
      const dims = tensor.dims.slice(maxBatchSize > 0 ? 1 : 0);
      return { key: spec.name, value: { data_type: tritonType(ref, spec), dims: dims.length ? dims : [1], input_data_file: file } };
    });
    return { name, batch_size: rows, inputs };
  });
  return { entries, files };
}

/** The stored warm-up samples of the versions, each distinct set once: Triton runs them on every version. */
function warmupSamples(registry: Registry, records: VersionRecord[]): Record<string, WireTensor>[] {
  const seen: Buffer[] = [];
  return records.flatMap((record) => {
    const bytes = readWarmup(registry, record);
    if (!bytes || seen.some((b) => b.equals(bytes))) return [];
    seen.push(bytes);
    return decodeWarmup(bytes, record.onnx.signature, formatRef(record.name, record.version));
  });
}

/** The versions of `name` its policy serves. */
function policyVersions(registry: Registry, name: string, policy: VersionPolicy): number[] {
  const all = registry.versions(name);
  if (all.length === 0) registry.resolve({ name, selector: { kind: 'latest' } }); // throws: no such model
  const versions = selectVersions(policy, all, registry.aliases(name));
  if (versions.length > 0) return versions;
  throw new MaasError('MAAS_VERSION_NOT_FOUND', `${name}'s version policy ${formatVersionPolicy(policy)} selects none of its versions (${all.join(', ')})`, {
    hint: `Name one (maas export ${name}@${all.at(-1)} --format triton -o DIR), or change versionPolicy in maas.yaml.`,
  });
}

export async function exportTriton(options: TritonExportOptions, ctx: RegistryOptions): Promise<TritonExportResult> {
  const registry = await Registry.open(ctx);
  const ref = parseRef(options.ref);
  const { name } = ref;
  const { policy, runtime } = modelServing(name, registry.config, { device: options.device, workers: options.workers });
  const kind = instanceKind(runtime.device);
  const versions = options.ref.includes('@') ? [registry.resolve(ref).version] : policyVersions(registry, name, policy);
  const records = versions.map((v) => registry.readVersion(name, v));

  const first = records[0]!;
  const shared = versionConfig(first, runtime.maxBatch);
  for (const record of records.slice(1)) {
    if (JSON.stringify(versionConfig(record, runtime.maxBatch)) === JSON.stringify(shared)) continue;
    throw new MaasError('MAAS_USAGE', `${formatRef(name, first.version)} and ${formatRef(name, record.version)} differ in their inputs, outputs or model file name: Triton serves every version of a model with one config.pbtxt`, {
      hint: `Export one version (maas export ${formatRef(name, record.version)} --format triton -o DIR), or narrow versionPolicy in maas.yaml to versions with one signature.`,
    });
  }
  for (const record of records) await checkBlobs(registry, record);

  const maxBatchSize = tritonBatchSize(first.onnx.signature, runtime.maxBatch);
  const warmup = tritonWarmup(first, warmupSamples(registry, records), maxBatchSize);
  const versionPolicy = tritonVersionPolicy(policy, versions);
  const config = `${textFormat({
    name,
    platform: TRITON_PLATFORM,
    version_policy: versionPolicy,
    ...shared,
    dynamic_batching: tritonScheduling(runtime, maxBatchSize),
    instance_group: [{ kind: new Enum(kind), count: runtime.workers }],
    model_warmup: warmup.entries.length ? warmup.entries : undefined,
  }).join('\n')}\n`;

  const repository = resolve(ctx.cwd, options.output);
  const dir = join(repository, name);
  const signed: number[] = [];
  const files = writeNewFolder(dir, (staging) => {
    const written = [{ path: 'config.pbtxt', size: Buffer.byteLength(config) }, ...warmup.files.map((f) => ({ path: f.path, size: f.bytes.length }))];
    writeFileSync(join(staging, 'config.pbtxt'), config);
    if (warmup.files.length) mkdirSync(join(staging, WARMUP_DIR));
    for (const file of warmup.files) writeFileSync(join(staging, file.path), file.bytes);
    for (const record of records) {
      const signature = listAttestations(registry, name, record.version, 'signature').at(-1);
      if (signature) signed.push(record.version);
      const version = writeVersionFiles(registry, record, join(staging, String(record.version)), signature ? [{ path: MODEL_SIGNATURE_FILE, bytes: signature.bytes }] : []);
      written.push(...version.files.map((f) => ({ path: `${record.version}/${f.path}`, size: f.size })));
    }
    return written.map((f) => ({ path: `${name}/${f.path}`, size: f.size }));
  });

  return { format: 'triton', repository, model: name, dir, versions, signed, maxBatchSize, instanceGroup: { kind, count: runtime.workers }, versionPolicy, warmupSamples: warmup.entries.length, files, config };
}
