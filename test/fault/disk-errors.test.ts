/**
 * A full or failing disk at every write: the built CLI runs under a preload that fails its
 * Nth write (open-for-write, write, fsync, rename, copy), for every N a whole run makes,
 * alternately with ENOSPC and EIO. Each failure is a message, never a crash; the registry
 * keeps only whole versions, `maas verify` passes, and a retry completes.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { mlp, writeModel } from '../../fixtures/models.js';
import { makeRegistry, type TestRegistry } from '../helpers/registry.js';
import { spawnCli } from '../helpers/run-cli.js';
import { expectWholeRegistry } from './harness.js';

const PRELOAD = fileURLToPath(new URL('./fs-fault.mjs', import.meta.url));

function faulty(reg: TestRegistry, args: string[], failAt: number, countFile?: string) {
  const env = { ...reg.env, MAAS_FAULT_AT: String(failAt), MAAS_FAULT_ERRNO: failAt % 2 ? 'ENOSPC' : 'EIO', ...(countFile ? { MAAS_FAULT_COUNT_FILE: countFile } : {}) };
  return spawnCli(args, { cwd: reg.dir, env, nodeArgs: ['--import', PRELOAD] });
}

/** Runs `args(n)` once to count its writes, then once failing at each write N = 1..total. */
async function everyWrite(reg: TestRegistry, args: (n: number) => Promise<string[]>, check: (n: number) => void): Promise<number> {
  const countFile = join(reg.work, 'writes');
  const clean = await faulty(reg, await args(0), 0, countFile);
  expect(clean.exitCode, clean.stderr).toBe(0);
  const total = Number(readFileSync(countFile, 'utf8'));
  expect(total).toBeGreaterThan(5);
  for (let n = 1; n <= total; n++) {
    const run = await faulty(reg, await args(n), n);
    const where = `write ${n} of ${total}`;
    const said = run.stdout + run.stderr;
    expect(said, where).not.toContain('this is a bug');
    if (run.exitCode !== 0) expect(said, where).toMatch(/the disk (is full|failed a write)/);
    const verify = await reg.cli('verify', '--json');
    expect(verify.exitCode, `${where}\n${verify.stdout}`).toBe(0);
    expectWholeRegistry(reg);
    const retry = await reg.cli(...(await args(n)));
    expect(retry.exitCode, `${where}: retry\n${retry.stderr}`).toBe(0);
    check(n);
  }
  return total;
}

const layers = (reg: TestRegistry, name: string) =>
  readdirSync(join(reg.dir, 'models', name)).filter((d) => /^\d+$/.test(d))
    .map((v) => JSON.parse(readFileSync(join(reg.dir, 'models', name, v, 'manifest.json'), 'utf8')).layers[0].digest as string);

describe('ENOSPC / EIO at every write', { timeout: 240_000 }, () => {
  it('register: each model is registered whole exactly once, or not at all until the retry', async () => {
    const reg = await makeRegistry();
    const files: string[] = [];
    const model = async (n: number) => {
      files[n] ??= writeModel(reg.work, `m${n}.onnx`, mlp({ seed: n + 1 }));
      return ['register', files[n]!, '--name', 'm', '--json'];
    };
    await everyWrite(reg, model, (n) => {
      const now = layers(reg, 'm');
      expect(now).toHaveLength(n + 1);
      expect(new Set(now).size).toBe(now.length);
    });
  });

  it('tag: every alias move lands whole once', async () => {
    const reg = await makeRegistry();
    for (const seed of [1, 2]) expect((await reg.cli('register', writeModel(reg.work, `t${seed}.onnx`, mlp({ seed })), '--name', 't')).exitCode).toBe(0);
    const target = (n: number) => (n % 2 === 0 ? 1 : 2);
    await everyWrite(reg, async (n) => ['tag', `t@${target(n)}`, 'prod'], (n) => {
      expect(JSON.parse(readFileSync(join(reg.dir, 'models/t/aliases.json'), 'utf8'))).toEqual({ prod: target(n) });
      const moves = readFileSync(join(reg.dir, 'history.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l)).filter((e) => e.action === 'tag');
      expect(moves).toHaveLength(n + 1);
    });
  });
});

describe('a read-only file system (EROFS at every write)', () => {
  it('reads the registry as it is (list, show, verify, gc --dry-run); a write is a config error (exit 3)', async () => {
    const reg = await makeRegistry();
    expect((await reg.cli('register', writeModel(reg.work, 'ro.onnx', mlp({ seed: 3 })), '--name', 'ro')).exitCode).toBe(0);
    const readOnly = (...args: string[]) => spawnCli(args, { cwd: reg.dir, env: { ...reg.env, MAAS_FAULT_AT: 'all', MAAS_FAULT_ERRNO: 'EROFS' }, nodeArgs: ['--import', PRELOAD] });
    for (const args of [['list'], ['show', 'ro@1'], ['verify'], ['gc', '--dry-run']]) {
      const r = await readOnly(...args);
      expect(r.exitCode, `${args.join(' ')}: ${r.stderr}`).toBe(0);
    }
    const verify = await readOnly('verify', '--json');
    expect(JSON.parse(verify.stdout)).toMatchObject({ ok: true, readOnly: true, versions: 1 });
    expect((await readOnly('verify')).stdout).toContain('the registry is not writable here');
    expect(JSON.parse((await readOnly('gc', '--dry-run', '--json')).stdout)).toMatchObject({ dryRun: true, readOnly: true, removed: [] });
    for (const args of [['tag', 'ro@1', 'prod'], ['gc']]) {
      const r = await readOnly(...args, '--json');
      expect(r.exitCode, args.join(' ')).toBe(3);
      expect(JSON.parse(r.stdout).error).toMatchObject({ code: 'MAAS_CONFIG_INVALID', message: expect.stringContaining('the file system is read-only'), hint: expect.stringContaining('verify, gc --dry-run') });
    }
    expect((await reg.cli('verify')).exitCode).toBe(0);
  });
});
