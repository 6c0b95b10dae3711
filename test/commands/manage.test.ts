import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { mlp, multiIo, writeModel } from '../../fixtures/models.js';
import { type ModelInit, valueInfoProto } from '../../src/onnx/build.js';
import { DataType } from '../../src/onnx/dtypes.js';
import { makeRegistry, type TestRegistry } from '../helpers/registry.js';

const git = (cwd: string, ...args: string[]) => execFileSync('git', args, { cwd, encoding: 'utf8' }).trim();

/** mlp@1, mlp@2 (new weights), ranker@1; mlp@prod → 1. */
async function populated(): Promise<TestRegistry> {
  const reg = await makeRegistry();
  for (const args of [
    ['register', reg.fixture('mlp.onnx'), '--alias', 'prod'],
    ['register', writeModel(reg.work, 'mlp-retrained.onnx', mlp({ seed: 3 })), '--name', 'mlp', '-m', 'retrained'],
    ['register', reg.fixture('multi_io.onnx'), '--name', 'ranker'],
  ]) {
    const r = await reg.cli(...args);
    expect(r.exitCode, r.stderr).toBe(0);
  }
  return reg;
}

const blobOf = (reg: TestRegistry, ref: string) => {
  const [name, version] = ref.split('@');
  const manifest = JSON.parse(readFileSync(join(reg.dir, 'models', name!, version!, 'manifest.json'), 'utf8'));
  return join(reg.dir, 'blobs/sha256', manifest.layers[0].digest.slice(7));
};

describe('inspecting and managing versions', () => {
  it('list: a table, newest first, and the same data as JSON', async () => {
    const reg = await populated();
    const r = await reg.cli('list');
    expect(r.exitCode).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^MODEL\s+VERSION\s+ALIASES\s+SIZE\s+DIGEST\s+CREATED$/);
    expect(lines.slice(1).map((l) => l.split(/\s+/).slice(0, 3).join(' '))).toEqual(['mlp 2 -', 'mlp 1 prod', 'ranker 1 -']);
    const json = (await reg.cli('list', '--json')).json();
    expect(json.models.map((m: { name: string; latest: number }) => [m.name, m.latest])).toEqual([['mlp', 2], ['ranker', 1]]);
    expect(json.models[0].aliases).toEqual({ prod: 1 });
    expect(json.models[0].versions[0]).toMatchObject({ version: 1, ref: 'mlp@1', size: 564, aliases: ['prod'], digest: expect.stringMatching(/^sha256:/) });
    expect((await reg.cli('list', 'ranker', '--json')).json().models).toHaveLength(1);
    expect((await reg.cli('list', 'nope')).exitCode).toBe(4);
  });

  it('list on an empty registry says how to add a model', async () => {
    const reg = await makeRegistry();
    expect((await reg.cli('list')).stdout).toContain('No models in');
    expect((await reg.cli('list', '--json')).json()).toEqual({ registry: reg.dir, models: [] });
  });

  it('show: signature, fingerprints, files and who registered it, by version, alias or latest', async () => {
    const reg = await populated();
    const latest = await reg.cli('show', 'mlp');
    expect(latest.stdout).toContain('mlp@2\n');
    expect(latest.stdout).toContain('message      retrained');
    const prod = await reg.cli('show', 'mlp@prod');
    expect(prod.stdout).toMatch(/^mlp@1 \(prod\)\n/);
    expect(prod.stdout).toMatch(/registered {3}\S+ by maas <maas@localhost> \(git tag mlp@v1\)/);
    expect(prod.stdout).toContain('parameters   67 (float32)');
    expect(prod.stdout).toContain('onnx         IR 8, opsets ai.onnx 17');
    const json = (await reg.cli('show', 'mlp@1', '--json')).json();
    expect(json).toMatchObject({
      name: 'mlp', version: 1, aliases: ['prod'], tag: 'mlp@v1', loadChecked: true, parameterCount: 67,
      files: [{ path: 'mlp.onnx', size: 564, present: true }],
      registeredBy: { author: 'maas', email: 'maas@localhost', commit: git(reg.dir, 'rev-parse', 'mlp@v1') },
      signature: { inputs: [{ name: 'input', dtype: 'float32', shape: ['batch', 4] }] },
    });
    const missing = await reg.cli('show', 'mlp@9', '--json');
    expect(missing.exitCode).toBe(4);
    expect(missing.json().error).toMatchObject({ code: 'MAAS_VERSION_NOT_FOUND', hint: 'mlp has versions 1, 2.' });
    const noAlias = await reg.cli('show', 'mlp@staging');
    expect(noAlias.exitCode).toBe(4);
    expect(noAlias.stderr).toContain('Its aliases: prod.');
  });

  it('tag: moves an alias in a commit per move, so git log is the audit trail', async () => {
    const reg = await populated();
    const moved = await reg.cli('tag', 'mlp@2', 'prod');
    expect(moved.stdout).toContain('✔ mlp@prod → 2 (was 1)');
    expect((await reg.cli('tag', 'mlp@2', 'prod', '--json')).json()).toMatchObject({ changed: false, version: 2, previous: 2 });
    expect((await reg.cli('tag', 'mlp@1', 'staging', '--json')).json()).toMatchObject({ changed: true, version: 1 });
    expect(git(reg.dir, 'log', '--format=%s', '--', 'models/mlp/aliases.json').split('\n')).toEqual([
      'tag mlp@1 as staging', 'tag mlp@2 as prod (was 1)', 'register mlp@1 as prod',
    ]);
    expect((await reg.cli('show', 'mlp@prod', '--json')).json().version).toBe(2);
    const removed = await reg.cli('tag', 'mlp', 'staging', '--delete');
    expect(removed.stdout).toContain('Removed alias mlp@staging (was 1)');
    expect(JSON.parse(readFileSync(join(reg.dir, 'models/mlp/aliases.json'), 'utf8'))).toEqual({ prod: 2 });
    const history = readFileSync(join(reg.dir, 'history.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(history.map((h) => `${h.action} ${h.model}${h.alias ? `@${h.alias}` : ''} ${h.version ?? ''}`.trim())).toEqual([
      'tag mlp@prod 1', 'register mlp 1', 'register mlp 2', 'register ranker 1', 'tag mlp@prod 2', 'tag mlp@staging 1', 'untag mlp@staging',
    ]);
    expect((await reg.cli('tag', 'mlp@1', 'latest')).exitCode).toBe(2);
    const versionLike = await reg.cli('tag', 'mlp@2', 'v1', '--json');
    expect(versionLike.exitCode).toBe(2);
    expect(versionLike.json().error.message).toContain('NAME@v1 is the git tag of version 1');
    expect((await reg.cli('tag', 'mlp@7', 'prod')).exitCode).toBe(4);
  });

  it('diff: names breaking changes and exits 8 with --fail-on-breaking', async () => {
    const reg = await populated();
    const same = await reg.cli('diff', 'mlp@1', 'mlp@2', '--fail-on-breaking');
    expect(same.exitCode).toBe(0);
    expect(same.stdout).toContain('signature    unchanged');
    const model = multiIo();
    model.graph.inputs.pop(); // drop 'ids' and its output
    model.graph.nodes.pop();
    model.graph.outputs.pop();
    await reg.cli('register', writeModel(reg.work, 'r2.onnx', model), '--name', 'ranker');
    const broken = await reg.cli('diff', 'ranker@1', 'ranker@2', '--fail-on-breaking');
    expect(broken.exitCode).toBe(8);
    expect(broken.stdout).toContain("BREAKING input 'ids' removed");
    expect(broken.stdout).toContain("BREAKING output 'ids_doubled' removed");
    const json = await reg.cli('diff', 'ranker@1', 'ranker@2', '--json');
    expect(json.exitCode).toBe(0);
    expect(json.json()).toMatchObject({ breaking: true, sameGraph: false, sameBytes: false });
    expect(json.json().signatureChanges).toHaveLength(2);
  });

  it('diff and register name a dim change that comes with a dtype change of the same tensor', async () => {
    const reg = await makeRegistry();
    const identity = (dtype: number, shape: number[]): ModelInit => ({
      producerName: 'maas-tests',
      graph: { name: 'identity', nodes: [{ op: 'Identity', inputs: ['x'], outputs: ['y'] }], initializers: [], inputs: [valueInfoProto('x', dtype, shape)], outputs: [valueInfoProto('y', dtype, shape)] },
    });
    const first = await reg.cli('register', writeModel(reg.work, 'seq.onnx', identity(DataType.FLOAT, [1, 24, 96])));
    expect(first.exitCode, first.stderr).toBe(0);
    const second = await reg.cli('register', writeModel(reg.work, 'seq16.onnx', identity(DataType.FLOAT16, [1, 25, 96])), '--name', 'seq');
    expect(second.exitCode, second.stderr).toBe(0);
    const changes = ["input 'x' dtype float32 → float16", "input 'x' dim 1: 24 → 25", "output 'y' dtype float32 → float16", "output 'y' dim 1: 24 → 25"];
    expect(second.stdout).toContain(`⚠ Breaking for clients of seq@1: ${changes.join('; ')}`);
    const diff = await reg.cli('diff', 'seq@1', 'seq@2');
    for (const change of changes) expect(diff.stdout).toContain(`BREAKING ${change}`);
    expect((await reg.cli('diff', 'seq@1', 'seq@2', '--json')).json().signatureChanges.map((c: { message: string }) => c.message)).toEqual(changes);
  });

  it('diff: versions whose graph file is the same but whose external data differs are not identical bytes', async () => {
    const reg = await makeRegistry();
    const [graph, data] = [reg.fixture('mlp_external.onnx'), reg.fixture('mlp_external.onnx.data')];
    expect((await reg.cli('register', graph)).exitCode).toBe(0);
    const bytes = readFileSync(data);
    bytes[10] = bytes[10]! ^ 0x01;
    writeFileSync(data, bytes);
    expect((await reg.cli('register', graph)).exitCode).toBe(0);
    const diff = await reg.cli('diff', 'mlp_external@1', 'mlp_external@2');
    expect(diff.stdout).not.toContain('identical bytes');
    expect(diff.stdout).toMatch(/data file {4}mlp_external\.onnx\.data [0-9a-f]{12} → [0-9a-f]{12}/);
    expect((await reg.cli('diff', 'mlp_external@1', 'mlp_external@2', '--json')).json()).toMatchObject({ sameBytes: false, sameGraph: false });
    expect((await reg.cli('diff', 'mlp_external@1', 'mlp_external@1', '--json')).json()).toMatchObject({ sameBytes: true });
  });

  it.skipIf(process.getuid?.() !== 0)("says git refuses a registry another user owns, with git's safe.directory fix (exit 3)", async () => {
    const reg = await makeRegistry();
    execFileSync('chown', ['-R', '65534:65534', reg.dir]);
    const r = await reg.cli('list', '--json');
    expect(r.exitCode, r.stdout).toBe(3);
    expect(r.json().error).toMatchObject({ code: 'MAAS_GIT_FAILED', message: expect.stringContaining('another user owns it'), hint: expect.stringContaining(`git config --global --add safe.directory ${reg.dir}`) });
  });

  it('verify: passes on a healthy registry, finds corrupt and missing blobs (exit 8)', async () => {
    const reg = await populated();
    const ok = await reg.cli('verify');
    expect(ok.exitCode, ok.stdout).toBe(0);
    expect(ok.stdout).toContain('✔ Registry is consistent: 3 versions, 3 blobs');

    const blob = blobOf(reg, 'mlp@2');
    chmodSync(blob, 0o644);
    const bytes = readFileSync(blob);
    bytes[bytes.length - 5] = bytes[bytes.length - 5]! ^ 0xff; // same size, one bit pattern flipped
    writeFileSync(blob, bytes);
    rmSync(blobOf(reg, 'ranker@1'));
    const bad = await reg.cli('verify');
    expect(bad.exitCode).toBe(8);
    expect(bad.stdout).toMatch(/mlp@2: blob sha256:\w+ \(mlp-retrained.onnx\) does not match its digest/);
    expect(bad.stdout).toMatch(/ranker@1: blob sha256:\w+ \(multi_io.onnx\) is missing/);
    const json = (await reg.cli('verify', '--json')).json();
    expect(json.ok).toBe(false);
    expect(json.problems.map((p: { kind: string; ref: string }) => `${p.kind} ${p.ref}`).sort()).toEqual(['corrupt-blob mlp@2', 'missing-blob ranker@1']);
    expect((await reg.cli('verify', 'mlp@1')).exitCode).toBe(0);

    // What leaves the registry is checked on the way out: no corrupt blob is packed or pushed.
    const packed = await reg.cli('pack', 'mlp@2', '-o', join(reg.work, 'mlp-2.tar'), '--json');
    expect(packed.exitCode).toBe(8);
    expect(packed.json().error).toMatchObject({ code: 'MAAS_VERIFY_FAILED', message: expect.stringContaining('is corrupt') });
    expect(existsSync(join(reg.work, 'mlp-2.tar'))).toBe(false);
    expect((await reg.cli('push', 'mlp@2', `oci-layout:${join(reg.work, 'out')}`)).exitCode).toBe(8);
    // Registering the same file again repairs the blob, as the hint says.
    const again = await reg.cli('register', join(reg.work, 'mlp-retrained.onnx'), '--name', 'mlp', '--json');
    expect(again.json()).toMatchObject({ status: 'unchanged', version: 2 });
    expect((await reg.cli('verify', 'mlp@2')).exitCode).toBe(0);
    expect((await reg.cli('pack', 'mlp@2', '-o', join(reg.work, 'mlp-2.tar'))).exitCode).toBe(0);
  });

  it('verify: reports manifests edited outside maas and a missing git tag', async () => {
    const reg = await populated();
    git(reg.dir, 'tag', '-d', 'mlp@v2');
    const aliases = join(reg.dir, 'models/mlp/aliases.json');
    writeFileSync(aliases, '{"prod": 9}\n');
    const r = await reg.cli('verify', '--json');
    expect(r.exitCode).toBe(8);
    expect(r.json().problems.map((p: { kind: string }) => p.kind).sort()).toEqual(['dangling-alias', 'missing-tag', 'uncommitted']);
  });

  it('verify: a manifest that misstates a blob\'s size is reported against that manifest, never as a corrupt blob', async () => {
    const reg = await makeRegistry();
    const model = reg.fixture('mlp.onnx');
    for (const name of ['mlp', 'twin']) expect((await reg.cli('register', model, '--name', name)).exitCode).toBe(0); // one blob, two versions
    const path = join(reg.dir, 'models/mlp/1/manifest.json');
    const manifest = JSON.parse(readFileSync(path, 'utf8'));
    const layer = manifest.layers[0];
    layer.size += 1;
    writeFileSync(path, JSON.stringify(manifest, null, 2));
    git(reg.dir, 'commit', '-qam', 'x');
    const r = await reg.cli('verify');
    expect(r.exitCode).toBe(8);
    expect(r.stdout).toContain('mlp@1: models/mlp/1/manifest.json is not the manifest git tag mlp@v1 recorded');
    expect(r.stdout).toContain(`mlp@1: models/mlp/1/manifest.json gives blob ${layer.digest} (mlp.onnx) as ${layer.size} bytes, but the blob holds ${layer.size - 1} and matches its digest: the manifest is wrong, not the blob`);
    expect(r.stdout).not.toContain('does not match its digest');
    expect(r.stdout).not.toContain('delete it');
    expect(r.stdout).not.toContain('twin@1');
    const json = (await reg.cli('verify', '--json')).json();
    expect(json.problems.map((p: { kind: string; ref: string }) => `${p.kind} ${p.ref}`).sort()).toEqual(['bad-manifest mlp@1', 'tag-mismatch mlp@1']);
    expect(json).toMatchObject({ blobs: 1, bytes: layer.size - 1 });
    expect((await reg.cli('verify', 'twin@1')).exitCode).toBe(0);
    // Loading it says the same: the manifest is refused, and the shared blob still serves twin@1.
    const request = join(reg.work, 'request.json');
    writeFileSync(request, JSON.stringify({ inputs: [{ name: 'input', shape: [1, 4], datatype: 'FP32', data: [1, 2, 3, 4] }] }));
    const refused = await reg.cli('predict', 'mlp@1', '--input', request, '--json');
    expect(refused.exitCode).toBe(8);
    expect(refused.json().error.message).toContain('its manifest gives blob');
    expect(refused.json().error.message).not.toContain('corrupt');
    expect((await reg.cli('predict', 'twin@1', '--input', request)).exitCode).toBe(0);
  });

  it('rm refuses an aliased version without --force; gc then frees its blob', async () => {
    const reg = await populated();
    const refused = await reg.cli('rm', 'mlp@1');
    expect(refused.exitCode).toBe(6);
    expect(refused.stderr).toContain('still aliased as prod');
    const removed = await reg.cli('rm', 'mlp@1', '--force', '--json');
    expect(removed.json()).toMatchObject({ ref: 'mlp@1', removedAliases: ['prod'] });
    const human = await reg.cli('rm', 'ranker@1');
    expect(human.stdout).toContain('✔ Removed ranker@1.');
    expect(human.stdout).toContain('Its blobs stay until maas gc');
    expect(git(reg.dir, 'tag').split('\n')).toEqual(['mlp@v2']);
    expect((await reg.cli('show', 'mlp@1')).exitCode).toBe(4);
    expect((await reg.cli('rm', 'mlp')).exitCode).toBe(2);

    const blob = blobOf(reg, 'mlp@2');
    const dry = await reg.cli('gc', '--dry-run', '--json');
    expect(dry.json()).toMatchObject({ dryRun: true, kept: 1, freedBytes: 564 + 253 });
    expect(dry.json().removed.map((b: { size: number }) => b.size).sort()).toEqual([253, 564]);
    const gc = await reg.cli('gc');
    expect(gc.stdout).toContain('✔ Removed 2 unreferenced blobs (817 B); 1 in use.');
    expect(readFileSync(blob).length).toBeGreaterThan(0);
    expect((await reg.cli('verify')).exitCode).toBe(0);
    expect((await reg.cli('gc', '--json')).json().removed).toEqual([]);
  });

  it('verify warns about partial files of killed writers and gc removes them at once; a live writer keeps its own', async () => {
    const reg = await populated();
    const staging = join(reg.dir, '.maas/tmp');
    mkdirSync(staging, { recursive: true });
    const deadPid = spawnSync(process.execPath, ['-e', '0']).pid!;
    const dead = join(staging, `blob-${deadPid}-0123456789ab`);
    const live = join(staging, `blob-${process.pid}-ba9876543210`);
    writeFileSync(dead, Buffer.alloc(3 << 20));
    writeFileSync(live, Buffer.alloc(1000));

    const verify = await reg.cli('verify');
    expect(verify.exitCode, verify.stdout).toBe(0);
    expect(verify.stdout).toContain('⚠ 1 partial file of interrupted writes in .maas/tmp (3.15 MB); remove it with maas gc.');
    expect((await reg.cli('verify', '--json')).json().warnings).toEqual([{ kind: 'staging-leftovers', path: '.maas/tmp', files: 1, bytes: 3 << 20, fix: 'maas gc' }]);

    const dry = await reg.cli('gc', '--dry-run', '--json');
    expect(dry.json()).toMatchObject({ staging: [{ path: dead, size: 3 << 20 }], stagingBytes: 3 << 20 });
    expect(existsSync(dead)).toBe(true);
    const gc = await reg.cli('gc');
    expect(gc.stdout).toContain(`✔ Removed 1 partial file of interrupted writes (3.15 MB):\n  ${dead}  3.15 MB`);
    expect(existsSync(dead)).toBe(false);
    expect(existsSync(live)).toBe(true);
    expect((await reg.cli('verify', '--json')).json().warnings).toEqual([]);
    // A killed import's extracted archive: a folder in the same place, counted by its files.
    const importDir = join(staging, `import-${deadPid}-0123456789ab`);
    mkdirSync(join(importDir, 'blobs/sha256'), { recursive: true });
    writeFileSync(join(importDir, 'blobs/sha256', 'a'.repeat(64)), Buffer.alloc(2000));
    writeFileSync(join(importDir, 'index.json'), '{}');
    expect((await reg.cli('verify', '--json')).json().warnings).toEqual([{ kind: 'staging-leftovers', path: '.maas/tmp', files: 1, bytes: 2002, fix: 'maas gc' }]);
    expect((await reg.cli('gc', '--json')).json()).toMatchObject({ staging: [{ path: importDir, size: 2002 }] });
    expect(existsSync(importDir)).toBe(false);
  });
});
