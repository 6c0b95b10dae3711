/**
 * A version is an OCI image manifest with the CNCF ModelPack artifactType and media types, so
 * the object maas stores is the one `push` sends and `pull` verifies.
 *
 * ModelPack's config schema forbids extra properties, so what maas knows about the ONNX graph
 * (signature, fingerprint, opsets) rides in the manifest annotation `dev.maas.onnx.v1+json`:
 * the config stays valid for other ModelPack tools and the manifest digest still covers it.
 */
import { createHash } from 'node:crypto';
import { MaasError } from '../core/errors.js';
import { type ModelInfo, modelPackPrecisions, paramSize } from '../onnx/inspect.js';
import { isConfinedPath, isDigest } from './layout.js';
import type { BlobRef } from './store.js';

export const MEDIA_TYPES = {
  manifest: 'application/vnd.oci.image.manifest.v1+json',
  artifact: 'application/vnd.cncf.model.manifest.v1+json',
  config: 'application/vnd.cncf.model.config.v1+json',
  weight: 'application/vnd.cncf.model.weight.v1.raw',
  /** ModelPack's dataset layer: a version's warm-up samples (WARMUP_FILE). */
  dataset: 'application/vnd.cncf.model.dataset.v1.raw',
} as const;

/** The layer file of a version's warm-up samples: a JSON array of KServe v2 infer requests. */
export const WARMUP_FILE = 'warmup.json';
/** Warm-up samples are a few requests, not a data set. */
export const MAX_WARMUP_BYTES = 16 << 20;

export const ANNOTATIONS = {
  filepath: 'org.cncf.model.filepath',
  title: 'org.opencontainers.image.title',
  version: 'org.opencontainers.image.version',
  created: 'org.opencontainers.image.created',
  description: 'org.opencontainers.image.description',
  onnx: 'dev.maas.onnx.v1+json',
} as const;

/** distribution's own limit for manifests; maas configs are a few hundred bytes. */
export const MAX_MANIFEST_BYTES = 4 << 20;
export const MAX_CONFIG_BYTES = 4 << 20;

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  annotations?: Record<string, string>;
}

export interface Manifest {
  schemaVersion: 2;
  mediaType: string;
  artifactType: string;
  config: Descriptor;
  layers: Descriptor[];
  annotations: Record<string, string>;
}

/** What maas records about a version's ONNX graph, beside the ModelPack fields. */
export interface OnnxMetadata extends ModelInfo {
  /** the layer file that is the ONNX graph; the others are its external data. */
  modelFile: string;
  /** whether onnxruntime loaded the model at register time. */
  loadChecked: boolean;
  message?: string;
  /** set when the version was converted at register time: what from, how, and the proof. */
  conversion?: ConversionRecord;
}

/** A conversion's proof, as stored with the version: original and converted run on the same inputs. */
export interface OutputAccuracy {
  name: string;
  maxAbsError: number;
  /** max |converted - original| / max |original| (at least 1e-3): scale-free. */
  normalizedError: number;
  cosine: number;
  /** the original's values all lay within 1e-3 of each other on every input: its error proves nothing. */
  constant?: boolean;
}

export interface AccuracyReport {
  samples: number;
  outputs: OutputAccuracy[];
  /** the largest normalizedError over all outputs. */
  worst: number;
  tolerance: number;
  /** within tolerance, and at least one output varied across the inputs (a constant one proves nothing). */
  passed: boolean;
}

export interface ConversionRecord {
  source: { file: string; digest: string; size: number; graphFingerprint: string };
  steps: string[];
  accuracy: AccuracyReport;
  forced: boolean;
}

export interface ModelFile extends BlobRef {
  /** path inside the artifact, as the model refers to it. */
  path: string;
  /** the layer's media type; ModelPack's weight type unless said. */
  mediaType?: string;
}

export interface BuiltVersion {
  manifest: Manifest;
  manifestBytes: Buffer;
  configBytes: Buffer;
}

export function digestOf(bytes: Buffer): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

function jsonBytes(value: unknown): Buffer {
  return Buffer.from(`${JSON.stringify(value, null, 2)}\n`);
}

export function buildVersion(args: { name: string; version: number; created: string; files: ModelFile[]; onnx: OnnxMetadata }): BuiltVersion {
  const { name, version, created, files, onnx } = args;
  const precision = modelPackPrecisions(onnx.precisions);
  const config = {
    descriptor: { name, version: String(version), createdAt: created, ...(onnx.message ? { description: onnx.message } : {}) },
    config: { format: 'onnx', paramSize: paramSize(onnx.parameterCount), ...(precision ? { precision } : {}) },
    // Raw (uncompressed) layers: each diffId is the layer digest itself.
    modelfs: { type: 'layers', diffIds: files.map((f) => f.digest) },
  };
  const configBytes = jsonBytes(config);
  const manifest: Manifest = {
    schemaVersion: 2,
    mediaType: MEDIA_TYPES.manifest,
    artifactType: MEDIA_TYPES.artifact,
    config: { mediaType: MEDIA_TYPES.config, digest: digestOf(configBytes), size: configBytes.length },
    layers: files.map((f) => ({
      mediaType: f.mediaType ?? MEDIA_TYPES.weight,
      digest: f.digest,
      size: f.size,
      annotations: { [ANNOTATIONS.filepath]: f.path, [ANNOTATIONS.title]: f.path },
    })),
    annotations: {
      [ANNOTATIONS.title]: name,
      [ANNOTATIONS.version]: String(version),
      [ANNOTATIONS.created]: created,
      [ANNOTATIONS.onnx]: JSON.stringify(onnx),
    },
  };
  return { manifest, manifestBytes: jsonBytes(manifest), configBytes };
}

function invalid(where: string, why: string): MaasError {
  return new MaasError('MAAS_CONFIG_INVALID', `${where} is not a valid maas manifest: ${why}`, {
    hint: 'The file was edited outside maas. Restore it with `git checkout -- <file>`, then run `maas verify`.',
  });
}

/** Why a descriptor cannot be trusted, or undefined when it can. */
function descriptorProblem(d: Descriptor | undefined, what: string): string | undefined {
  if (!d || typeof d !== 'object') return `${what} is missing`;
  if (!isDigest(d.digest)) return `${what} digest '${String(d.digest).slice(0, 100)}' is not sha256: and 64 lowercase hex digits`;
  if (!Number.isSafeInteger(d.size) || d.size < 0) return `${what} size '${String(d.size)}' is not a byte count`;
  if (d.annotations !== undefined && (typeof d.annotations !== 'object' || d.annotations === null)) return `${what} annotations are not an object`;
  return undefined;
}

/**
 * Parses and validates a manifest: every digest is well formed and every path it names stays
 * inside the version's folder, so nothing read from it can point elsewhere. Imports, pulls,
 * `serve` and `verify` all read versions through here.
 */
export function parseManifest(text: string, where: string): { manifest: Manifest; onnx: OnnxMetadata } {
  let manifest: Manifest;
  try {
    manifest = JSON.parse(text) as Manifest;
  } catch (error) {
    throw invalid(where, (error as Error).message);
  }
  if (manifest?.schemaVersion !== 2 || manifest.mediaType !== MEDIA_TYPES.manifest || manifest.artifactType !== MEDIA_TYPES.artifact) throw invalid(where, 'not a ModelPack image manifest');
  if (!manifest.config?.digest || !Array.isArray(manifest.layers) || manifest.layers.length === 0) throw invalid(where, 'config or layers missing');
  const problem = descriptorProblem(manifest.config, 'the config')
    ?? (manifest.config.size > MAX_CONFIG_BYTES ? `the config claims ${manifest.config.size} bytes (at most ${MAX_CONFIG_BYTES})` : undefined)
    ?? manifest.layers.map((layer, i) => descriptorProblem(layer, `layer ${i}`)).find(Boolean);
  if (problem) throw invalid(where, problem);
  const paths = new Set<string>();
  for (const layer of manifest.layers) {
    const path = layer.annotations?.[ANNOTATIONS.filepath];
    if (path === undefined) continue;
    if (!isConfinedPath(path)) throw invalid(where, `layer ${layer.digest} names the path '${String(path).slice(0, 200)}', which leaves the model's folder`);
    if (paths.has(path)) throw invalid(where, `two layers name the path '${path}'`);
    paths.add(path);
  }
  if (typeof manifest.annotations !== 'object' || manifest.annotations === null) throw invalid(where, 'annotations missing');
  const raw = manifest.annotations[ANNOTATIONS.onnx];
  if (!raw) throw invalid(where, `annotation ${ANNOTATIONS.onnx} missing`);
  let onnx: OnnxMetadata;
  try {
    onnx = JSON.parse(raw) as OnnxMetadata;
  } catch (error) {
    throw invalid(where, `annotation ${ANNOTATIONS.onnx}: ${(error as Error).message}`);
  }
  if (!isConfinedPath(onnx?.modelFile)) throw invalid(where, `the model file '${String(onnx?.modelFile).slice(0, 200)}' leaves the model's folder`);
  if (manifest.layers.length > 1 && !paths.has(onnx.modelFile)) throw invalid(where, `the model file '${onnx.modelFile}' is none of the layers`);
  return { manifest, onnx };
}
