/** `maas verify`: re-hash every blob against its manifest and check git agrees with the work tree. */
import { existsSync } from 'node:fs';
import { join, relative } from 'node:path';
import { CONFIG_FILE, HISTORY_FILE, MODELS_DIR, versionTag } from './layout.js';
import { ANNOTATIONS, digestOf } from './manifest.js';
import { formatRef, parseRef } from './refs.js';
import { Registry, type RecoveryReport, type RegistryOptions } from './registry.js';
import { STAGING_GRACE_MS, type BlobState, type OnBytes } from './store.js';

export type ProblemKind = 'missing-blob' | 'corrupt-blob' | 'bad-config' | 'bad-manifest' | 'missing-tag' | 'tag-mismatch' | 'dangling-alias' | 'uncommitted';

export interface Problem {
  kind: ProblemKind;
  ref?: string;
  path?: string;
  message: string;
}

/** Not a fault in the registry, but something to clean up: partial files of interrupted writes. */
export interface StagingWarning {
  kind: 'staging-leftovers';
  /** the staging folder, relative to the registry. */
  path: string;
  files: number;
  bytes: number;
  fix: 'maas gc';
}

export interface VerifyResult {
  ok: boolean;
  registry: string;
  versions: number;
  blobs: number;
  bytes: number;
  recovered: RecoveryReport | undefined;
  problems: Problem[];
  warnings: StagingWarning[];
  /** the registry could not be written (a read-only mount, another user's files): checked without the write lock. */
  readOnly?: true;
}

export interface VerifyOptions {
  ref?: string | undefined;
  onProgress?: (label: string, totalBytes: number) => OnBytes;
}

export async function verifyRegistry(options: VerifyOptions, ctx: RegistryOptions): Promise<VerifyResult> {
  const registry = await Registry.open(ctx);
  // Under the lock, so an interrupted write is finished or undone before anything is judged.
  const lock = await registry.readLock();
  try {
    const problems: Problem[] = [];
    let versions = 0;
    const checked = new Map<string, BlobState>();
    let bytes = 0;
    const only = options.ref ? parseRef(options.ref) : undefined;
    const names = only ? [only.name] : registry.modelNames();
    const tags = await registry.git.tags('*');
    for (const name of names) {
      const wanted = only && only.selector.kind !== 'latest' ? [registry.resolve(only).version] : registry.versions(name);
      if (only && wanted.length === 0) registry.resolve(only); // throws not found
      for (const version of wanted) {
        versions++;
        const ref = formatRef(name, version);
        let record;
        try {
          record = registry.readVersion(name, version);
        } catch (error) {
          problems.push({ kind: 'bad-manifest', ref, message: `${ref}: ${(error as Error).message}` });
          continue;
        }
        const configPath = join(registry.layout.versionDir(name, version), 'config.json');
        const config = existsSync(join(registry.root, configPath)) ? registry.configBytes(name, version) : undefined;
        if (!config || digestOf(config) !== record.manifest.config.digest || config.length !== record.manifest.config.size) {
          problems.push({ kind: 'bad-config', ref, path: configPath, message: `${ref}: ${configPath} ${config ? 'does not match the manifest' : 'is missing'}` });
        }
        const tag = versionTag(name, version);
        const manifestPath = `${registry.layout.versionDir(name, version)}/manifest.json`;
        if (!tags.has(tag)) {
          problems.push({ kind: 'missing-tag', ref, message: `${ref}: git tag ${tag} is missing` });
        } else {
          // A version is immutable: its committed manifest is the one its tag recorded.
          const [atTag, atHead] = await registry.git.objectIds([`${tag}:./${manifestPath}`, `HEAD:./${manifestPath}`]);
          if (atTag !== atHead) {
            problems.push({ kind: 'tag-mismatch', ref, path: manifestPath, message: `${ref}: ${manifestPath} is not the manifest git tag ${tag} recorded: it was changed after ${ref} was registered` });
          }
        }
        for (const layer of record.manifest.layers) {
          // Judged by digest alone and once: a blob is shared, and one manifest's claim about it
          // (its size) says nothing about the blob, only about that manifest.
          let blob = checked.get(layer.digest);
          if (!blob) {
            const onBytes = options.onProgress?.(`Verifying ${layer.annotations?.[ANNOTATIONS.filepath] ?? layer.digest}`, layer.size);
            blob = await registry.store.inspect(layer.digest, onBytes);
            checked.set(layer.digest, blob);
            if (blob.state === 'ok') bytes += blob.size;
          }
          const file = layer.annotations?.[ANNOTATIONS.filepath] ?? '';
          if (blob.state === 'ok') {
            if (blob.size === layer.size) continue;
            problems.push({
              kind: 'bad-manifest',
              ref,
              path: manifestPath,
              message: `${ref}: ${manifestPath} gives blob ${layer.digest} (${file}) as ${layer.size} bytes, but the blob holds ${blob.size} and matches its digest: the manifest is wrong, not the blob; restore the manifest from git`,
            });
            continue;
          }
          problems.push({
            kind: blob.state === 'missing' ? 'missing-blob' : 'corrupt-blob',
            ref,
            path: registry.store.path(layer.digest),
            message: blob.state === 'missing'
              ? `${ref}: blob ${layer.digest} (${file}) is missing; fetch it with \`maas pull\` or register the file again`
              : `${ref}: blob ${layer.digest} (${file}) does not match its digest; register the file again (or pull the version again): either replaces the damaged copy`,
          });
        }
      }
      const versionsNow = registry.versions(name);
      for (const [alias, version] of Object.entries(registry.aliases(name))) {
        if (!versionsNow.includes(version)) {
          problems.push({ kind: 'dangling-alias', ref: `${name}@${alias}`, message: `${name}@${alias} points to missing version ${version}` });
        }
      }
    }
    // The whole registry's files, or the named model's.
    for (const path of await registry.git.changed(only ? [registry.layout.modelDir(only.name)] : [CONFIG_FILE, HISTORY_FILE, MODELS_DIR])) {
      problems.push({ kind: 'uncommitted', path, message: `${path} differs from the last commit (changed outside maas)` });
    }
    const warnings: StagingWarning[] = [];
    const leftovers = registry.store.staging(STAGING_GRACE_MS).filter((f) => f.abandoned);
    if (leftovers.length) {
      const bytes = leftovers.reduce((n, f) => n + f.size, 0);
      warnings.push({ kind: 'staging-leftovers', path: relative(registry.root, registry.layout.staging), files: leftovers.length, bytes, fix: 'maas gc' });
    }
    return { ok: problems.length === 0, warnings, registry: registry.root, versions, blobs: checked.size, bytes, recovered: lock.recovered ?? registry.recoveredAtOpen, problems, ...(lock.readOnly ? { readOnly: true as const } : {}) };
  } finally {
    lock.release();
  }
}
