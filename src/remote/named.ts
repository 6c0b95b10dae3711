/** Named remotes in maas.yaml (`remotes:`), each change a commit like every other registry change. */
import { readFileSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import { parseDocument } from 'yaml';
import { MaasError } from '../core/errors.js';
import { CONFIG_FILE } from '../registry/layout.js';
import { Registry, type RegistryOptions } from '../registry/registry.js';
import { parseRemote } from './ref.js';

export interface RemotesResult {
  remotes: Record<string, string>;
  /** `previous`: the URL an add replaced. */
  changed?: { action: 'add' | 'rm'; name: string; previous?: string };
  commit?: string;
}

const NAME = /^[a-z][a-z0-9_-]{0,62}$/;

export async function listRemotes(ctx: RegistryOptions): Promise<RemotesResult> {
  return { remotes: (await Registry.open(ctx)).config.remotes };
}

export async function changeRemote(options: { action: 'add' | 'rm'; name: string; url?: string | undefined }, ctx: RegistryOptions): Promise<RemotesResult> {
  if (!NAME.test(options.name)) throw new MaasError('MAAS_USAGE', `'${options.name}' is not a remote name`, { hint: 'Use lowercase letters, digits, - and _, starting with a letter.' });
  if (options.action === 'add') {
    if (!options.url) throw new MaasError('MAAS_USAGE', 'maas remote add needs a URL', { hint: `maas remote add ${options.name} oci://HOST/REPOSITORY` });
    parseRemote(options.url);
  }
  const registry = await Registry.open(ctx);
  return registry.transact(`remote ${options.action} ${options.name}`, async (tx) => {
    const doc = parseDocument(readFileSync(registry.layout.config, 'utf8'));
    if (options.action === 'add') doc.setIn(['remotes', options.name], options.url);
    else if (!doc.hasIn(['remotes', options.name])) {
      throw new MaasError('MAAS_REMOTE_NAME_NOT_FOUND', `no remote named '${options.name}'`, { hint: `Known: ${Object.keys(registry.config.remotes).join(', ') || 'none'}.` });
    } else doc.deleteIn(['remotes', options.name]);
    tx.write(CONFIG_FILE, doc.toString());
    const remotes = { ...registry.config.remotes };
    if (options.action === 'add') remotes[options.name] = options.url!;
    else delete remotes[options.name];
    const previous = options.action === 'add' ? ownRemote(registry.config.remotes, options.name) : undefined;
    return { remotes, changed: { action: options.action, name: options.name, ...(previous !== undefined && previous !== options.url ? { previous } : {}) } };
  });
}

/**
 * A URL written in maas.yaml: an `oci-layout:` path in it is relative to the registry, not to
 * the folder a command runs in.
 */
export function configuredRemote(url: string, registryRoot: string): string {
  if (!url.startsWith('oci-layout:')) return url;
  const path = url.slice('oci-layout:'.length);
  return isAbsolute(path) ? url : `oci-layout:${join(registryRoot, path)}`;
}

/**
 * A remote argument: a name from maas.yaml (optionally `name:tag` or `name@sha256:…`), or a
 * reference itself. `registryRoot` anchors a named layout's relative path.
 */
export function resolveRemoteName(text: string, remotes: Record<string, string>, registryRoot?: string): string {
  const at = text.indexOf('@sha256:');
  if (at !== -1) return `${resolveRemoteName(text.slice(0, at), remotes, registryRoot)}${text.slice(at)}`;
  const fromConfig = (url: string) => (registryRoot === undefined ? url : configuredRemote(url, registryRoot));
  const named = ownRemote(remotes, text);
  if (named) return fromConfig(named);
  const colon = text.lastIndexOf(':');
  const base = colon === -1 ? undefined : ownRemote(remotes, text.slice(0, colon));
  if (base) return fromConfig(`${base}:${text.slice(colon + 1)}`);
  // A word that is no reference is a remote's name, mistyped or never added.
  const word = colon === -1 ? text : text.slice(0, colon);
  if (!text.includes('/') && NAME.test(word) && word !== 'oci-layout') {
    const known = Object.keys(remotes);
    throw new MaasError('MAAS_REMOTE_NAME_NOT_FOUND', `no remote named '${word}'`, {
      hint: `${known.length ? `Known: ${known.join(', ')}. ` : ''}Add it with \`maas remote add ${word} oci://HOST/REPOSITORY\`, or give a reference: oci://HOST/REPOSITORY or oci-layout:PATH.`,
    });
  }
  return text;
}

/** The remote maas.yaml names `name`, never a property every object has (`constructor` is a valid remote name). */
function ownRemote(remotes: Record<string, string>, name: string): string | undefined {
  return Object.hasOwn(remotes, name) ? remotes[name] : undefined;
}
