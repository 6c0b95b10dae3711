/**
 * Where things live in a registry folder. Git holds the small text; blobs/ and .maas/ are
 * git-ignored.
 *
 *   maas.yaml                              registry settings
 *   history.jsonl                          append-only log of every change
 *   models/<name>/<version>/manifest.json  OCI image manifest (ModelPack artifact)
 *   models/<name>/<version>/config.json    the manifest's config blob
 *   models/<name>/aliases.json             alias → version; each move is a commit
 *   blobs/sha256/<hex>                     content-addressed weights
 *   .maas/lock, .maas/txn.json, .maas/tmp/ writer lock, write journal, staging
 */
import { existsSync } from 'node:fs';
import { dirname, join, posix, relative, sep } from 'node:path';
import { MaasError } from '../core/errors.js';

export const CONFIG_FILE = 'maas.yaml';
export const HISTORY_FILE = 'history.jsonl';
export const MODELS_DIR = 'models';
const BLOBS_DIR = 'blobs';
const STATE_DIR = '.maas';

/** The folders of a registry that only maas writes: its blobs, manifests, git and state. */
const OWNED_DIRS = new Set([BLOBS_DIR, MODELS_DIR, STATE_DIR, '.git']);

/** The nearest registry folder (one holding maas.yaml) at or above `dir`, if any. */
export function registryAbove(dir: string): string | undefined {
  for (let at = dir; ; at = dirname(at)) {
    if (existsSync(join(at, CONFIG_FILE))) return at;
    if (dirname(at) === at) return undefined;
  }
}

/** The registry-owned folder `path` lies in (`/r/blobs` for `/r/blobs/sha256/…`), if any: no place for a user's file. */
export function ownedFolderOf(path: string): string | undefined {
  const root = registryAbove(dirname(path));
  const top = root === undefined ? undefined : relative(root, path).split(sep)[0]!;
  return top !== undefined && OWNED_DIRS.has(top) ? join(root!, top) : undefined;
}

/** The only digest form maas stores and verifies: `sha256:` and 64 lowercase hex digits. */
const SHA256_DIGEST = /^sha256:[0-9a-f]{64}$/;

export function isDigest(text: unknown): boolean {
  return typeof text === 'string' && SHA256_DIGEST.test(text);
}

/**
 * A path that stays inside the folder it is joined to: relative, no `..` segment, no NUL or
 * backslash, not the folder itself. Paths from manifests and archives must pass this.
 */
export function isConfinedPath(text: unknown): boolean {
  if (typeof text !== 'string' || text === '' || text.length > 4096 || /[\\\0]/.test(text) || text.startsWith('/')) return false;
  const normal = posix.normalize(text);
  return normal !== '.' && normal !== './' && !text.split('/').includes('..');
}

export class Layout {
  constructor(readonly root: string) {}

  get config(): string {
    return join(this.root, CONFIG_FILE);
  }
  get history(): string {
    return join(this.root, HISTORY_FILE);
  }
  get models(): string {
    return join(this.root, MODELS_DIR);
  }
  get blobs(): string {
    return join(this.root, BLOBS_DIR, 'sha256');
  }
  get state(): string {
    return join(this.root, STATE_DIR);
  }
  get lock(): string {
    return join(this.state, 'lock');
  }
  get journal(): string {
    return join(this.state, 'txn.json');
  }
  get staging(): string {
    return join(this.state, 'tmp');
  }

  /** A blob's file; anything but a well-formed digest is refused, so no digest can name another path. */
  blob(digest: string): string {
    if (!isDigest(digest)) {
      throw new MaasError('MAAS_CONFIG_INVALID', `'${String(digest).slice(0, 100)}' is not a sha256 digest`, {
        hint: 'A digest is sha256: and 64 lowercase hex digits. Run `maas verify` to find the manifest that names it.',
      });
    }
    return join(this.blobs, digest.slice('sha256:'.length));
  }

  /** paths relative to the registry root, as git and the journal name them. */
  modelDir(name: string): string {
    return `${MODELS_DIR}/${name}`;
  }
  versionDir(name: string, version: number): string {
    return `${MODELS_DIR}/${name}/${version}`;
  }
  aliases(name: string): string {
    return `${MODELS_DIR}/${name}/aliases.json`;
  }
}

/** A version's git tag, in the `name@vN` form DVC/GTO users know. */
export function versionTag(name: string, version: number): string {
  return `${name}@v${version}`;
}
