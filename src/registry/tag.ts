/** `maas tag NAME@VERSION ALIAS`: move an alias; each move is a commit, so `git log` audits it. */
import { MaasError } from '../core/errors.js';
import { assertAlias, formatRef, parseRef } from './refs.js';
import { Registry, type RegistryOptions } from './registry.js';

export interface TagOptions {
  ref: string;
  alias: string;
  /** remove the alias instead of moving it. */
  delete?: boolean;
}

export interface TagResult {
  name: string;
  alias: string;
  /** the version the alias now names; undefined once deleted. */
  version: number | undefined;
  previous: number | undefined;
  changed: boolean;
  commit?: string;
}

export async function tagVersion(options: TagOptions, ctx: RegistryOptions): Promise<TagResult> {
  assertAlias(options.alias);
  const registry = await Registry.open(ctx);
  const ref = parseRef(options.ref);
  const subject = (r: TagResult) =>
    r.version === undefined ? `untag ${r.name}@${r.alias} (was ${r.previous})` : `tag ${formatRef(r.name, r.version)} as ${r.alias}${r.previous ? ` (was ${r.previous})` : ''}`;
  return registry.transact(subject, async (tx) => {
    const aliases = registry.aliases(ref.name);
    const previous = aliases[options.alias];
    const at = registry.now().toISOString();
    if (options.delete) {
      if (previous === undefined) registry.resolve({ name: ref.name, selector: { kind: 'alias', alias: options.alias } }); // throws
      const { [options.alias]: _dropped, ...rest } = aliases;
      registry.stageAliases(tx, ref.name, rest);
      tx.record({ at, action: 'untag', model: ref.name, alias: options.alias, previous: previous! });
      return { name: ref.name, alias: options.alias, version: undefined, previous, changed: true };
    }
    if (ref.selector.kind === 'alias' && ref.selector.alias === options.alias) {
      throw new MaasError('MAAS_USAGE', `'${options.ref}' names the alias being moved`, { hint: `Name a version: maas tag ${ref.name}@VERSION ${options.alias}.` });
    }
    const { version } = registry.resolve(ref);
    if (previous === version) return { name: ref.name, alias: options.alias, version, previous, changed: false };
    registry.stageAliases(tx, ref.name, { ...aliases, [options.alias]: version });
    tx.record({ at, action: 'tag', model: ref.name, version, alias: options.alias, ...(previous === undefined ? {} : { previous }) });
    return { name: ref.name, alias: options.alias, version, previous, changed: true };
  });
}
