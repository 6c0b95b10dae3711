/** File writes that never leave a half-written file behind: temp file, fsync, rename. */
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, fsyncSync, lstatSync, mkdirSync, mkdtempSync, openSync, readFileSync, readdirSync, renameSync, rmSync, rmdirSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { MaasError, errnoCode, messageOf } from './errors.js';

export function tempName(dir: string, prefix = '.tmp'): string {
  return join(dir, `${prefix}-${process.pid}-${randomBytes(6).toString('hex')}`);
}

/** The pid of the process that made a `tempName` file, from its name. */
export function tempWriter(name: string): number | undefined {
  const match = /-(\d+)-[0-9a-f]{12}$/.exec(name);
  return match ? Number(match[1]) : undefined;
}

/** Whether a process of this host is running (EPERM: it runs, as another user). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Removes the temporary files of atomic writes (`tempName`) in `dir` whose writer is dead: kill -9 between write and rename. */
export function removeDeadTemps(dir: string): void {
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

/** Writes through a temporary file and a rename, so readers see the old bytes or the new, never half. `mode` for secrets (0o600). */
export function writeFileAtomic(path: string, data: string | Buffer, options: { mode?: number } = {}): void {
  makeFolders(dirname(path));
  const temp = tempName(dirname(path));
  try {
    const fd = openSync(temp, 'w', options.mode ?? 0o666);
    try {
      const bytes = typeof data === 'string' ? Buffer.from(data) : data;
      let done = 0;
      while (done < bytes.length) done += writeSync(fd, bytes, done);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(temp, path);
  } catch (error) {
    rmSync(temp, { force: true });
    throw error;
  }
}

/** `mkdir -p`, a level at a time: node's recursive mkdir never returns for a path under /proc. */
export function makeFolders(dir: string): void {
  const missing: string[] = [];
  for (let at = dir; !existsSync(at) && dirname(at) !== at; at = dirname(at)) missing.unshift(at);
  for (const at of missing) {
    try {
      mkdirSync(at);
    } catch (error) {
      if (errnoCode(error) !== 'EEXIST') throw error;
    }
  }
}

export function writeJsonAtomic(path: string, value: unknown): void {
  writeFileAtomic(path, `${JSON.stringify(value, null, 2)}\n`);
}

/** What is at a path the user named for maas to write, or undefined; a path through a file is their mistake, said so. */
function outputStat(path: string) {
  try {
    return lstatSync(path, { throwIfNoEntry: false });
  } catch (error) {
    if (errnoCode(error) === 'ENOTDIR') throw new MaasError('MAAS_USAGE', `${path} goes through a file, not a folder`, { hint: 'Pick a path whose folders are folders.' });
    throw error;
  }
}

/** Refuses, before any work, a path maas could not write a file at: a folder, or a path through a file. */
export function checkOutputFile(path: string): void {
  if (outputStat(path)?.isDirectory()) throw new MaasError('MAAS_USAGE', `${path} is a folder`, { hint: 'Name a file to write, inside it or elsewhere.' });
}

/** Refuses `dir` unless it is absent or an empty folder (before any work, where a command can); whether it exists. */
export function checkNewFolder(dir: string): boolean {
  const existing = outputStat(dir);
  if (existing && (!existing.isDirectory() || readdirSync(dir).length > 0)) {
    throw new MaasError('MAAS_USAGE', `${dir} exists and is not an empty folder`, { hint: 'Pick a new folder; maas never writes over files it did not make.' });
  }
  return existing !== undefined;
}

/**
 * A file the user named (-o): written atomically, over an older file of that name, but never
 * over a folder, and with the reason and the fix when the place cannot be written.
 */
export function writeOutputFile(path: string, data: string | Buffer, options: { mode?: number } = {}): void {
  checkOutputFile(path);
  writingTo(path, () => writeFileAtomic(path, data, options));
}

/** Runs a write to a place the user named; the file system's refusals become their reason and fix. */
export function writingTo<T>(path: string, write: () => T): T {
  try {
    return write();
  } catch (error) {
    const code = errnoCode(error);
    if (code === 'EACCES' || code === 'EPERM' || code === 'EROFS' || code === 'ENOTDIR' || code === 'ENOSPC' || code === 'ENOENT') {
      throw new MaasError('MAAS_USAGE', `cannot write ${path}: ${messageOf(error)}`, { hint: 'Pick a place you can write to.', cause: error });
    }
    throw error;
  }
}

/**
 * Fills the new folder `dir` through a sibling staging folder that is renamed into place last, so
 * `dir` holds everything `fill` wrote or nothing. An existing `dir` must be empty: maas never
 * writes over files it did not make.
 */
export function writeNewFolder<T>(dir: string, fill: (staging: string) => T): T {
  const existing = checkNewFolder(dir);
  const staging = writingTo(dir, () => {
    makeFolders(dirname(dir));
    return mkdtempSync(join(dirname(dir), `.${basename(dir)}.tmp-`));
  });
  try {
    const result = fill(staging);
    if (existing) rmdirSync(dir);
    renameSync(staging, dir);
    return result;
  } catch (error) {
    rmSync(staging, { recursive: true, force: true });
    throw error;
  }
}

/** A file the user named with `flag`: its bytes, or why it cannot be read and what to do. */
export function readUserFile(path: string, flag: string): Buffer {
  try {
    return readFileSync(path);
  } catch (error) {
    const code = errnoCode(error);
    if (code === 'ENOENT' || code === 'ENOTDIR') throw new MaasError('MAAS_FILE_NOT_FOUND', `${flag} ${path} does not exist`, { hint: 'Check the path.' });
    if (code === 'EISDIR') throw new MaasError('MAAS_USAGE', `${flag} ${path} is a folder`, { hint: 'Name a file.' });
    if (code === 'EACCES' || code === 'EPERM') throw new MaasError('MAAS_USAGE', `${flag} ${path} cannot be read: ${messageOf(error)}`, { hint: 'Check its permissions.' });
    throw error;
  }
}

/** Temporary folders and staged files in use, removed by `removeTempFolders` when the process is interrupted. */
const tempFolders = new Set<string>();

/**
 * A staged file (a blob being copied or fetched into a registry) that Ctrl-C removes, as it
 * removes temporary folders. Forget it once it is renamed into place or removed.
 */
export function trackStagedFile(path: string): void {
  tempFolders.add(path);
}

export function forgetStagedFile(path: string): void {
  tempFolders.delete(path);
}

/** A new folder under the system's temporary folder, removed on Ctrl-C as well as by `removeTempFolder`. */
export function makeTempFolder(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  tempFolders.add(dir);
  return dir;
}

/**
 * A new folder under `parent` named for this process (`PREFIX-PID-HEX`), removed on Ctrl-C as
 * well as by `removeTempFolder`. Under a registry's staging folder, one a killed process left is
 * found by `maas verify` and removed by `maas gc`, as its staged files are.
 */
export function makeStagingFolder(parent: string, prefix: string): string {
  makeFolders(parent);
  const dir = tempName(parent, prefix);
  mkdirSync(dir);
  tempFolders.add(dir);
  return dir;
}

export function removeTempFolder(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
  tempFolders.delete(dir);
}

/** What an interrupted command leaves in the temporary folder: nothing. */
export function removeTempFolders(): void {
  for (const dir of tempFolders) removeTempFolder(dir);
}
