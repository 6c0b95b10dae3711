/** `maas rm NAME@VERSION`: drop a version (its blobs stay until `maas gc`). */
import { MaasError } from '../core/errors.js';
import { versionTag } from './layout.js';
import { formatRef, parseVersionRef } from './refs.js';
import { Registry, type RegistryOptions } from './registry.js';

export interface RemoveOptions {
  ref: string;
  /** also drop aliases that point at the version. */
  force?: boolean;
}

export interface RemoveResult {
  name: string;
  version: number;
  ref: string;
  removedAliases: string[];
  commit?: string;
}

export async function removeVersion(options: RemoveOptions, ctx: RegistryOptions): Promise<RemoveResult> {
  const registry = await Registry.open(ctx);
  const { name, version } = parseVersionRef(options.ref);
  return registry.transact((r: RemoveResult) => `remove ${r.ref}`, async (tx) => {
    registry.resolve({ name, selector: { kind: 'version', version } });
    const record = registry.readVersion(name, version);
    const aliases = registry.aliases(name);
    const pointing = Object.keys(aliases).filter((a) => aliases[a] === version).sort();
    if (pointing.length && !options.force) {
      throw new MaasError('MAAS_VERSION_IN_USE', `${formatRef(name, version)} is still aliased as ${pointing.join(', ')}`, {
        hint: `Move the alias first (maas tag ${name}@OTHER ${pointing[0]}), or pass --force to drop it too.`,
      });
    }
    const at = registry.now().toISOString();
    if (pointing.length) {
      registry.stageAliases(tx, name, Object.fromEntries(Object.entries(aliases).filter(([a]) => !pointing.includes(a))));
      for (const alias of pointing) tx.record({ at, action: 'untag', model: name, alias, previous: version });
    }
    tx.remove(registry.layout.versionDir(name, version));
    tx.record({ at, action: 'remove', model: name, version, digest: record.manifest.layers[0]!.digest });
    tx.untag(versionTag(name, version));
    return { name, version, ref: formatRef(name, version), removedAliases: pointing };
  });
}
