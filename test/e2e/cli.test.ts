import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { constantWeights, writeModel } from '../../fixtures/models.js';
import { spawnCli } from '../helpers/run-cli.js';
import { testEnv, useTempDir } from '../helpers/temp.js';

describe('the built CLI', () => {
  it('prints its version and help without loading a registry', async () => {
    const home = useTempDir();
    const version = await spawnCli(['--version'], { cwd: home, env: testEnv(home) });
    expect(version.exitCode).toBe(0);
    expect(version.stdout.trim()).toMatch(/^\d+\.\d+\.\d+$/);
    const help = await spawnCli(['--help'], { cwd: home, env: testEnv(home) });
    expect(help.exitCode).toBe(0);
    for (const command of ['init', 'register', 'list', 'show', 'diff', 'tag', 'verify', 'rm', 'gc', 'demo']) expect(help.stdout).toContain(`  ${command}`);
    const registerHelp = await spawnCli(['register', '--help'], { cwd: home, env: testEnv(home) });
    expect(registerHelp.stdout).toContain('--version <n>');
    expect(registerHelp.stdout).toContain('Examples:');
  });

  it('runs the demo: registers the bundled model, serves it, pushes it; again is a no-op', async () => {
    const home = useTempDir();
    const first = await spawnCli(['demo'], { cwd: home, env: testEnv(home) });
    expect(first.exitCode, first.stderr).toBe(0);
    expect(first.stdout).toContain('Created registry');
    expect(first.stdout).toContain('✔ Registered mlp@1 as prod');
    expect(first.stdout).toContain('✔ Registry is consistent: 1 version, 1 blob');
    expect(first.stdout).toMatch(/✔ Served mlp@prod on http:\/\/127\.0\.0\.1:\d+: POST \/v2\/models\/mlp\/infer → 200/);
    expect(first.stdout).toContain(`✔ Pushed mlp@1 to oci-layout:${join(home, 'maas-demo.oci')} as 1, prod`);
    expect(existsSync(join(home, 'maas-demo', 'maas.yaml'))).toBe(true);
    expect(existsSync(join(home, 'maas-demo.oci', 'index.json'))).toBe(true);
    const again = await spawnCli(['demo', '--json'], { cwd: home, env: testEnv(home) });
    expect(again.exitCode).toBe(0);
    expect(again.json()).toMatchObject({
      createdRegistry: false, register: { status: 'unchanged', version: 1 }, verify: { ok: true },
      serve: { status: 200, response: { model_name: 'mlp', model_version: '1', id: 'demo', outputs: [{ name: 'output', shape: [2, 3] }] } },
      push: { tags: ['1', 'prod'], blobsSkipped: 2 },
    });
  });

  it('answers a usage error with exit 2, and under --json with a JSON error on stdout', async () => {
    const home = useTempDir();
    const r = await spawnCli(['register'], { cwd: home, env: testEnv(home) });
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toContain("missing required argument 'file'");
    expect(r.stderr).toContain('(run maas register --help for usage)');
    const unknown = await spawnCli(['frobnicate', '--json'], { cwd: home, env: testEnv(home) });
    expect(unknown.exitCode).toBe(2);
    expect(unknown.json().error.code).toBe('MAAS_USAGE');
    // a required option is one commander enforces and documents
    const packHelp = await spawnCli(['pack', '--help'], { cwd: home, env: testEnv(home) });
    expect(packHelp.stdout).toMatch(/-o, --output <file> +the \.tar to write \(required\)/);
    const pack = await spawnCli(['pack', 'mlp@1', '--json'], { cwd: home, env: testEnv(home) });
    expect(pack.exitCode).toBe(2);
    expect(pack.json().error).toMatchObject({ code: 'MAAS_USAGE', message: expect.stringContaining("'-o, --output <file>'") });
  });

  it('hints fit the command: a bad reference is explained as a reference, not with a flag the command lacks', async () => {
    const home = useTempDir();
    expect((await spawnCli(['init', 'registry', '--yes'], { cwd: home, env: testEnv(home) })).exitCode).toBe(0);
    for (const args of [['show', '@2'], ['diff', 'My@2', 'mlp@1'], ['tag', 'mlp@!', 'prod']]) {
      const r = await spawnCli([...args, '--json'], { cwd: join(home, 'registry'), env: testEnv(home) });
      expect(r.exitCode, args.join(' ')).toBe(2);
      expect(r.json().error.message).toContain('is not a model reference');
      expect(r.json().error.hint).toMatch(/NAME@VERSION/);
      expect(r.json().error.hint).not.toContain('--name');
    }
  });

  it('exits with its code after a failed convert or register --fp16, instead of hanging on a worker', async () => {
    const home = useTempDir();
    // No tolerance at all: both models load and run in inference workers, then the comparison fails.
    writeModel(home, 'cw.onnx', constantWeights());
    const bounded = { cwd: home, env: testEnv(home), timeoutMs: 30_000 };
    const convert = await spawnCli(['convert', 'cw.onnx', '--fp16', '--tolerance', '0'], bounded);
    expect(convert.signal, 'convert did not exit within 30 s').toBeNull();
    expect(convert.exitCode).toBe(8);
    expect(convert.stderr).toContain('above the tolerance 0');
    expect((await spawnCli(['init', 'registry', '--yes'], bounded)).exitCode).toBe(0);
    const register = await spawnCli(['register', 'cw.onnx', '--registry', 'registry', '--fp16', '--tolerance', '0', '--no-load-check'], bounded);
    expect(register.signal, 'register --fp16 did not exit within 30 s').toBeNull();
    expect(register.exitCode).toBe(8);
    expect(register.stderr).not.toContain('    at ');
  }, 90_000);
});
