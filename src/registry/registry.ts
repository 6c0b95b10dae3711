/**
 * An open registry: reads versions, aliases and history from the work tree. Every change goes
 * through `transact` (transaction.ts), which journals, writes atomically, commits and tags
 * under the lock.
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Env } from '../core/context.js';
import { MaasError, clipped, errnoCode } from '../core/errors.js';
import type { RegistryConfig } from './config.js';
import { readConfig } from './config-file.js';
import { Git } from './git.js';
import { isLockHeld } from './lock.js';
import { CONFIG_FILE, Layout, registryAbove } from './layout.js';
import { type Manifest, type OnnxMetadata, digestOf, parseManifest } from './manifest.js';
import { type ModelRef, formatRef } from './refs.js';
import { BlobStore } from './store.js';
import { type HistoryEntry, type RecoveryReport, type Transaction, Transactions } from './transaction.js';

export type { HistoryEntry, RecoveryReport, Transaction };

export interface RegistryOptions {
  cwd: string;
  env: Env;
  /** --registry / MAAS_REGISTRY; otherwise the nearest folder up from cwd holding maas.yaml. */
  registry?: string | undefined;
  now?: () => Date;
}

export interface VersionRecord {
  name: string;
  version: number;
  manifest: Manifest;
  /** the manifest's exact bytes, as pushed and as its digest covers them. */
  manifestBytes: Buffer;
  manifestDigest: string;
  onnx: OnnxMetadata;
}


export function findRegistryRoot(options: RegistryOptions): string {
  const explicit = options.registry ?? options.env.MAAS_REGISTRY;
  if (explicit) {
    const root = resolve(options.cwd, explicit);
    if (!existsSync(join(root, CONFIG_FILE))) {
      throw new MaasError('MAAS_REGISTRY_NOT_FOUND', `${root} is not a maas registry (no ${CONFIG_FILE})`, {
        hint: `Create one with \`maas init ${explicit}\`, or point --registry / MAAS_REGISTRY at an existing one.`,
      });
    }
    return root;
  }
  const found = registryAbove(resolve(options.cwd));
  if (found !== undefined) return found;
  throw new MaasError('MAAS_REGISTRY_NOT_FOUND', `no maas registry in ${options.cwd} or any folder above it`, {
    hint: 'Run `maas init` to create one here, or pass --registry DIR (or set MAAS_REGISTRY).',
  });
}

/** maas.yaml alone is not a registry: versions are commits and tags, so git must hold the folder. */
function notInGit(root: string): MaasError {
  return new MaasError('MAAS_REGISTRY_NOT_FOUND', `${root} is not a maas registry: it holds ${CONFIG_FILE} but no git repository commits it`, {
    hint: `Make it one with \`maas init ${root} --force\` (it keeps this ${CONFIG_FILE}), or run \`git init\` there and commit ${CONFIG_FILE}.`,
  });
}

export class Registry {
  readonly layout: Layout;
  readonly store: BlobStore;
  /** the interrupted write that opening this registry finished or undid, if any. */
  recoveredAtOpen: RecoveryReport | undefined;

  private readonly writes: Transactions;

  private constructor(
    private current: RegistryConfig,
    layout: Layout,
    readonly git: Git,
    env: Env,
    readonly now: () => Date,
  ) {
    this.layout = layout;
    this.store = new BlobStore(layout);
    this.writes = new Transactions(layout, git, env, now);
  }

  /** maas.yaml as read at open, or at the last reloadConfig(). */
  get config(): RegistryConfig {
    return this.current;
  }

  /** Reads maas.yaml again (a long-running server sees edits); a broken file throws and the last good one stays. */
  reloadConfig(): RegistryConfig {
    this.current = readConfig(join(this.root, CONFIG_FILE));
    return this.current;
  }

  lock(): Promise<{ release(): void; recovered: RecoveryReport | undefined }> {
    return this.writes.lock();
  }

  /**
   * The lock for a command that only reads but wants no write half-done under it (verify, gc
   * --dry-run). A registry this process cannot write to (a read-only mount, another user's
   * files) is read without it: `readOnly` says so, and nothing interrupted can be finished.
   */
  async readLock(): Promise<{ release(): void; recovered: RecoveryReport | undefined; readOnly?: true }> {
    try {
      return await this.lock();
    } catch (error) {
      const errno = errnoCode(error);
      if (errno !== 'EROFS' && errno !== 'EACCES' && errno !== 'EPERM') throw error;
      return { release: () => undefined, recovered: undefined, readOnly: true };
    }
  }

  /** Runs `plan` under the lock; applies what it staged as one commit, or nothing. */
  transact<T extends object>(message: string | ((result: T) => string), plan: (tx: Transaction) => Promise<T>): Promise<T & { commit?: string }> {
    return this.writes.transact(message, plan);
  }

  static async open(options: RegistryOptions): Promise<Registry> {
    const root = findRegistryRoot(options);
    const git = await Git.open(root, options.env);
    // Before anything is read or written: without git a write lands its files, then fails to commit.
    if ((await git.committingRepository(root)) === undefined) throw notInGit(root);
    const config = readConfig(join(root, CONFIG_FILE));
    const registry = new Registry(config, new Layout(root), git, options.env, options.now ?? (() => new Date()));
    await registry.recoverAbandoned();
    return registry;
  }

  /**
   * A journal whose writer is dead means files on disk that no commit holds: recover before
   * anything is read, so no reader ever sees a version that was never registered.
   */
  private async recoverAbandoned(): Promise<void> {
    if (!existsSync(this.layout.journal) || isLockHeld(this.layout.lock)) return;
    let lock;
    try {
      lock = await this.lock();
    } catch (error) {
      if (error instanceof MaasError) throw error;
      return; // a read-only registry cannot be repaired by a reader; writers and verify will
    }
    this.recoveredAtOpen = lock.recovered;
    lock.release();
  }

  get root(): string {
    return this.layout.root;
  }

  modelNames(): string[] {
    if (!existsSync(this.layout.models)) return [];
    return readdirSync(this.layout.models, { withFileTypes: true })
      .filter((d) => d.isDirectory() && this.versions(d.name).length > 0)
      .map((d) => d.name)
      .sort();
  }

  versions(name: string): number[] {
    const dir = join(this.root, this.layout.modelDir(name));
    if (!existsSync(dir)) return [];
    return readdirSync(dir, { withFileTypes: true })
      .filter((d) => d.isDirectory() && /^[1-9][0-9]*$/.test(d.name) && existsSync(join(dir, d.name, 'manifest.json')))
      .map((d) => Number(d.name))
      .sort((a, b) => a - b);
  }

  aliases(name: string): Record<string, number> {
    const path = join(this.root, this.layout.aliases(name));
    if (!existsSync(path)) return {};
    try {
      return JSON.parse(readFileSync(path, 'utf8')) as Record<string, number>;
    } catch {
      throw new MaasError('MAAS_CONFIG_INVALID', `${path} is not valid JSON`, { hint: `Restore it with \`git checkout -- ${this.layout.aliases(name)}\`.` });
    }
  }

  readVersion(name: string, version: number): VersionRecord {
    const rel = `${this.layout.versionDir(name, version)}/manifest.json`;
    let bytes: Buffer;
    try {
      bytes = readFileSync(join(this.root, rel));
    } catch (error) {
      if (errnoCode(error) !== 'ENOENT') throw error;
      throw this.notFound({ name, selector: { kind: 'version', version } });
    }
    const { manifest, onnx } = parseManifest(bytes.toString('utf8'), rel);
    return { name, version, manifest, onnx, manifestBytes: bytes, manifestDigest: digestOf(bytes) };
  }

  configBytes(name: string, version: number): Buffer {
    return readFileSync(join(this.root, this.layout.versionDir(name, version), 'config.json'));
  }

  /** Turns a reference into a concrete version, or fails naming what exists. */
  resolve(ref: ModelRef): { name: string; version: number } {
    const versions = this.versions(ref.name);
    if (versions.length === 0) throw this.notFound(ref);
    const s = ref.selector;
    if (s.kind === 'latest') return { name: ref.name, version: versions[versions.length - 1]! };
    if (s.kind === 'version') {
      if (!versions.includes(s.version)) throw this.notFound(ref);
      return { name: ref.name, version: s.version };
    }
    const version = this.aliases(ref.name)[s.alias];
    if (version === undefined) throw this.notFound(ref);
    return { name: ref.name, version };
  }

  private notFound(ref: ModelRef): MaasError {
    const versions = this.versions(ref.name);
    if (versions.length === 0) {
      const known = this.modelNames();
      return new MaasError('MAAS_MODEL_NOT_FOUND', `no model named '${clipped(ref.name)}' in this registry`, {
        hint: known.length ? `Known models: ${known.join(', ')}. See \`maas list\`.` : 'The registry is empty; add a model with `maas register model.onnx`.',
      });
    }
    if (ref.selector.kind === 'alias') {
      const aliases = Object.keys(this.aliases(ref.name));
      return new MaasError('MAAS_ALIAS_NOT_FOUND', `${ref.name} has no alias '${ref.selector.alias}'`, {
        hint: aliases.length ? `Its aliases: ${aliases.join(', ')}.` : `Set one with \`maas tag ${ref.name}@${versions.at(-1)} ${ref.selector.alias}\`.`,
      });
    }
    const wanted = ref.selector.kind === 'version' ? ref.selector.version : 0;
    return new MaasError('MAAS_VERSION_NOT_FOUND', `${formatRef(ref.name, wanted)} does not exist`, {
      hint: `${ref.name} has versions ${versions.join(', ')}.`,
    });
  }

  /** Stages a new alias table for `name`. */
  stageAliases(tx: Transaction, name: string, aliases: Record<string, number>): void {
    const sorted = Object.fromEntries(Object.entries(aliases).sort(([a], [b]) => (a < b ? -1 : 1)));
    tx.write(this.layout.aliases(name), `${JSON.stringify(sorted, null, 2)}\n`);
  }

  history(): HistoryEntry[] {
    if (!existsSync(this.layout.history)) return [];
    return readFileSync(this.layout.history, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((line) => JSON.parse(line) as HistoryEntry);
  }

  /** Refuses to give a removed version's number to other bytes than it held. */
  assertNumberFree(name: string, version: number, digest: string | undefined, hint: string): void {
    const removed = this.removedVersions(name);
    if (removed.has(version) && removed.get(version) !== digest) {
      throw new MaasError('MAAS_VERSION_CONFLICT', `${formatRef(name, version)} was removed and held other bytes; version numbers are not reused`, { hint });
    }
  }

  /** Versions that were removed, with the digest they had: numbers are never reused for other bytes. */
  removedVersions(name: string): Map<number, string | undefined> {
    const removed = new Map<number, string | undefined>();
    for (const entry of this.history()) {
      if (entry.model !== name || entry.version === undefined) continue;
      if (entry.action === 'remove') removed.set(entry.version, entry.digest);
      if (entry.action === 'register' || entry.action === 'import') removed.delete(entry.version);
    }
    return removed;
  }

}
