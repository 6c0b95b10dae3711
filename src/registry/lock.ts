/**
 * One writer at a time. The lock is a file created with O_EXCL holding the owner's pid;
 * a lock whose owner is gone (kill -9) is taken over, so a crash never wedges the registry.
 */
import { hostname } from 'node:os';
import { closeSync, openSync, readFileSync, renameSync, rmSync, statSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { MaasError, errnoCode } from '../core/errors.js';
import { makeFolders, processAlive } from '../core/fs.js';

const EMPTY_LOCK_GRACE_MS = 5000;

interface LockOwner {
  pid: number;
  host: string;
  since: string;
}

export interface LockOptions {
  /** how long to wait for another writer before giving up. */
  timeoutMs: number;
  now: () => Date;
}

function readOwner(path: string): LockOwner | undefined {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as LockOwner;
  } catch {
    return undefined;
  }
}

function isAlive(owner: LockOwner): boolean {
  if (owner.host !== hostname()) return true; // cannot tell; assume a live writer elsewhere
  return processAlive(owner.pid);
}

function tryCreate(path: string, owner: LockOwner): boolean {
  let fd: number;
  try {
    fd = openSync(path, 'wx');
  } catch (error) {
    if (errnoCode(error) === 'EEXIST') return false;
    throw error;
  }
  try {
    writeSync(fd, JSON.stringify(owner));
  } finally {
    closeSync(fd);
  }
  return true;
}

/** A lock file without an owner: its writer died between creating and filling it. */
function isAbandonedEmpty(path: string): boolean {
  try {
    return Date.now() - statSync(path).mtimeMs > EMPTY_LOCK_GRACE_MS;
  } catch {
    return false;
  }
}

/** Moves a dead owner's lock aside; puts it back if a live writer took it in between. */
function breakStale(path: string, stale: LockOwner | undefined): void {
  const aside = `${path}.stale-${process.pid}`;
  try {
    renameSync(path, aside);
  } catch {
    return;
  }
  const moved = readOwner(aside);
  if (moved && (moved.pid !== stale?.pid || moved.since !== stale.since)) {
    try {
      renameSync(aside, path);
    } catch {
      /* the live owner's lock is gone already */
    }
    return;
  }
  rmSync(aside, { force: true });
}

/** Whether a live process holds the lock at `path` (an empty lock counts as held while young). */
export function isLockHeld(path: string): boolean {
  const owner = readOwner(path);
  if (owner) return isAlive(owner);
  try {
    statSync(path);
  } catch {
    return false;
  }
  return !isAbandonedEmpty(path);
}

export interface Lock {
  /** set when the previous owner died holding the lock. */
  readonly tookOverFrom: LockOwner | undefined;
  release(): void;
}

export async function acquireLock(path: string, { timeoutMs, now }: LockOptions): Promise<Lock> {
  makeFolders(dirname(path));
  const me: LockOwner = { pid: process.pid, host: hostname(), since: now().toISOString() };
  const deadline = Date.now() + timeoutMs;
  let tookOverFrom: LockOwner | undefined;
  for (let attempt = 0; ; attempt++) {
    if (tryCreate(path, me)) {
      return {
        tookOverFrom,
        release: () => {
          const owner = readOwner(path);
          if (owner?.pid === me.pid && owner.since === me.since) rmSync(path, { force: true });
        },
      };
    }
    const owner = readOwner(path);
    if (owner ? !isAlive(owner) : isAbandonedEmpty(path)) {
      tookOverFrom = owner;
      breakStale(path, owner);
      continue;
    }
    if (Date.now() >= deadline) {
      throw new MaasError('MAAS_REGISTRY_LOCKED', `another maas process${owner ? ` (pid ${owner.pid}, since ${owner.since})` : ''} is writing to this registry`, {
        hint: `Wait for it to finish, or raise MAAS_LOCK_TIMEOUT_MS. If no maas is running, delete ${path}.`,
      });
    }
    await sleep(Math.min(25 * 2 ** Math.min(attempt, 4), 400));
  }
}
