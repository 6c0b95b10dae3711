/** `maas gc`: delete blobs no version references any more. */
import { Registry, type RegistryOptions } from './registry.js';
import { STAGING_GRACE_MS } from './store.js';

export interface GcResult {
  dryRun: boolean;
  removed: { digest: string; size: number }[];
  freedBytes: number;
  kept: number;
  /** partial files of interrupted writes in .maas/tmp: removed, or with --dry-run those that would be. */
  staging: { path: string; size: number }[];
  stagingBytes: number;
  /** --dry-run on a registry this process cannot write to: counted without the write lock. */
  readOnly?: true;
}

export async function collectGarbage(options: { dryRun?: boolean }, ctx: RegistryOptions): Promise<GcResult> {
  const registry = await Registry.open(ctx);
  const lock = options.dryRun ? await registry.readLock() : await registry.lock();
  try {
    const referenced = new Set<string>();
    for (const name of registry.modelNames()) {
      for (const version of registry.versions(name)) {
        for (const layer of registry.readVersion(name, version).manifest.layers) referenced.add(layer.digest);
      }
    }
    const removed: GcResult['removed'] = [];
    for (const digest of registry.store.list()) {
      if (referenced.has(digest)) continue;
      removed.push({ digest, size: registry.store.sizeOf(digest) });
      if (!options.dryRun) registry.store.remove(digest);
    }
    const staging = (options.dryRun ? registry.store.staging(STAGING_GRACE_MS).filter((f) => f.abandoned) : registry.store.clearStaging(STAGING_GRACE_MS))
      .map(({ path, size }) => ({ path, size }));
    return {
      dryRun: Boolean(options.dryRun),
      removed,
      freedBytes: removed.reduce((n, b) => n + b.size, 0),
      kept: referenced.size,
      staging,
      stagingBytes: staging.reduce((n, f) => n + f.size, 0),
      ...('readOnly' in lock && lock.readOnly ? { readOnly: true as const } : {}),
    };
  } finally {
    lock.release();
  }
}
