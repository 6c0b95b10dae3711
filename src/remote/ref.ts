/**
 * Remote references: `oci://host[:port]/repository[:tag][@sha256:…]` and
 * `oci-layout:PATH[:tag][@sha256:…]`. A digest pins the manifest; with a tag beside it, as in
 * docker, the digest decides and the tag is only a reminder.
 */
import { MaasError } from '../core/errors.js';
import { isDigest } from '../registry/layout.js';

export type RemoteRef =
  | { kind: 'registry'; host: string; repository: string; tag: string | undefined; digest: string | undefined; url: string }
  | { kind: 'layout'; path: string; tag: string | undefined; digest: string | undefined; url: string };

const TAG = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/;
const REPOSITORY = /^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*$/;

export function isTag(text: string): boolean {
  return TAG.test(text);
}

function invalid(text: string, why: string): MaasError {
  return new MaasError('MAAS_USAGE', `'${text}' is not a remote: ${why}`, {
    hint: 'Write oci://HOST[:PORT]/REPOSITORY[:TAG][@sha256:DIGEST] (e.g. oci://ghcr.io/acme/mlp:2) or oci-layout:PATH[:TAG][@sha256:DIGEST].',
  });
}

/** Splits a trailing `:tag` off, when what follows the last colon is a tag and not a port or a path. */
function splitTag(rest: string): [string, string | undefined] {
  const colon = rest.lastIndexOf(':');
  const slash = rest.lastIndexOf('/');
  if (colon === -1 || colon < slash) return [rest, undefined];
  const tag = rest.slice(colon + 1);
  return TAG.test(tag) ? [rest.slice(0, colon), tag] : [rest, undefined];
}

/** Splits a trailing `@sha256:…` off; `@` followed by anything else belongs to the path. */
export function splitDigest(text: string): [string, string | undefined] {
  const at = text.lastIndexOf('@sha256:');
  if (at === -1) return [text, undefined];
  const digest = text.slice(at + 1);
  if (!isDigest(digest)) throw invalid(text, `'${digest.slice(0, 80)}' is not a digest (sha256: and 64 lowercase hex digits)`);
  return [text.slice(0, at), digest];
}

export function parseRemote(text: string): RemoteRef {
  const [named, digest] = splitDigest(text);
  if (named.startsWith('oci-layout:')) {
    const [path, tag] = splitTag(named.slice('oci-layout:'.length));
    if (!path) throw invalid(text, 'no path');
    return { kind: 'layout', path, tag, digest, url: text };
  }
  if (!named.startsWith('oci://')) throw invalid(text, 'unknown scheme');
  const rest = named.slice('oci://'.length);
  const slash = rest.indexOf('/');
  const host = slash === -1 ? rest : rest.slice(0, slash);
  if (!host) throw invalid(text, 'no host');
  const [repository, tag] = slash === -1 ? ['', undefined] : splitTag(rest.slice(slash + 1));
  if (repository && !REPOSITORY.test(repository)) throw invalid(text, `'${repository}' is not a repository name (lowercase, / separated)`);
  if (digest && !repository) throw invalid(text, 'a digest needs a repository');
  return { kind: 'registry', host, repository, tag, digest, url: text };
}

/** What to fetch: the digest when one is pinned, else the tag. */
export function referenceOf(remote: RemoteRef): string | undefined {
  return remote.digest ?? remote.tag;
}

/** A remote without a repository takes the model's name: `oci://host` + mlp → host/mlp. */
export function withRepository(remote: RemoteRef, name: string): RemoteRef {
  return remote.kind === 'registry' && !remote.repository ? { ...remote, repository: name } : remote;
}

export function isLoopback(host: string): boolean {
  const bare = host.replace(/:\d+$/, '').replace(/^\[|\]$/g, '');
  return /^(localhost|127\.\d+\.\d+\.\d+|::1)$/.test(bare);
}
