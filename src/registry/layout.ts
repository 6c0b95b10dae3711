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
import { join } from 'node:path';

export const CONFIG_FILE = 'maas.yaml';
export const HISTORY_FILE = 'history.jsonl';
export const MODELS_DIR = 'models';

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
    return join(this.root, 'blobs', 'sha256');
  }
  get state(): string {
    return join(this.root, '.maas');
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

  blob(digest: string): string {
    return join(this.blobs, digest.replace(/^sha256:/, ''));
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
