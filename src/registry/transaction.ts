/**
 * Every change to a registry is a transaction: staged in memory, journaled, written atomically,
 * committed and tagged under the registry's lock. A writer killed at any point leaves a journal
 * that the next opener (a reader too) finishes or undoes before anything is read.
 */
import { randomUUID } from 'node:crypto';
import { closeSync, existsSync, fsyncSync, openSync, readFileSync, readdirSync, readlinkSync, rmSync, writeSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Env } from '../core/context.js';
import { MaasError } from '../core/errors.js';
import { removeDeadTemps, writeFileAtomic, writeJsonAtomic } from '../core/fs.js';
import type { Git } from './git.js';
import { HISTORY_FILE, type Layout } from './layout.js';
import { acquireLock } from './lock.js';

export interface HistoryEntry {
  at: string;
  /** `profile`: `maas bench` stored a latency profile (digest: the manifest's; machine: the fingerprint's id). `attest`: a signature, provenance or SBOM stored (digest: its own; kind). */
  action: 'register' | 'import' | 'tag' | 'untag' | 'remove' | 'profile' | 'attest';
  model: string;
  version?: number;
  alias?: string;
  digest?: string;
  previous?: number;
  machine?: string;
  kind?: string;
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

const GIT_LOCK_WAIT_MS = 10_000;
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

/** The lock files of branch refs (refs/heads/NAME.lock, NAME possibly with slashes): a commit moves one. */
function branchLocks(gitDir: string): string[] {
  const heads = join(gitDir, 'refs', 'heads');
  try {
    return readdirSync(heads, { recursive: true, encoding: 'utf8' })
      .filter((name) => name.endsWith('.lock'))
      .map((name) => join(heads, name));
  } catch {
    return [];
  }
}

/**
 * Appends to history.jsonl and syncs it. A torn append (a crash, a full disk) is never seen:
 * the journal names the file, so recovery puts back the committed one.
 */
function appendDurably(path: string, text: string): void {
  const fd = openSync(path, 'a');
  try {
    const bytes = Buffer.from(text);
    let done = 0;
    while (done < bytes.length) done += writeSync(fd, bytes, done);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** A registry's writes: the lock, transactions, and recovery of a dead writer's. */
export class Transactions {
  constructor(
    private readonly layout: Layout,
    private readonly git: Git,
    private readonly env: Env,
    private readonly now: () => Date,
  ) {}

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
          if (data === null) rmSync(join(this.layout.root, path), { recursive: true, force: true });
          else writeFileAtomic(join(this.layout.root, path), data);
        }
        if (tx.history.length) appendDurably(this.layout.history, tx.history.map((e) => `${JSON.stringify(e)}\n`).join(''));
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
    await this.waitForGitLocks(journal);
    for (const dir of new Set(journal.paths.map((path) => join(this.layout.root, dirname(path))))) removeDeadTemps(dir);
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
          rmSync(join(this.layout.root, path), { recursive: true, force: true });
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
      const full = join(this.layout.root, dir);
      if (!existsSync(full) || readdirSync(full).length > 0) return;
      rmSync(full, { recursive: true, force: true });
    }
  }

  /**
   * The journal's writer is dead (we hold its lock), so a git lock file (the index, HEAD, the
   * branch, a tag the journal moves) with no git running in this repository is the leftover of
   * a git killed with it: removed. A live git is waited for.
   */
  private async waitForGitLocks(journal: Journal): Promise<void> {
    const top = (await this.git.topLevel()) ?? this.layout.root;
    const gitDir = join(top, '.git');
    const refs = [...journal.createTags, ...journal.deleteTags].map((tag) => `refs/tags/${tag}`);
    const locks = ['index', 'HEAD', 'packed-refs', ...refs].map((ref) => join(gitDir, `${ref}.lock`)).concat(branchLocks(gitDir));
    const deadline = Date.now() + GIT_LOCK_WAIT_MS;
    for (let held = locks.filter(existsSync); held.length > 0; held = locks.filter(existsSync)) {
      if (liveGitIn(top) === false) {
        for (const lock of held) rmSync(lock, { force: true });
        return;
      }
      if (Date.now() > deadline) {
        throw new MaasError('MAAS_GIT_FAILED', `git's ${held[0]} has been held for ${GIT_LOCK_WAIT_MS / 1000}s`, {
          hint: 'If no git or maas process is running, delete that file and run `maas verify`.',
        });
      }
      await sleep(100);
    }
  }
}
