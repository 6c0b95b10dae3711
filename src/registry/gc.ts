/** `maas gc`: delete blobs no version references any more. */
import { Registry, type RegistryOptions } from './registry.js';

/** Staged copies younger than this may belong to a register still running. */
const STAGING_GRACE_MS = 60 * 60_000;

export interface GcResult {
  dryRun: boolean;
  removed: { digest: string; size: number }[];
  freedBytes: number;
  kept: number;
  stagingCleared: number;
}

export async function collectGarbage(options: { dryRun?: boolean }, ctx: RegistryOptions): Promise<GcResult> {
  const registry = await Registry.open(ctx);
  const lock = await registry.lock();
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
    const stagingCleared = options.dryRun ? 0 : registry.store.clearStaging(STAGING_GRACE_MS);
    return {
      dryRun: Boolean(options.dryRun),
      removed,
      freedBytes: removed.reduce((n, b) => n + b.size, 0),
      kept: referenced.size,
      stagingCleared,
    };
  } finally {
    lock.release();
  }
}
