/** `maas register`: check, fingerprint and store an ONNX file as an immutable version. */
import { existsSync, realpathSync, statSync } from 'node:fs';
import { basename, dirname, extname, join, resolve } from 'node:path';
import { MaasError } from '../core/errors.js';
import { checkLoads } from '../onnx/load-check.js';
import { inspectModel, type ModelInfo, type Signature } from '../onnx/inspect.js';
import { type SignatureChange, diffSignatures } from '../onnx/signature-diff.js';
import { versionTag } from './layout.js';
import { ANNOTATIONS, type ConversionRecord, MEDIA_TYPES, type ModelFile, type OnnxMetadata, WARMUP_FILE, buildVersion, digestOf } from './manifest.js';
import { assertAlias, assertModelName, formatRef, suggestName } from './refs.js';
import { Registry, type RegistryOptions } from './registry.js';
import type { OnBytes } from './store.js';

export interface RegisterOptions {
  file: string;
  name?: string | undefined;
  version?: number | undefined;
  alias?: string | undefined;
  message?: string | undefined;
  /** load the model in onnxruntime before accepting it (default true). */
  loadCheck?: boolean;
  /** set when `file` is the result of a conversion (convert/register.ts): what from, how, and the proof. */
  conversion?: ConversionRecord | undefined;
  /** the version's warm-up samples as its warmup.json, from its signature (a checker from a floor above). */
  warmup?: ((signature: Signature) => Buffer) | undefined;
  /** called with (label, doneBytes, totalBytes) while blobs are copied in. */
  onProgress?: (label: string, totalBytes: number) => OnBytes;
}

export interface RegisterResult {
  status: 'registered' | 'unchanged';
  name: string;
  version: number;
  ref: string;
  tag: string;
  alias: string | undefined;
  /** OCI digest of the ONNX file. */
  digest: string;
  manifestDigest: string;
  graphFingerprint: string;
  size: number;
  files: ModelFile[];
  signature: Signature;
  loadChecked: boolean;
  /** what breaks for clients of the version before it (the highest registered below), if anything. */
  breaking?: { from: string; changes: SignatureChange[] };
  /** unchanged: the version's blobs this register restored, missing or damaged in the store before. */
  repaired?: { digest: string; was: 'absent' | 'damaged' }[];
  /** a conversion kept with --force although its proof failed (this time: the bytes may be registered already). */
  forcedConversion?: ConversionRecord;
  commit?: string;
}

/** What a file that fails to parse probably is, from its extension. */
const FOREIGN_FORMATS: Record<string, string> = {
  '.pt': 'a PyTorch checkpoint: export it with torch.onnx.export(model, args, "model.onnx")',
  '.pth': 'a PyTorch checkpoint: export it with torch.onnx.export(model, args, "model.onnx")',
  '.pb': 'a TensorFlow graph: convert it with python -m tf2onnx.convert --saved-model DIR --output model.onnx',
  '.h5': 'a Keras model: convert it with python -m tf2onnx.convert --keras model.h5 --output model.onnx',
  '.keras': 'a Keras model: convert it with tf2onnx (python -m tf2onnx.convert)',
  '.tflite': 'a TensorFlow Lite model: convert it with python -m tf2onnx.convert --tflite model.tflite --output model.onnx',
  '.safetensors': 'raw weights without a graph: export the model that uses them to ONNX (e.g. optimum-cli export onnx)',
  '.gguf': 'a llama.cpp model; maas serves ONNX graphs',
  '.pkl': 'a pickled Python object: export the model to ONNX (skl2onnx, torch.onnx.export)',
};

export function checkedFile(file: string, cwd: string): string {
  const path = resolve(cwd, file);
  if (!existsSync(path)) {
    throw new MaasError('MAAS_FILE_NOT_FOUND', `${file} does not exist`, { hint: 'Check the path; it is resolved from the current folder.' });
  }
  if (!statSync(path).isFile()) {
    throw new MaasError('MAAS_USAGE', `${file} is not a file`, { hint: 'Pass the .onnx file itself; external data files are found next to it.' });
  }
  return path;
}

function inspect(path: string): ModelInfo {
  try {
    return inspectModel(path);
  } catch (error) {
    const foreign = FOREIGN_FORMATS[extname(path).toLowerCase()];
    if (error instanceof MaasError && error.code === 'MAAS_MODEL_INVALID' && foreign) {
      throw new MaasError('MAAS_MODEL_INVALID', `${basename(path)} is not an ONNX model; it looks like ${foreign.split(':')[0]}`, {
        hint: foreign.includes(':') ? foreign.slice(foreign.indexOf(':') + 2) : 'Convert it to ONNX first.',
        cause: error,
      });
    }
    throw error;
  }
}

/**
 * The same version: the same bytes, whatever the model file is called today (an export step that
 * names its output by date still registers one version). External data keeps its paths: the
 * model's bytes name them, so the same model bytes with other paths could not load.
 */
function sameFiles(a: readonly { digest: string; path: string }[], b: readonly { digest: string; path: string }[]): boolean {
  return a.length === b.length && a.every((f, i) => f.digest === b[i]?.digest && (i === 0 || f.path === b[i]?.path));
}

export async function registerModel(options: RegisterOptions, ctx: RegistryOptions): Promise<RegisterResult> {
  const path = checkedFile(options.file, ctx.cwd);
  const name = options.name ?? suggestName(basename(path), false);
  assertModelName(name);
  if (options.alias !== undefined) assertAlias(options.alias);
  const registry = await Registry.open(ctx);

  const { conversion } = options;
  const info = inspect(path);
  const loadChecked = options.loadCheck ?? true;
  if (loadChecked) await checkLoads(path);

  const modelDir = dirname(path);
  // Real paths: the files inspect confined to the model's folder, never a symlink to them.
  const sources = [{ path: basename(path), source: path }, ...info.externalDataFiles.map((f) => ({ path: f, source: realpathSync(join(modelDir, f)) }))];
  /** Blobs the store held damaged, or not at all, before this register copied them in again. */
  const restored = new Map<string, 'absent' | 'damaged'>();
  const ingestModel = async () => {
    const files: ModelFile[] = [];
    for (const { path: inArtifact, source } of sources) {
      const total = statSync(source).size;
      const onBytes = options.onProgress?.(`Storing ${inArtifact}`, total);
      const { blob, previous } = await registry.store.ingest(source, onBytes);
      if (previous !== 'intact') restored.set(blob.digest, previous);
      files.push({ path: inArtifact, ...blob });
    }
    return files;
  };
  const warmup = options.warmup?.(info.signature);
  const ingest = async () => {
    const files = await ingestModel();
    if (warmup) {
      const blob = { digest: digestOf(warmup), size: warmup.length };
      await registry.store.ingestStream([warmup], blob);
      files.push({ path: WARMUP_FILE, mediaType: MEDIA_TYPES.dataset, ...blob });
    }
    return files;
  };
  // Copy outside the lock: other writers wait only for the commit.
  let files = await ingest();
  const onnx: OnnxMetadata = { ...info, modelFile: basename(path), loadChecked, ...(options.message ? { message: options.message } : {}), ...(conversion ? { conversion } : {}) };

  const subject = (r: RegisterResult) => (r.status === 'unchanged' ? `tag ${r.ref} as ${r.alias}` : `register ${r.ref}${r.alias ? ` as ${r.alias}` : ''}`);
  return registry.transact(subject, async (tx) => {
    // A concurrent `maas gc` may have dropped blobs no manifest referenced yet.
    if (!files.every((f) => registry.store.has(f))) files = await ingest();
    const existing = registry.versions(name).map((v) => registry.readVersion(name, v));
    const requested = options.version;
    const same = existing.find((v) => sameFiles(v.manifest.layers.map((l) => ({ digest: l.digest, path: l.annotations?.[ANNOTATIONS.filepath] ?? '' })), files));
    const clash = requested === undefined ? undefined : existing.find((v) => v.version === requested);
    if (clash && clash !== same) {
      throw new MaasError('MAAS_VERSION_CONFLICT', `${formatRef(name, requested!)} already exists with other bytes`, {
        hint: `Versions are immutable. Register this file as a new version (omit --version, or --version ${Math.max(...existing.map((v) => v.version)) + 1}).`,
        details: { existing: clash.manifest.layers[0]?.digest, new: files[0]?.digest },
      });
    }
    if (requested !== undefined) registry.assertNumberFree(name, requested, files[0]?.digest, 'Omit --version to take the next free number.');
    const removed = registry.removedVersions(name);
    const reuse = same && (requested === undefined || requested === same.version) ? same : undefined;
    const version = reuse?.version ?? requested ?? Math.max(0, ...existing.map((v) => v.version), ...removed.keys()) + 1;
    const at = registry.now().toISOString();

    if (options.alias !== undefined) {
      const aliases = registry.aliases(name);
      if (aliases[options.alias] !== version) {
        const previous = aliases[options.alias];
        registry.stageAliases(tx, name, { ...aliases, [options.alias]: version });
        tx.record({ at, action: 'tag', model: name, version, alias: options.alias, ...(previous === undefined ? {} : { previous }) });
      }
    }
    const base = {
      name, version, ref: formatRef(name, version), tag: versionTag(name, version), alias: options.alias, loadChecked, signature: info.signature, graphFingerprint: info.graphFingerprint,
      ...(conversion?.forced ? { forcedConversion: conversion } : {}),
    };
    if (reuse) {
      // The version's own blobs that were missing or damaged here are whole again: say so.
      const repaired = reuse.manifest.layers.filter((l) => restored.has(l.digest)).map((l) => ({ digest: l.digest, was: restored.get(l.digest)! }));
      return {
        ...base,
        ...(repaired.length ? { repaired } : {}),
        status: 'unchanged' as const,
        digest: reuse.manifest.layers[0]!.digest,
        manifestDigest: reuse.manifestDigest,
        size: reuse.manifest.layers.reduce((n, l) => n + l.size, 0),
        // The version's files as it holds them: the model file under the name it was registered with.
        files: files.map((f, i) => ({ ...f, path: reuse.manifest.layers[i]!.annotations?.[ANNOTATIONS.filepath] ?? f.path })),
        loadChecked: reuse.onnx.loadChecked,
      };
    }
    const built = buildVersion({ name, version, created: at, files, onnx });
    const dir = registry.layout.versionDir(name, version);
    tx.write(`${dir}/config.json`, built.configBytes);
    tx.write(`${dir}/manifest.json`, built.manifestBytes);
    tx.record({ at, action: 'register', model: name, version, digest: files[0]!.digest });
    tx.tag(versionTag(name, version));
    // A new latest version replaces the old one wherever its name is served: say what clients
    // lose. One filled in below a higher version replaces nothing.
    const previous = existing.some((v) => v.version > version) ? undefined : existing.filter((v) => v.version < version).at(-1);
    const changes = previous ? diffSignatures(previous.onnx.signature, info.signature).filter((c) => c.breaking) : [];
    return {
      ...base,
      ...(previous && changes.length ? { breaking: { from: formatRef(name, previous.version), changes } } : {}),
      status: 'registered' as const,
      digest: files[0]!.digest,
      manifestDigest: digestOf(built.manifestBytes),
      size: files.reduce((n, f) => n + f.size, 0),
      files,
    };
  });
}
