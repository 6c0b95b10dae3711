/**
 * Real processes against one registry: concurrent writers and a 1 GB model registered in flat
 * memory. Writers killed at any point: test/fault/.
 */
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { largeMatmul, mlp, writeModel } from '../../fixtures/models.js';
import { makeRegistry, type TestRegistry } from '../helpers/registry.js';
import { BIN, spawnCli } from '../helpers/run-cli.js';

const git = (cwd: string, ...args: string[]) => execFileSync('git', args, { cwd, encoding: 'utf8' }).trim();

/** Every version on disk is whole: manifest, config, blobs and git tag; nothing is half-there. */
function expectWholeVersions(reg: TestRegistry, name: string): number[] {
  const dir = join(reg.dir, 'models', name);
  const versions = existsSync(dir) ? readdirSync(dir).filter((d) => /^\d+$/.test(d)).map(Number).sort((a, b) => a - b) : [];
  const tags = git(reg.dir, 'tag').split('\n').filter(Boolean);
  for (const v of versions) {
    const manifest = JSON.parse(readFileSync(join(dir, String(v), 'manifest.json'), 'utf8'));
    expect(existsSync(join(dir, String(v), 'config.json'))).toBe(true);
    for (const layer of manifest.layers) expect(existsSync(join(reg.dir, 'blobs/sha256', layer.digest.slice(7)))).toBe(true);
    expect(tags).toContain(`${name}@v${v}`);
  }
  expect(tags.filter((t) => t.startsWith(`${name}@v`)).length).toBe(versions.length);
  expect(git(reg.dir, 'status', '--porcelain', '--', 'models', 'history.jsonl')).toBe('');
  return versions;
}

describe('durability', () => {
  it('serialises concurrent registers from separate processes', async () => {
    const reg = await makeRegistry();
    const files = [1, 2, 3].map((seed) => writeModel(reg.work, `m${seed}.onnx`, mlp({ seed: seed * 11 })));
    const runs = await Promise.all(files.map((f) => spawnCli(['register', f, '--name', 'mlp', '--json'], { cwd: reg.dir, env: reg.env })));
    for (const r of runs) expect(r.exitCode, r.stderr).toBe(0);
    expect(runs.map((r) => r.json().version).sort()).toEqual([1, 2, 3]);
    expect(expectWholeVersions(reg, 'mlp')).toEqual([1, 2, 3]);
    expect(git(reg.dir, 'log', '--format=%s').split('\n').filter((s) => s.startsWith('register'))).toHaveLength(3);
    const verify = await spawnCli(['verify'], { cwd: reg.dir, env: reg.env });
    expect(verify.exitCode, verify.stdout).toBe(0);
  });

  it('registers a 1 GB model with the CLI process under 300 MB resident', async () => {
    const reg = await makeRegistry();
    const file = writeModel(reg.work, 'large.onnx', largeMatmul(1 << 30));
    const cli = pathToFileURL(join(BIN, '../../dist/cli.js')).href;
    const wrapper = join(import.meta.dirname, '../helpers/rss-run.mjs');
    const child = spawn(process.execPath, [wrapper, cli, 'register', file, '--json'], { cwd: reg.dir, env: reg.env });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const code = await new Promise((resolve) => child.once('close', resolve));
    expect(code, stderr).toBe(0);
    const result = JSON.parse(stdout);
    expect(result.size).toBeGreaterThan(1 << 30);
    const maxRssMb = Number(/MAXRSS_KB=(\d+)/.exec(stderr)![1]) / 1024;
    expect(maxRssMb).toBeLessThan(300);
    const verify = await spawnCli(['verify', '--json'], { cwd: reg.dir, env: reg.env });
    expect(verify.json()).toMatchObject({ ok: true, bytes: result.size });
  }, 180_000);
});
