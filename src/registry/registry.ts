/**
 * An open registry: reads versions and aliases from the work tree, and makes every change
 * through `transact`, which journals, writes atomically, commits and tags under the lock.
 */
import { randomUUID } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, readlinkSync, rmSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Env } from '../core/context.js';
import { MaasError, errnoCode } from '../core/errors.js';
import { processAlive, tempWriter, writeFileAtomic, writeJsonAtomic } from '../core/fs.js';
import { readConfig, type RegistryConfig } from './config.js';
import { Git } from './git.js';
import { acquireLock, isLockHeld } from './lock.js';
import { CONFIG_FILE, HISTORY_FILE, Layout } from './layout.js';
import { type Manifest, type OnnxMetadata, digestOf, parseManifest } from './manifest.js';
import { type ModelRef, formatRef } from './refs.js';
import { BlobStore } from './store.js';

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

export interface HistoryEntry {
  at: string;
  action: 'register' | 'import' | 'tag' | 'untag' | 'remove';
  model: string;
  version?: number;
  alias?: string;
  digest?: string;
  previous?: number;
}

interface Journal {
  id: string;
  paths: string[];
  createTags: string[];
  deleteTags: string[];
}

export interface RecoveryReport {
  transaction: string;
  outcome: 'rolled-back' | 'completed';
  paths: string[];
}

/** Changes a transaction stages; nothing touches disk until the callback returns. */
export class Transaction {
  readonly writes = new Map<string, Buffer | null>();
  readonly history: HistoryEntry[] = [];
  readonly createTags: string[] = [];
  readonly deleteTags: string[] = [];
  readonly touched = new Set<string>();

  write(path: string, data: Buffer | string): void {
    this.writes.set(path, typeof data === 'string' ? Buffer.from(data) : data);
    this.touched.add(path);
  }
  remove(path: string): void {
    this.writes.set(path, null);
    this.touched.add(path);
  }
  record(entry: HistoryEntry): void {
    this.history.push(entry);
  }
  tag(name: string): void {
    this.createTags.push(name);
  }
  untag(name: string): void {
    this.deleteTags.push(name);
  }
}

const INDEX_LOCK_WAIT_MS = 10_000;
const TRAILER = 'Maas-Transaction';

/** Whether a git process runs in `top` (by its working folder); undefined where /proc cannot tell. */
function liveGitIn(top: string): boolean | undefined {
  let pids: string[];
  try {
    pids = readdirSync('/proc').filter((entry) => /^\d+$/.test(entry));
  } catch {
    return undefined;
  }
  for (const pid of pids) {
    try {
      if (readFileSync(`/proc/${pid}/comm`, 'utf8').trim() !== 'git') continue;
      const cwd = readlinkSync(`/proc/${pid}/cwd`);
      if (cwd === top || cwd.startsWith(`${top}/`)) return true;
    } catch {
      // gone meanwhile, or another user's process: a git of ours runs as us
    }
  }
  return false;
}

/** Removes the temporary files of atomic writes whose writer is dead (kill -9 between write and rename). */
function removeDeadTemps(dir: string): void {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return;
  }
  for (const name of names) {
    const writer = name.startsWith('.tmp-') ? tempWriter(name) : undefined;
    if (writer !== undefined && !processAlive(writer)) rmSync(join(dir, name), { force: true });
  }
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
  for (let dir = resolve(options.cwd); ; dir = dirname(dir)) {
    if (existsSync(join(dir, CONFIG_FILE))) return dir;
    if (dirname(dir) === dir) break;
  }
  throw new MaasError('MAAS_REGISTRY_NOT_FOUND', `no maas registry in ${options.cwd} or any folder above it`, {
    hint: 'Run `maas init` to create one here, or pass --registry DIR (or set MAAS_REGISTRY).',
  });
}

export class Registry {
  readonly layout: Layout;
  readonly store: BlobStore;
  /** the interrupted write that opening this registry finished or undid, if any. */
  recoveredAtOpen: RecoveryReport | undefined;

  private constructor(
    readonly config: RegistryConfig,
    layout: Layout,
    readonly git: Git,
    private readonly env: Env,
    readonly now: () => Date,
  ) {
    this.layout = layout;
    this.store = new BlobStore(layout);
  }

  static async open(options: RegistryOptions): Promise<Registry> {
    const root = findRegistryRoot(options);
    const config = readConfig(join(root, CONFIG_FILE));
    const registry = new Registry(config, new Layout(root), await Git.open(root, options.env), options.env, options.now ?? (() => new Date()));
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
      return new MaasError('MAAS_MODEL_NOT_FOUND', `no model named '${ref.name}' in this registry`, {
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

  async lock(): Promise<{ release(): void; recovered: RecoveryReport | undefined }> {
    const timeoutMs = Number(this.env.MAAS_LOCK_TIMEOUT_MS ?? 60_000);
    const lock = await acquireLock(this.layout.lock, { timeoutMs, now: this.now });
    try {
      return { release: () => lock.release(), recovered: await this.recover() };
    } catch (error) {
      lock.release();
      throw error;
    }
  }

  /** Runs `plan` under the lock; applies what it staged as one commit, or nothing. */
  async transact<T extends object>(message: string | ((result: T) => string), plan: (tx: Transaction) => Promise<T>): Promise<T & { commit?: string }> {
    const lock = await this.lock();
    try {
      const tx = new Transaction();
      const result = await plan(tx);
      if (tx.touched.size === 0 && tx.createTags.length === 0 && tx.deleteTags.length === 0) return result;
      const id = randomUUID();
      if (tx.history.length) tx.touched.add(HISTORY_FILE);
      const journal: Journal = { id, paths: [...tx.touched], createTags: tx.createTags, deleteTags: tx.deleteTags };
      writeJsonAtomic(this.layout.journal, journal);
      try {
        for (const [path, data] of tx.writes) {
          if (data === null) rmSync(join(this.root, path), { recursive: true, force: true });
          else writeFileAtomic(join(this.root, path), data);
        }
        if (tx.history.length) {
          const previous = existsSync(this.layout.history) ? readFileSync(this.layout.history, 'utf8') : '';
          writeFileAtomic(this.layout.history, previous + tx.history.map((e) => `${JSON.stringify(e)}\n`).join(''));
        }
        const subject = typeof message === 'string' ? message : message(result);
        const commit = await this.git.commit(journal.paths, `${subject}\n\n${TRAILER}: ${id}`);
        await this.applyTags(journal);
        rmSync(this.layout.journal, { force: true });
        return { ...result, commit };
      } catch (error) {
        // A failed write (full disk, I/O error) is finished or undone now, as a crash would be later.
        await this.recover().catch(() => undefined);
        throw error;
      }
    } finally {
      lock.release();
    }
  }

  /** Idempotent, so a recovery can replay it after a crash halfway through. */
  private async applyTags(journal: Journal): Promise<void> {
    const existing = await this.git.tags('*');
    const head = await this.git.headCommit();
    for (const tag of journal.deleteTags) if (existing.has(tag)) await this.git.deleteTag(tag);
    for (const tag of journal.createTags) if (existing.get(tag)?.commit !== head) await this.git.createTag(tag);
  }

  /**
   * Finishes or undoes a write that was interrupted (kill -9, power loss): if its commit
   * landed, the tags are brought in line; otherwise every path it touched goes back to HEAD.
   * Must run under the lock.
   */
  private async recover(): Promise<RecoveryReport | undefined> {
    if (!existsSync(this.layout.journal)) return undefined;
    let journal: Journal;
    try {
      journal = JSON.parse(readFileSync(this.layout.journal, 'utf8')) as Journal;
    } catch {
      rmSync(this.layout.journal, { force: true }); // written by rename, so a torn journal means no write began
      return undefined;
    }
    await this.waitForGitIndex();
    for (const dir of new Set(journal.paths.map((path) => join(this.root, dirname(path))))) removeDeadTemps(dir);
    const landed = (await this.git.headMessage()).includes(`${TRAILER}: ${journal.id}`);
    if (landed) {
      // git may have died after moving HEAD but before writing its new index.
      await this.git.resetIndex(journal.paths);
      await this.applyTags(journal);
    } else {
      for (const path of journal.paths) {
        if (await this.git.inHead(path)) {
          await this.git.restore([path]);
        } else {
          await this.git.unstage([path]);
          rmSync(join(this.root, path), { recursive: true, force: true });
          this.pruneEmptyParents(path);
        }
      }
    }
    rmSync(this.layout.journal, { force: true });
    return { transaction: journal.id, outcome: landed ? 'completed' : 'rolled-back', paths: journal.paths };
  }

  /** Removes folders left empty by a rollback, up to (not including) the registry root. */
  private pruneEmptyParents(path: string): void {
    for (let dir = dirname(path); dir !== '.' && dir !== ''; dir = dirname(dir)) {
      const full = join(this.root, dir);
      if (!existsSync(full) || readdirSync(full).length > 0) return;
      rmSync(full, { recursive: true, force: true });
    }
  }

  /**
   * The journal's writer is dead (we hold its lock), so an index.lock with no git running in
   * this repository is the leftover of a git killed with it: removed. A live git is waited for.
   */
  private async waitForGitIndex(): Promise<void> {
    const top = (await this.git.topLevel()) ?? this.root;
    const indexLock = join(top, '.git', 'index.lock');
    const deadline = Date.now() + INDEX_LOCK_WAIT_MS;
    while (existsSync(indexLock)) {
      if (liveGitIn(top) === false) {
        rmSync(indexLock, { force: true });
        return;
      }
      if (Date.now() > deadline) {
        throw new MaasError('MAAS_GIT_FAILED', `git's ${indexLock} has been held for ${INDEX_LOCK_WAIT_MS / 1000}s`, {
          hint: 'If no git or maas process is running, delete that file and run `maas verify`.',
        });
      }
      await sleep(100);
    }
  }
}
