/**
 * What `maas serve` was asked to serve, as ModelManager targets: registered models by name
 * (their version policy decides), by NAME@VERSION or NAME@ALIAS, or remote references, which are
 * pulled into a local cache registry first (blobs kept by digest, so a restart fetches nothing).
 */
import { MaasError } from '../core/errors.js';
import type { ServeTarget } from '../inference/manager.js';
import { parseRef } from '../registry/refs.js';
import type { RegistryOptions } from '../registry/registry.js';
import { isRemoteTarget, pullForServing } from '../remote/cache.js';
import { splitDigest } from '../remote/ref.js';
import { type TrustFlags, loadTrustPolicy, pullAdmission } from '../trust/policy.js';

export interface ServeTargets {
  registry: RegistryOptions;
  targets: ServeTarget[];
  /** what happened on the way, for the log: pulls, and the name each pulled model is served under. */
  notes: string[];
}

/** Which name a pulled reference is served under, and why: it need not be the repository's. */
function servedNameLine(remote: string, served: string, byFlag: boolean): string {
  if (byFlag) return `serving it as '${served}' (--name)`;
  const repository = /([^/:]+)(?::[^/:]*)?$/.exec(splitDigest(remote)[0])?.[1];
  const why = repository === served ? "the repository's name" : 'the name it was pushed under';
  return `serving it as '${served}', ${why} (--name picks another)`;
}

function target(text: string): ServeTarget {
  const ref = parseRef(text);
  return text.includes('@') ? ref : { name: ref.name };
}

/** `name` (--name): what to serve the one remote reference under. */
export async function resolveTargets(args: string[], name: string | undefined, registry: RegistryOptions & { now: () => Date }, trust: TrustFlags = {}): Promise<ServeTargets> {
  const remotes = args.filter(isRemoteTarget);
  if (name !== undefined && (remotes.length !== 1 || args.length !== 1)) {
    throw new MaasError('MAAS_USAGE', '--name renames one remote reference, and serve was given ' + (remotes.length ? `${args.length} models` : 'registered models'), {
      hint: 'Serve one oci:// or oci-layout: reference with --name; a registered model is served under its own name.',
    });
  }
  if (remotes.length === 0) return { registry, targets: args.map(target), notes: [] };
  if (remotes.length !== args.length) {
    throw new MaasError('MAAS_USAGE', 'serve takes either registered models or remote references, not both', { hint: 'Run one maas serve per kind.' });
  }
  // The cache registry has no maas.yaml policy of its own: the flags' is checked before a blob comes.
  const policy = await loadTrustPolicy(trust, registry.cwd);
  const cached = await pullForServing(remotes, registry, name, policy && ((remote) => pullAdmission(policy, remote)));
  const notes = cached.pulled.flatMap((p) => [
    `${p.status === 'unchanged' ? 'cached' : 'pulled'} ${p.remote} as ${p.ref} (${p.manifestDigest})`,
    servedNameLine(p.remote, parseRef(p.ref).name, name !== undefined),
  ]);
  return { registry: { ...registry, registry: cached.registry }, targets: cached.refs.map((ref) => parseRef(ref)), notes };
}
