/**
 * `maas bench`: latency profiles measured in-process and through a real server, recorded beside
 * the version (one per machine), shown by `show`, compared by `diff` and gated by
 * `--fail-on-regression` on a genuinely slower model. Durations are short: each bench is about a
 * second.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { deepMlp, mlp, writeModel } from '../../fixtures/models.js';
import { profileModel } from '../../src/inference/bench.js';
import { batchStats } from '../../src/inference/bench-loop.js';
import { valueInfoProto } from '../../src/onnx/build.js';
import { DataType } from '../../src/onnx/dtypes.js';
import { inspectModel } from '../../src/onnx/inspect.js';
import { makeRegistry, type TestRegistry } from '../helpers/registry.js';
import { serveRegistry } from '../helpers/serve.js';

const git = (cwd: string, ...args: string[]) => execFileSync('git', args, { cwd, encoding: 'utf8' }).trim();
const profilesOf = (reg: TestRegistry, name: string, version: number) => JSON.parse(readFileSync(join(reg.dir, 'models', name, String(version), 'profiles.json'), 'utf8'));
const SHORT = ['--duration', '300ms', '--batch', '1,4'];

/** A registry holding mlp@1. */
async function withMlp(): Promise<TestRegistry> {
  const reg = await makeRegistry();
  const r = await reg.cli('register', writeModel(reg.work, 'mlp.onnx', mlp()), '--name', 'mlp');
  expect(r.exitCode, r.stderr).toBe(0);
  return reg;
}

describe('maas bench', () => {
  it('profiles a version in-process, prints a table, records it; show prints it; a second run on this machine replaces it; rm removes it', async () => {
    const reg = await withMlp();
    const first = await reg.cli('bench', 'mlp@1', ...SHORT);
    expect(first.exitCode, first.stderr).toBe(0);
    const lines = first.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^mlp@1 in-process on cpu, \d+ threads?, 300ms per batch size/);
    expect(lines[1]).toMatch(/^ {2}BATCH\s+P50 MS\s+P90 MS\s+P99 MS\s+ROWS\/S\s+REQ\/S$/);
    expect(lines[2]).toMatch(/^ {2}1\s+\d+\.\d+\s+\d+\.\d+\s+\d+\.\d+\s+[\d,]+\s+[\d,]+$/);
    expect(lines[3]).toMatch(/^ {2}4\s/);
    expect(first.stdout).toContain('✔ Recorded in models/mlp/1/profiles.json.');

    const stored = profilesOf(reg, 'mlp', 1);
    expect(stored).toHaveLength(1);
    const manifestDigest = (await reg.cli('show', 'mlp@1', '--json')).json().manifestDigest;
    expect(stored[0]).toMatchObject({
      manifestDigest,
      machineId: expect.stringMatching(/^[0-9a-f]{16}$/),
      machine: { mode: 'in-process', provider: 'cpu', cores: expect.any(Number), onnxruntime: expect.stringMatching(/^1\./), node: process.version },
      durationMs: 300,
    });
    const [b1, b4] = stored[0].batches;
    expect(b1).toMatchObject({ batch: 1, status: 'ok' });
    expect(b4).toMatchObject({ batch: 4, status: 'ok' });
    expect(b1.requests).toBeGreaterThan(10);
    expect(b1.p50Ms).toBeGreaterThan(0);
    expect(b1.p50Ms).toBeLessThanOrEqual(b1.p90Ms);
    expect(b1.p90Ms).toBeLessThanOrEqual(b1.p99Ms);
    expect(b4.rowsPerSec).toBeCloseTo(b4.requestsPerSec * 4, -1);

    const show = await reg.cli('show', 'mlp@1');
    expect(show.stdout).toMatch(/\n {2}latency\n {4}cpu, in-process, .* \(machine [0-9a-f]{16}\), \S+ \S+, 300ms per batch size\n {6}batch 1 +p50 \S+ ms {2}p90 \S+ ms {2}p99 \S+ ms {2}[\d,]+ rows\/s {2}[\d,]+ req\/s\n {6}batch 4 /);
    expect((await reg.cli('show', 'mlp@1', '--json')).json().profiles).toEqual(stored);

    const again = await reg.cli('bench', 'mlp@1', ...SHORT, '--json');
    expect(again.exitCode, again.stderr).toBe(0);
    expect(again.json()).toMatchObject({ ref: 'mlp@1', mode: 'in-process', machineId: stored[0].machineId, recorded: { path: 'models/mlp/1/profiles.json', replaced: true } });
    expect(profilesOf(reg, 'mlp', 1)).toHaveLength(1);
    expect(git(reg.dir, 'log', '--format=%s', '-2').split('\n')).toEqual([`profile mlp@1 (cpu, in-process, machine ${stored[0].machineId})`, `profile mlp@1 (cpu, in-process, machine ${stored[0].machineId})`]);
    const history = readFileSync(join(reg.dir, 'history.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(history.filter((h) => h.action === 'profile')).toEqual([
      expect.objectContaining({ model: 'mlp', version: 1, digest: manifestDigest, machine: stored[0].machineId }),
      expect.objectContaining({ model: 'mlp', version: 1, digest: manifestDigest, machine: stored[0].machineId }),
    ]);
    const verify = await reg.cli('verify');
    expect(verify.exitCode, verify.stdout).toBe(0);

    expect((await reg.cli('rm', 'mlp@1')).exitCode).toBe(0);
    expect(existsSync(join(reg.dir, 'models/mlp/1'))).toBe(false);
    expect((await reg.cli('verify')).exitCode).toBe(0);
  });

  it('skips a batch size the model cannot take, with the reason', async () => {
    const reg = await makeRegistry();
    const fixed = mlp();
    fixed.model.graph.inputs = [valueInfoProto('input', DataType.FLOAT, [1, 4])];
    expect((await reg.cli('register', writeModel(reg.work, 'fixed.onnx', fixed), '--name', 'fixed')).exitCode).toBe(0);
    const r = await reg.cli('bench', 'fixed', ...SHORT);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toContain("batch 4 skipped: input 'input' has a fixed first dim of 1");
    expect(profilesOf(reg, 'fixed', 1)[0].batches[1]).toEqual({ batch: 4, status: 'skipped', reason: "input 'input' has a fixed first dim of 1" });
    const none = await reg.cli('bench', 'fixed', '--batch', '8', '--duration', '100ms', '--json');
    expect(none.exitCode).toBe(0);
    expect(none.json()).toMatchObject({ recorded: null, batches: [{ batch: 8, status: 'skipped' }] });
    expect(profilesOf(reg, 'fixed', 1)).toHaveLength(1); // the earlier profile stays
  });

  it('--server measures through a running maas serve and records a profile marked as through a server', async () => {
    const reg = await withMlp();
    const server = await serveRegistry(reg, { token: 's3cret' });
    const denied = await reg.cli('bench', 'mlp@1', ...SHORT, '--server', server.url, '--json');
    expect(denied.exitCode).toBe(5);
    expect(denied.json().error.code).toBe('MAAS_REMOTE_UNAUTHORIZED');
    const r = await reg.cli('bench', 'mlp@1', ...SHORT, '--server', server.url, '--token', 's3cret', '--json');
    expect(r.exitCode, r.stdout).toBe(0);
    expect(r.json()).toMatchObject({
      mode: 'server',
      server: server.url,
      provider: 'cpu',
      machine: { mode: 'server', server: '127.0.0.1', provider: 'cpu' },
      batches: [{ batch: 1, status: 'ok' }, { batch: 4, status: 'ok' }],
      recorded: { replaced: false },
    });
    expect(r.json().batches[0].requests).toBeGreaterThan(10);
    const human = await reg.cli('bench', 'mlp@1', '--duration', '100ms', '--batch', '2', '--server', server.url, '--token', 's3cret');
    expect(human.stdout).toMatch(new RegExp(`^mlp@1 through ${server.url} on cpu, 100ms per batch size`));
    expect(human.stdout).toContain('(replacing this machine\'s earlier profile)');
    const stored = profilesOf(reg, 'mlp', 1);
    expect(stored).toHaveLength(1);
    expect(stored[0].machine).toMatchObject({ mode: 'server', server: '127.0.0.1' });
    expect((await reg.cli('show', 'mlp@1')).stdout).toContain('cpu, through a server on 127.0.0.1');
    // an in-process profile is another fingerprint: both are kept
    expect((await reg.cli('bench', 'mlp@1', '--duration', '100ms', '--batch', '1')).exitCode).toBe(0);
    expect(profilesOf(reg, 'mlp', 1).map((p: { machine: { mode: string } }) => p.machine.mode).sort()).toEqual(['in-process', 'server']);
  });

  it('--server: a server that cannot be reached is exit 5, quickly', async () => {
    const reg = await withMlp();
    const started = Date.now();
    const r = await reg.cli('bench', 'mlp@1', '--server', 'http://127.0.0.1:9', '--timeout-ms', '2000', '--json');
    expect(r.exitCode).toBe(5);
    expect(r.json().error).toMatchObject({ code: 'MAAS_REMOTE_UNREACHABLE', message: expect.stringContaining('cannot reach http://127.0.0.1:9'), hint: expect.stringContaining('maas serve') });
    expect(Date.now() - started).toBeLessThan(5000);
    expect(existsSync(join(reg.dir, 'models/mlp/1/profiles.json'))).toBe(false);
  });

  it('diff shows the latency change; --fail-on-regression exits 8 on a slower version, 0 within the threshold, 2 without common profiles', async () => {
    const reg = await makeRegistry();
    const small = writeModel(reg.work, 'small.onnx', deepMlp({ input: 64, hidden: 16, layers: 2, output: 8 }));
    // Large enough to be clearly slower on any machine: 16 MMACs a row against 2 kMACs (384 wide measured only +50 % on an AMD EPYC).
    const large = writeModel(reg.work, 'large.onnx', deepMlp({ input: 64, hidden: 1024, layers: 16, output: 8 }));
    for (const file of [small, large]) expect((await reg.cli('register', file, '--name', 'deep')).exitCode).toBe(0);
    expect((await reg.cli('bench', 'deep@1', ...SHORT)).exitCode).toBe(0);

    const missing = await reg.cli('diff', 'deep@1', 'deep@2', '--fail-on-regression', '10%');
    expect(missing.exitCode).toBe(2);
    expect(missing.stderr).toContain('no latency profiles of deep@1 and deep@2 from the same machine to compare (deep@1 has 1 profile, deep@2 0 profiles)');
    expect(missing.stderr).toContain('maas bench deep@2');

    expect((await reg.cli('bench', 'deep@2', ...SHORT)).exitCode).toBe(0);
    const plain = await reg.cli('diff', 'deep@1', 'deep@2');
    expect(plain.exitCode).toBe(0);
    expect(plain.stdout).toMatch(/\n {2}latency {6}cpu, in-process, .*\n {4}batch 1 +p50 \S+ → \S+ ms \(\+\d+\.\d%\) {2}p99 \S+ → \S+ ms \([+-]\d+\.\d%\)\n {4}batch 4 /);

    const slower = await reg.cli('diff', 'deep@1', 'deep@2', '--fail-on-regression', '10%');
    expect(slower.exitCode, slower.stdout).toBe(8);
    expect(slower.stdout).toMatch(/✖ latency regression: deep@2's p50 is \+\d+\.\d% against deep@1 at batch \d, beyond 10%/);
    const json = await reg.cli('diff', 'deep@1', 'deep@2', '--fail-on-regression', '10', '--json');
    expect(json.exitCode).toBe(8);
    const result = json.json();
    expect(result.latency).toHaveLength(1);
    expect(result.latency[0].batches.map((b: { batch: number }) => b.batch)).toEqual([1, 4]);
    expect(result.regression).toMatchObject({ thresholdPct: 10, regressed: true });
    expect(result.regression.worst.changePct).toBeGreaterThan(100);

    const faster = await reg.cli('diff', 'deep@2', 'deep@1', '--fail-on-regression', '10%');
    expect(faster.exitCode, faster.stdout).toBe(0);
    expect(faster.stdout).toMatch(/✔ latency within 10% of deep@2 \(largest p50 change -\d+\.\d% at batch \d\)/);
    const generous = await reg.cli('diff', 'deep@1', 'deep@2', '--fail-on-regression', '1000000%');
    expect(generous.exitCode).toBe(0);
    expect((await reg.cli('diff', 'deep@1', 'deep@2', '--fail-on-regression', 'ten')).exitCode).toBe(2);
  });

  it('refuses bad input with exit 2 or 4 and a message', async () => {
    const reg = await withMlp();
    const cases: [string[], number, string][] = [
      [['--batch', '0'], 2, "--batch expects batch sizes from 1 to 65536 separated by commas, got '0'"],
      [['--batch', 'x'], 2, "--batch expects batch sizes from 1 to 65536 separated by commas, got 'x'"],
      [['--batch', '1,,2'], 2, '--batch expects'],
      [['--duration', '5q'], 2, "--duration expects a duration such as 500ms, 10s or 1m, got '5q'"],
      [['--server', 'http://127.0.0.1:9', '--device', 'cpu'], 2, '--device applies in-process'],
      [['--server', 'localhost:8080'], 2, "is not http:// or https://"],
    ];
    for (const [args, code, message] of cases) {
      const r = await reg.cli('bench', 'mlp@1', ...args);
      expect(r.exitCode, args.join(' ')).toBe(code);
      expect(r.stderr).toContain(message);
    }
    const unknown = await reg.cli('bench', 'mlp@9', '--json');
    expect(unknown.exitCode).toBe(4);
    expect(unknown.json().error).toMatchObject({ code: 'MAAS_VERSION_NOT_FOUND', hint: 'mlp has versions 1.' });
    expect((await reg.cli('bench', 'nope')).exitCode).toBe(4);
    expect(existsSync(join(reg.dir, 'models/mlp/1/profiles.json'))).toBe(false);
  });

  it('profileModel (what convert calls): a model file in, per-batch statistics out; nearest-rank percentiles', async () => {
    const reg = await makeRegistry();
    const file = writeModel(reg.work, 'm.onnx', mlp());
    const profile = await profileModel({ path: file, signature: inspectModel(file).signature }, { device: 'cpu', batches: [2, 1], durationMs: 100 });
    expect(profile).toMatchObject({ provider: 'cpu', durationMs: 100, batches: [{ batch: 2, status: 'ok' }, { batch: 1, status: 'ok' }] });
    expect(profile.threads).toBeGreaterThan(0);
    await expect(profileModel({ path: file, signature: inspectModel(file).signature }, { device: 'cpu', batches: [0], durationMs: 100 })).rejects.toMatchObject({ code: 'MAAS_USAGE' });
    const stats = batchStats(4, Array.from({ length: 100 }, (_, i) => 100 - i), 2000);
    expect(stats).toEqual({ batch: 4, status: 'ok', requests: 100, p50Ms: 50, p90Ms: 90, p99Ms: 99, meanMs: 50.5, minMs: 1, maxMs: 100, rowsPerSec: 200, requestsPerSec: 50 });
  });
});
