/** The serve cache: a registered version as the files onnxruntime loads, checked before it loads them. */
import { copyFileSync, linkSync, lstatSync, readFileSync, realpathSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, resolve, sep } from 'node:path';
import { MaasError } from '../core/errors.js';
import { makeFolders, writeNewFolder } from '../core/fs.js';
import { ANNOTATIONS, MAX_WARMUP_BYTES, MEDIA_TYPES, WARMUP_FILE } from './manifest.js';
import type { Registry, VersionRecord } from './registry.js';

function outside(record: VersionRecord, path: string): MaasError {
  return new MaasError('MAAS_MODEL_INVALID', `${record.name}@${record.version}: '${path}' leaves the version's folder`, {
    hint: 'The manifest names a path outside its model; `maas verify` reports it. Register or pull the version again from a good copy.',
  });
}

/**
 * `path` resolved inside `root` by its real path: a symlink planted on the way cannot lead out,
 * and no folder is made through one.
 */
function confined(record: VersionRecord, root: string, path: string): string {
  const target = resolve(root, path);
  if (!target.startsWith(`${root}${sep}`)) throw outside(record, path);
  const realRoot = realpathSync(root);
  const inside = (p: string) => p === realRoot || p.startsWith(`${realRoot}${sep}`);
  let existing = dirname(target);
  while (!lstatSync(existing, { throwIfNoEntry: false })) existing = dirname(existing);
  try {
    if (!inside(realpathSync(existing))) throw outside(record, path);
    makeFolders(dirname(target));
    const realParent = realpathSync(dirname(target));
    if (!inside(realParent)) throw outside(record, path);
    return join(realParent, basename(target));
  } catch (error) {
    if (error instanceof MaasError) throw error;
    throw outside(record, path); // a dangling link or a file on the way
  }
}

/**
 * A single-file model is its blob. A model with external data gets a folder of hard links
 * (copies across filesystems) named as the model refers to them, under .maas/serve/; every
 * name is confined to that folder by real path, whatever the manifest says.
 */
export function modelPath(registry: Registry, record: VersionRecord): string {
  const { store } = registry;
  for (const layer of record.manifest.layers) {
    if (!store.has(layer)) {
      throw new MaasError('MAAS_FILE_NOT_FOUND', `${record.name}@${record.version}: blob ${layer.digest} is not in this registry's store`, {
        hint: 'Fetch the weights with `maas pull`, or register the file again; `maas verify` lists what is missing.',
      });
    }
  }
  if (record.manifest.layers.length === 1) return store.path(record.manifest.layers[0]!.digest);
  const dir = join(registry.layout.state, 'serve', record.manifestDigest.slice('sha256:'.length));
  makeFolders(dir);
  // Every name is confined before anything is linked: a refused version leaves no file.
  const model = confined(record, dir, record.onnx.modelFile);
  const targets = record.manifest.layers.map((layer) => {
    const name = layer.annotations?.[ANNOTATIONS.filepath] ?? layer.digest;
    return { layer, name, target: confined(record, dir, name) };
  });
  for (const { layer, name, target } of targets) {
    const existing = lstatSync(target, { throwIfNoEntry: false });
    if (existing?.isFile()) continue;
    if (existing) throw outside(record, name); // a link or folder where a file belongs
    try {
      linkSync(store.path(layer.digest), target);
    } catch {
      copyFileSync(store.path(layer.digest), target);
    }
  }
  return model;
}

/** Re-hashes a version's blobs before onnxruntime reads them: a corrupt one is refused, not served. */
export async function checkBlobs(registry: Registry, record: VersionRecord): Promise<void> {
  for (const layer of record.manifest.layers) {
    const state = await registry.store.check(layer);
    if (state === 'corrupt') throw corruptBlob(record, layer.digest);
    if (state === 'wrong-size') throw misstatedSize(record, layer.digest); // the manifest is at fault, not the blob
    // a missing blob has its own error, from modelPath
  }
}

/** A manifest that gives a blob another size than its bytes, which do match the digest (exit 8). */
function misstatedSize(record: { name: string; version: number }, digest: string): MaasError {
  return new MaasError('MAAS_VERIFY_FAILED', `${record.name}@${record.version}: its manifest gives blob ${digest} another size than the blob has (the blob matches its digest)`, {
    hint: `The manifest was changed after ${record.name}@${record.version} was registered: run \`maas verify\`, and restore the manifest from git.`,
  });
}

/** A stored blob whose bytes no longer match their digest (exit 8): what restores it. */
export function corruptBlob(record: { name: string; version: number }, digest: string): MaasError {
  return new MaasError('MAAS_VERIFY_FAILED', `${record.name}@${record.version}: blob ${digest} is corrupt (its bytes no longer match their digest)`, {
    hint: `Run \`maas verify\` to see every damaged blob; register or pull ${record.name}@${record.version} again to restore it.`,
  });
}

/** The bytes of a version's warm-up samples layer, if it has one (its digest is checked by checkBlobs first). */
export function readWarmup(registry: Registry, record: VersionRecord): Buffer | undefined {
  const layer = record.manifest.layers.find((l) => l.mediaType === MEDIA_TYPES.dataset && l.annotations?.[ANNOTATIONS.filepath] === WARMUP_FILE);
  if (!layer) return undefined;
  if (layer.size > MAX_WARMUP_BYTES) {
    throw new MaasError('MAAS_MODEL_INVALID', `${record.name}@${record.version}: its warm-up samples take ${layer.size} bytes (at most ${MAX_WARMUP_BYTES})`, { hint: 'Register the version again with a few warm-up requests.' });
  }
  return readFileSync(registry.store.path(layer.digest));
}

export interface WrittenFiles {
  dir: string;
  files: { path: string; size: number }[];
}

/**
 * A version as plain files in the new folder `dir` (copies, named as the model refers to them,
 * every name confined to the folder), plus `extra` files beside them (a signature). `dir` gets all
 * of them or none (core/fs.ts writeNewFolder); an existing `dir` must be empty.
 */
export function writeVersionFiles(registry: Registry, record: VersionRecord, dir: string, extra: { path: string; bytes: Buffer }[] = []): WrittenFiles {
  modelPath(registry, record); // every blob present, or the fix
  return writeNewFolder(dir, (staging) => {
    const files = record.manifest.layers.map((layer) => {
      const path = layer.annotations?.[ANNOTATIONS.filepath] ?? layer.digest;
      copyFileSync(registry.store.path(layer.digest), confined(record, staging, path));
      return { path, size: layer.size };
    });
    for (const file of extra) {
      writeFileSync(confined(record, staging, file.path), file.bytes);
      files.push({ path: file.path, size: file.bytes.length });
    }
    return { dir, files };
  });
}
