/**
 * Shared parts of the fault suite: seeded kill points, the built CLI killed at a chosen
 * moment (alone or with its whole process group), and the invariants every fault must keep.
 */
import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { expect } from 'vitest';
import type { TestRegistry } from '../helpers/registry.js';
import { BIN } from '../helpers/run-cli.js';
import { seededRandom } from '../../src/core/random.js';

/** MAAS_FAULT_SEED replays a failing run; the seed is in every test name. */
export const SEED = Number(process.env.MAAS_FAULT_SEED ?? 20261125);
/** Kill points per command; 20 is the floor the suite promises. */
export const POINTS = Math.max(20, Number(process.env.MAAS_FAULT_POINTS ?? 20));

export const git = (cwd: string, ...args: string[]) => execFileSync('git', args, { cwd, encoding: 'utf8' }).trim();

/** Runs `maas args` to the end; its wall time is the span kill points are drawn from. */
export async function timedRun(reg: TestRegistry, args: string[]): Promise<number> {
  const started = Date.now();
  const code = await new Promise<number | null>((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args], { cwd: reg.dir, env: reg.env, stdio: 'ignore' });
    child.on('close', resolve);
  });
  expect(code, `maas ${args.join(' ')}`).toBe(0);
  return Date.now() - started;
}

/**
 * Starts `maas args` and SIGKILLs it after `afterMs`: the process alone, or its whole group
 * (git children die with it, as on a Ctrl-C'd CI job or an OOM kill of the container).
 */
export async function killDuring(reg: TestRegistry, args: string[], afterMs: number, group: boolean): Promise<void> {
  const child = spawn(process.execPath, [BIN, ...args], { cwd: reg.dir, env: reg.env, stdio: 'ignore', detached: group });
  const closed = new Promise((resolve) => child.once('close', resolve));
  await sleep(afterMs);
  try {
    if (group) process.kill(-child.pid!, 'SIGKILL');
    else child.kill('SIGKILL');
  } catch {
    // it finished before the kill
  }
  await closed;
  if (group) await waitGroupGone(child.pid!);
}

/** A killed group's git children are reaped by init; wait until none is left. */
async function waitGroupGone(pgid: number): Promise<void> {
  for (let i = 0; i < 100; i++) {
    try {
      process.kill(-pgid, 0);
    } catch {
      return;
    }
    await sleep(20);
  }
}

/** Every version on disk is whole (manifest, config, blobs, git tag) and git agrees with the work tree. */
export function expectWholeRegistry(reg: TestRegistry): void {
  const tags = git(reg.dir, 'tag').split('\n').filter(Boolean);
  const models = join(reg.dir, 'models');
  let versions = 0;
  for (const name of existsSync(models) ? readdirSync(models) : []) {
    for (const v of readdirSync(join(models, name)).filter((d) => /^\d+$/.test(d))) {
      versions++;
      const manifest = JSON.parse(readFileSync(join(models, name, v, 'manifest.json'), 'utf8'));
      expect(existsSync(join(models, name, v, 'config.json'))).toBe(true);
      for (const layer of manifest.layers) expect(existsSync(join(reg.dir, 'blobs/sha256', layer.digest.slice(7))), `${name}@${v} ${layer.digest}`).toBe(true);
      expect(tags).toContain(`${name}@v${v}`);
    }
  }
  expect(tags.length).toBe(versions);
  expect(git(reg.dir, 'status', '--porcelain', '--untracked-files=all', '--', 'models', 'history.jsonl', 'maas.yaml')).toBe('');
  expect(existsSync(join(reg.dir, '.git/index.lock'))).toBe(false);
}

export const WEIGHTS = 4 << 20; // large enough that a run spends real time hashing and copying

export interface Scenario {
  /** the command for point `i`, after whatever state it needs is made. */
  prepare: (i: number) => Promise<string[]>;
  /** exit codes a retry may end with (rm of a version the killed run already removed: 4). */
  retryExits?: number[];
  /** what must hold once the retry is done. */
  check: (i: number) => Promise<void> | void;
}

/**
 * Times one full run of the scenario's command, then for each of POINTS seeded offsets over
 * that span: kill it there (odd points the process, even points its group), check `maas
 * verify` passes and only whole versions remain, retry the command, check its outcome.
 */
export async function exerciseKills(reg: TestRegistry, salt: number, scenario: Scenario): Promise<void> {
  const random = seededRandom(SEED + salt);
  const span = await timedRun(reg, await scenario.prepare(0));
  await scenario.check(0);
  for (let i = 1; i <= POINTS; i++) {
    const args = await scenario.prepare(i);
    const at = Math.round(random() * span);
    const group = i % 2 === 0;
    await killDuring(reg, args, at, group);
    const where = `point ${i}: killed ${group ? 'group' : 'process'} at ${at} of ${span} ms`;
    const verify = await reg.cli('verify', '--json');
    expect(verify.exitCode, `${where}\n${verify.stdout}${verify.stderr}`).toBe(0);
    expectWholeRegistry(reg);
    const retry = await reg.cli(...args);
    expect(scenario.retryExits ?? [0], `${where}: retry\n${retry.stderr}`).toContain(retry.exitCode);
    await scenario.check(i);
  }
  expectWholeRegistry(reg); // after each retry, checked at the next point's kill; the last one here
}

export const sha256 = (path: string) => `sha256:${createHash('sha256').update(readFileSync(path)).digest('hex')}`;
export const versionsOf = (reg: TestRegistry, name: string) => readdirSync(join(reg.dir, 'models', name)).filter((d) => /^\d+$/.test(d)).map(Number);
export const layerOf = (reg: TestRegistry, name: string, version: number) =>
  JSON.parse(readFileSync(join(reg.dir, 'models', name, String(version), 'manifest.json'), 'utf8')).layers[0].digest as string;

export async function registerQuietly(reg: TestRegistry, file: string, name: string): Promise<number> {
  const r = await reg.cli('register', file, '--name', name, '--json');
  expect(r.exitCode, r.stderr).toBe(0);
  return r.json().version;
}
