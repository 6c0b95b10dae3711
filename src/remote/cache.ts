/**
 * `maas serve oci://...`: a host that has only the OCI registry pulls each version into a
 * local cache registry (blobs kept by digest, so a restart fetches nothing new) and serves it.
 */
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { Env } from '../core/context.js';
import { DEFAULT_DEVICE } from '../registry/config.js';
import { initRegistry } from '../registry/init.js';
import { CONFIG_FILE } from '../registry/layout.js';
import type { Admission } from './artifact.js';
import { type PullResult, type TransferContext, pull } from './transfer.js';

export function isRemoteTarget(text: string): boolean {
  return text.startsWith('oci://') || text.startsWith('oci-layout:');
}

/** $MAAS_CACHE_DIR, else $XDG_CACHE_HOME/maas/registry, else ~/.cache/maas/registry. */
export function cacheRegistryDir(env: Env): string {
  return env.MAAS_CACHE_DIR ?? join(env.XDG_CACHE_HOME ?? join(env.HOME ?? homedir(), '.cache'), 'maas', 'registry');
}

/** `name`: what to serve the one remote under, instead of the name it was pushed under. */
export async function pullForServing(remotes: string[], ctx: TransferContext & { now: () => Date }, name?: string, admit?: (remote: string) => Admission): Promise<{ registry: string; refs: string[]; pulled: PullResult[] }> {
  const registry = cacheRegistryDir(ctx.env);
  if (!existsSync(join(registry, CONFIG_FILE))) {
    await initRegistry({ dir: registry, name: 'maas-serve-cache', device: DEFAULT_DEVICE, remote: null, ci: undefined }, ctx);
  }
  const pulled: PullResult[] = [];
  for (const remote of remotes) pulled.push(await pull({ remote, name, admit: admit?.(remote) }, { ...ctx, registry }));
  return { registry, refs: pulled.map((p) => p.ref), pulled };
}
