/**
 * Interrupted writes, staged deterministically: the state a writer leaves when it dies at a
 * given step (journal written, files half-written, commit landed without its tag).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { appendFileSync, copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { makeRegistry, type TestRegistry } from '../helpers/registry.js';

const git = (cwd: string, ...args: string[]) => execFileSync('git', args, { cwd, encoding: 'utf8' }).trim();

/** A lock left by a writer that no longer runs. */
function leaveDeadLock(reg: TestRegistry): void {
  const dead = spawnSync(process.execPath, ['-e', '0']).pid!;
  writeFileSync(join(reg.dir, '.maas/lock'), JSON.stringify({ pid: dead, host: hostname(), since: new Date().toISOString() }));
}

describe('recovery of interrupted writes', () => {
  it('rolls back a register that died before its commit', async () => {
    const reg = await makeRegistry();
    await reg.cli('register', reg.fixture('mlp.onnx'));
    const history = readFileSync(join(reg.dir, 'history.jsonl'), 'utf8');
    // The dead writer had journaled, written version 2's manifest and appended history.
    mkdirSync(join(reg.dir, 'models/mlp/2'));
    copyFileSync(join(reg.dir, 'models/mlp/1/manifest.json'), join(reg.dir, 'models/mlp/2/manifest.json'));
    appendFileSync(join(reg.dir, 'history.jsonl'), '{"action":"register","model":"mlp","version":2}\n');
    git(reg.dir, 'add', 'models/mlp/2');
    writeFileSync(join(reg.dir, '.maas/txn.json'), JSON.stringify({
      id: 'dead-writer', paths: ['models/mlp/2/config.json', 'models/mlp/2/manifest.json', 'history.jsonl'], createTags: ['mlp@v2'], deleteTags: [],
    }));
    leaveDeadLock(reg);

    const r = await reg.cli('verify', '--json');
    expect(r.exitCode, r.stdout).toBe(0);
    expect(r.json().recovered).toMatchObject({ outcome: 'rolled-back' });
    expect(existsSync(join(reg.dir, 'models/mlp/2'))).toBe(false);
    expect(readFileSync(join(reg.dir, 'history.jsonl'), 'utf8')).toBe(history);
    expect(git(reg.dir, 'status', '--porcelain')).toBe('');
    expect(existsSync(join(reg.dir, '.maas/txn.json'))).toBe(false);
    const next = await reg.cli('register', reg.fixture('multi_io.onnx'), '--name', 'mlp', '--json');
    expect(next.json().version).toBe(2);
  });

  it('completes a register whose commit landed before its tag', async () => {
    const reg = await makeRegistry();
    await reg.cli('register', reg.fixture('mlp.onnx'));
    const id = /Maas-Transaction: (\S+)/.exec(git(reg.dir, 'log', '-1', '--format=%B'))![1];
    git(reg.dir, 'tag', '-d', 'mlp@v1');
    writeFileSync(join(reg.dir, '.maas/txn.json'), JSON.stringify({ id, paths: ['models/mlp/1/manifest.json'], createTags: ['mlp@v1'], deleteTags: [] }));
    leaveDeadLock(reg);

    const r = await reg.cli('verify');
    expect(r.exitCode, r.stdout).toBe(0);
    expect(r.stdout).toContain('An interrupted write was completed');
    expect(git(reg.dir, 'rev-parse', 'mlp@v1')).toBe(git(reg.dir, 'rev-parse', 'HEAD'));
  });

  it('waits for a live writer, then names it when the wait runs out (exit 6)', async () => {
    const reg = await makeRegistry();
    mkdirSync(join(reg.dir, '.maas'));
    writeFileSync(join(reg.dir, '.maas/lock'), JSON.stringify({ pid: process.pid, host: hostname(), since: 'now' }));
    const { runCli } = await import('../helpers/run-cli.js');
    const r = await runCli(['register', reg.fixture('mlp.onnx')], { cwd: reg.dir, env: { ...reg.env, MAAS_LOCK_TIMEOUT_MS: '300' } });
    expect(r.exitCode).toBe(6);
    expect(r.stderr).toContain(`another maas process (pid ${process.pid}`);
    expect(r.stderr).toContain('MAAS_LOCK_TIMEOUT_MS');
  });

  /** What a register killed with its process group inside `git commit` leaves: files, journal, index.lock. */
  async function killedInsideCommit(reg: TestRegistry): Promise<void> {
    await reg.cli('register', reg.fixture('mlp.onnx'));
    mkdirSync(join(reg.dir, 'models/mlp/2'));
    copyFileSync(join(reg.dir, 'models/mlp/1/manifest.json'), join(reg.dir, 'models/mlp/2/manifest.json'));
    copyFileSync(join(reg.dir, 'models/mlp/1/config.json'), join(reg.dir, 'models/mlp/2/config.json'));
    appendFileSync(join(reg.dir, 'history.jsonl'), '{"action":"register","model":"mlp","version":2}\n');
    git(reg.dir, 'add', 'models/mlp/2');
    writeFileSync(join(reg.dir, '.maas/txn.json'), JSON.stringify({
      id: 'killed-in-commit', paths: ['models/mlp/2/config.json', 'models/mlp/2/manifest.json', 'history.jsonl'], createTags: ['mlp@v2'], deleteTags: [],
    }));
    copyFileSync(join(reg.dir, '.git/index'), join(reg.dir, '.git/index.lock'));
    leaveDeadLock(reg);
  }

  it('removes the index.lock of a git killed with its dead writer, then rolls back (verify exit 0)', async () => {
    const reg = await makeRegistry();
    await killedInsideCommit(reg);
    const started = Date.now();
    const r = await reg.cli('verify', '--json');
    expect(r.exitCode, r.stdout + r.stderr).toBe(0);
    expect(Date.now() - started).toBeLessThan(8000); // no wait for a git that will never finish
    expect(r.json().recovered).toMatchObject({ outcome: 'rolled-back' });
    expect(existsSync(join(reg.dir, '.git/index.lock'))).toBe(false);
    expect(git(reg.dir, 'status', '--porcelain')).toBe('');
  });

  it('list and show never show a version a dead writer wrote but never committed', async () => {
    const reg = await makeRegistry();
    await killedInsideCommit(reg);
    const list = await reg.cli('list', '--json');
    expect(list.exitCode, list.stderr).toBe(0);
    expect(list.json().models[0].versions.map((v: { version: number }) => v.version)).toEqual([1]);
    const show = await reg.cli('show', 'mlp@2');
    expect(show.exitCode).toBe(4);
    expect(existsSync(join(reg.dir, 'models/mlp/2'))).toBe(false);
  });

  it('completes a register whose git tag was killed holding its ref lock and the branch lock', async () => {
    const reg = await makeRegistry();
    await reg.cli('register', reg.fixture('mlp.onnx'));
    const id = /Maas-Transaction: (\S+)/.exec(git(reg.dir, 'log', '-1', '--format=%B'))![1];
    const branch = git(reg.dir, 'symbolic-ref', '--short', 'HEAD');
    git(reg.dir, 'tag', '-d', 'mlp@v1');
    writeFileSync(join(reg.dir, '.git/refs/tags/mlp@v1.lock'), '');
    writeFileSync(join(reg.dir, `.git/refs/heads/${branch}.lock`), '');
    writeFileSync(join(reg.dir, '.maas/txn.json'), JSON.stringify({ id, paths: ['models/mlp/1/manifest.json'], createTags: ['mlp@v1'], deleteTags: [] }));
    leaveDeadLock(reg);

    const r = await reg.cli('verify', '--json');
    expect(r.exitCode, r.stdout + r.stderr).toBe(0);
    expect(r.json().recovered).toMatchObject({ outcome: 'completed' });
    expect(git(reg.dir, 'rev-parse', 'mlp@v1')).toBe(git(reg.dir, 'rev-parse', 'HEAD'));
    expect(existsSync(join(reg.dir, '.git/refs/tags/mlp@v1.lock'))).toBe(false);
    expect(existsSync(join(reg.dir, `.git/refs/heads/${branch}.lock`))).toBe(false);
  });

  it('completes a commit that moved HEAD before git wrote its index, and leaves the index matching HEAD', async () => {
    const reg = await makeRegistry();
    await reg.cli('register', reg.fixture('mlp.onnx'));
    await reg.cli('register', reg.fixture('multi_io.onnx'), '--name', 'mlp');
    const id = /Maas-Transaction: (\S+)/.exec(git(reg.dir, 'log', '-1', '--format=%B'))![1];
    git(reg.dir, 'tag', '-d', 'mlp@v2');
    git(reg.dir, 'read-tree', 'HEAD~1'); // the index as it was before the commit
    copyFileSync(join(reg.dir, '.git/index'), join(reg.dir, '.git/index.lock'));
    writeFileSync(join(reg.dir, '.maas/txn.json'), JSON.stringify({ id, paths: ['models/mlp/2/config.json', 'models/mlp/2/manifest.json', 'history.jsonl'], createTags: ['mlp@v2'], deleteTags: [] }));
    leaveDeadLock(reg);

    const r = await reg.cli('verify', '--json');
    expect(r.exitCode, r.stdout + r.stderr).toBe(0);
    expect(r.json().recovered).toMatchObject({ outcome: 'completed' });
    expect(git(reg.dir, 'status', '--porcelain')).toBe('');
    expect(git(reg.dir, 'rev-parse', 'mlp@v2')).toBe(git(reg.dir, 'rev-parse', 'HEAD'));
  });
});
