import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { modelProto, writeMessage } from '../../src/onnx/build.js';
import { manyDims, nestedIf, nestedSequence, writeBytes, writeExternalMlp } from '../../fixtures/hostile.js';
import { mlp, multiIo, writeModel } from '../../fixtures/models.js';
import { FIXTURES, makeRegistry } from '../helpers/registry.js';

const git = (cwd: string, ...args: string[]) => execFileSync('git', args, { cwd, encoding: 'utf8' }).trim();

describe('maas register', () => {
  it('stores the model as version 1 with a manifest, blob, commit and tag', async () => {
    const reg = await makeRegistry();
    const r = await reg.cli('register', reg.fixture('mlp.onnx'));
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toContain('✔ Registered mlp@1 (564 B, 1 file)');
    expect(r.stdout).toMatch(/in {3}input {3}float32 {2}\[batch, 4\]/);
    const manifest = JSON.parse(readFileSync(join(reg.dir, 'models/mlp/1/manifest.json'), 'utf8'));
    expect(manifest).toMatchObject({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      artifactType: 'application/vnd.cncf.model.manifest.v1+json',
      config: { mediaType: 'application/vnd.cncf.model.config.v1+json' },
      layers: [{ mediaType: 'application/vnd.cncf.model.weight.v1.raw', size: 564, annotations: { 'org.cncf.model.filepath': 'mlp.onnx' } }],
    });
    const config = JSON.parse(readFileSync(join(reg.dir, 'models/mlp/1/config.json'), 'utf8'));
    expect(config).toEqual({
      descriptor: { name: 'mlp', version: '1', createdAt: expect.any(String) },
      config: { format: 'onnx', paramSize: '67', precision: 'float32' },
      modelfs: { type: 'layers', diffIds: [manifest.layers[0].digest] },
    });
    const blob = join(reg.dir, 'blobs/sha256', manifest.layers[0].digest.slice(7));
    expect(readFileSync(blob)).toEqual(readFileSync(join(FIXTURES, 'mlp.onnx')));
    expect(git(reg.dir, 'tag')).toBe('mlp@v1');
    expect(git(reg.dir, 'log', '-1', '--format=%s')).toBe('register mlp@1');
    expect(git(reg.dir, 'status', '--porcelain')).toBe('');
    expect(git(reg.dir, 'ls-files')).not.toContain('blobs/');
  });

  it('prints the result as JSON with digests, fingerprint and signature', async () => {
    const reg = await makeRegistry();
    const r = await reg.cli('register', reg.fixture('multi_io.onnx'), '--name', 'ranker', '--alias', 'prod', '-m', 'first cut', '--json');
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.json()).toMatchObject({
      status: 'registered', name: 'ranker', version: 1, ref: 'ranker@1', tag: 'ranker@v1', alias: 'prod',
      digest: expect.stringMatching(/^sha256:[0-9a-f]{64}$/),
      manifestDigest: expect.stringMatching(/^sha256:/),
      graphFingerprint: expect.stringMatching(/^sha256:/),
      loadChecked: true,
      signature: {
        inputs: [{ name: 'features', dtype: 'float32', shape: ['batch', 3] }, { name: 'ids', dtype: 'int64', shape: ['batch'] }],
        outputs: [{ name: 'positive', dtype: 'bool', shape: ['batch', 3] }, { name: 'ids_doubled', dtype: 'int64', shape: ['batch'] }],
      },
    });
    expect(JSON.parse(readFileSync(join(reg.dir, 'models/ranker/aliases.json'), 'utf8'))).toEqual({ prod: 1 });
  });

  it('is a no-op for the same bytes, takes the next integer otherwise, and refuses other bytes under a taken version', async () => {
    const reg = await makeRegistry();
    const file = reg.fixture('mlp.onnx');
    expect((await reg.cli('register', file)).exitCode).toBe(0);
    const again = await reg.cli('register', file, '--json');
    expect(again.exitCode).toBe(0);
    expect(again.json()).toMatchObject({ status: 'unchanged', version: 1 });
    expect((await reg.cli('register', file)).stdout).toContain('mlp@1 already holds these bytes; nothing registered');
    expect((await reg.cli('register', file, '--version', '1')).exitCode).toBe(0);
    // The same bytes under another file name (an export named by date) are the same version.
    const renamed = join(reg.work, 'mlp-2026-12-07.onnx');
    copyFileSync(file, renamed);
    const copy = await reg.cli('register', renamed, '--name', 'mlp', '--json');
    expect(copy.json()).toMatchObject({ status: 'unchanged', version: 1, files: [{ path: 'mlp.onnx' }] });

    const other = writeModel(reg.work, 'mlp.onnx', mlp({ seed: 5 }));
    const next = await reg.cli('register', other, '--json');
    expect(next.json()).toMatchObject({ status: 'registered', version: 2 });

    const third = writeModel(reg.work, 'mlp.onnx', mlp({ seed: 6 }));
    const clash = await reg.cli('register', third, '--version', '1');
    expect(clash.exitCode).toBe(6);
    expect(clash.stderr).toContain('mlp@1 already exists with other bytes');
    expect(clash.stderr).toContain('--version 3');
    const clashJson = await reg.cli('register', third, '--version', '2', '--json');
    expect(clashJson.json().error.code).toBe('MAAS_VERSION_CONFLICT');
    expect(git(reg.dir, 'tag').split('\n')).toEqual(['mlp@v1', 'mlp@v2']);
    expect(git(reg.dir, 'status', '--porcelain')).toBe('');

    const explicit = await reg.cli('register', third, '--version', '7', '--json');
    expect(explicit.json()).toMatchObject({ status: 'registered', version: 7 });
    expect((await reg.cli('register', writeModel(reg.work, 'mlp.onnx', mlp({ seed: 8 })), '--json')).json().version).toBe(8);
  });

  it('says so when registering the same bytes again restores a blob missing from or damaged in the store', async () => {
    const reg = await makeRegistry();
    const file = reg.fixture('mlp.onnx');
    const first = await reg.cli('register', file, '--json');
    const digest = first.json().digest as string;
    const stored = join(reg.dir, 'blobs/sha256', digest.slice(7));
    expect((await reg.cli('register', file, '--json')).json().repaired).toBeUndefined(); // intact: nothing to say

    chmodSync(stored, 0o644);
    const bytes = readFileSync(stored);
    bytes[10] = bytes[10]! ^ 0xff;
    writeFileSync(stored, bytes);
    expect((await reg.cli('verify')).exitCode).toBe(8);
    const damaged = await reg.cli('register', file);
    expect(damaged.exitCode).toBe(0);
    expect(damaged.stdout).toContain(`restored ${digest} from this file: it was damaged in the store`);
    expect((await reg.cli('verify')).exitCode).toBe(0);

    rmSync(stored, { force: true });
    const missing = await reg.cli('register', file, '--json');
    expect(missing.json()).toMatchObject({ status: 'unchanged', repaired: [{ digest, was: 'absent' }] });
    expect((await reg.cli('verify')).exitCode).toBe(0);
  });

  it('warns when a new version breaks the signature clients of the previous one use', async () => {
    const reg = await makeRegistry();
    await reg.cli('register', reg.fixture('mlp.onnx'));
    const compatible = await reg.cli('register', writeModel(reg.work, 'mlp2.onnx', mlp({ seed: 9 })), '--name', 'mlp', '--json');
    expect(compatible.json().breaking).toBeUndefined();
    const breaking = await reg.cli('register', writeModel(reg.work, 'multi.onnx', multiIo()), '--name', 'mlp');
    expect(breaking.exitCode).toBe(0);
    expect(breaking.stdout).toContain('⚠ Breaking for clients of mlp@2: ');
    expect(breaking.stdout).toContain('maas diff mlp@2 mlp@3');
    const json = (await reg.cli('show', 'mlp@3', '--json')).json();
    expect(json.version).toBe(3);
    // A version filled in below the latest replaces nothing that is served by name: no warning.
    const later = await reg.cli('register', writeModel(reg.work, 'multi-b.onnx', { ...multiIo(), producerName: 'another' }), '--name', 'mlp', '--version', '9', '--json');
    expect(later.json()).toMatchObject({ version: 9 });
    const below = await reg.cli('register', writeModel(reg.work, 'mlp-old.onnx', mlp({ seed: 11 })), '--name', 'mlp', '--version', '5', '--json');
    expect(below.exitCode, below.stdout).toBe(0);
    expect(below.json().breaking).toBeUndefined();
  });

  it('never reuses a removed version number for other bytes', async () => {
    const reg = await makeRegistry();
    await reg.cli('register', reg.fixture('mlp.onnx'));
    await reg.cli('register', writeModel(reg.work, 'b.onnx', mlp({ seed: 9 })), '--name', 'mlp');
    expect((await reg.cli('rm', 'mlp@2')).exitCode).toBe(0);
    const reuse = await reg.cli('register', writeModel(reg.work, 'c.onnx', mlp({ seed: 10 })), '--name', 'mlp', '--version', '2');
    expect(reuse.exitCode).toBe(6);
    expect(reuse.stderr).toContain('was removed');
    const next = await reg.cli('register', join(reg.work, 'c.onnx'), '--name', 'mlp', '--json');
    expect(next.json().version).toBe(3);
  });

  it('registers a model with external data as one version holding both files', async () => {
    const reg = await makeRegistry();
    reg.fixture('mlp_external.onnx.data');
    const r = await reg.cli('register', reg.fixture('mlp_external.onnx'), '--json');
    expect(r.exitCode, r.stderr).toBe(0);
    const result = r.json();
    expect(result.files.map((f: { path: string }) => f.path)).toEqual(['mlp_external.onnx', 'mlp_external.onnx.data']);
    expect(result.size).toBe(statSync(join(FIXTURES, 'mlp_external.onnx')).size + statSync(join(FIXTURES, 'mlp_external.onnx.data')).size);
    const show = await reg.cli('show', 'mlp_external', '--json');
    expect(show.json().files.map((f: { present: boolean }) => f.present)).toEqual([true, true]);
  });

  it('gives the same graph fingerprint to a re-export with a new doc string', async () => {
    const reg = await makeRegistry();
    const a = await reg.cli('register', writeModel(reg.work, 'a.onnx', mlp()), '--name', 'm', '--json');
    const b = await reg.cli('register', writeModel(reg.work, 'b.onnx', mlp({ docString: 'exported again', producerName: 'pytorch' })), '--name', 'm', '--json');
    expect(b.json().version).toBe(2);
    expect(b.json().digest).not.toBe(a.json().digest);
    expect(b.json().graphFingerprint).toBe(a.json().graphFingerprint);
    const diff = await reg.cli('diff', 'm@1', 'm@2');
    expect(diff.stdout).toContain('graph        same fingerprint');
  });

  describe('bad input', () => {
    const expectInvalid = async (file: string, pattern: RegExp, hint?: RegExp) => {
      const reg = await makeRegistry();
      const r = await reg.cli('register', file);
      expect(r.exitCode, r.stderr).toBe(7);
      expect(r.stderr).toMatch(pattern);
      if (hint) expect(r.stderr).toMatch(hint);
      expect(r.stderr).not.toMatch(/\n\s+at /); // no stack trace
      const json = await reg.cli('register', file, '--json');
      expect(json.json().error).toMatchObject({ code: 'MAAS_MODEL_INVALID', hint: expect.any(String) });
      expect(existsSync(join(reg.dir, 'models'))).toBe(false);
      expect(git(reg.dir, 'status', '--porcelain')).toBe('');
      return reg;
    };

    it('an empty file', async () => {
      const reg = await makeRegistry();
      writeFileSync(join(reg.work, 'empty.onnx'), '');
      await expectInvalid(join(reg.work, 'empty.onnx'), /is not a valid ONNX model: the file is empty/);
    });

    it('a truncated file', async () => {
      const reg = await makeRegistry();
      const bytes = readFileSync(join(FIXTURES, 'mlp.onnx'));
      writeFileSync(join(reg.work, 'cut.onnx'), bytes.subarray(0, bytes.length - 40));
      await expectInvalid(join(reg.work, 'cut.onnx'), /is not a valid ONNX model/, /truncated copy/);
    });

    it('a file that is not ONNX', async () => {
      const reg = await makeRegistry();
      writeFileSync(join(reg.work, 'notes.onnx'), 'just some text\n'.repeat(20));
      await expectInvalid(join(reg.work, 'notes.onnx'), /is not a valid ONNX model/);
    });

    it('a PyTorch file that is not TorchScript', async () => {
      const reg = await makeRegistry();
      writeFileSync(join(reg.work, 'model.pt'), Buffer.from('PK\x03\x04 pickled torch archive'));
      // Exported with torch when a Python has it (and this is no TorchScript), else the install command.
      const r = await reg.cli('register', join(reg.work, 'model.pt'), '--input-shape', '1,4', '--json');
      expect(r.exitCode).toBe(7);
      expect(r.json().error).toMatchObject({ code: 'MAAS_MODEL_INVALID', message: expect.stringContaining('model.pt'), hint: expect.stringMatching(/torch|ONNX/) });
      expect(existsSync(join(reg.dir, 'models'))).toBe(false);
    });

    it('a model whose external data file is missing', async () => {
      const reg = await makeRegistry();
      copyFileSync(join(FIXTURES, 'mlp_external.onnx'), join(reg.work, 'mlp_external.onnx'));
      await expectInvalid(join(reg.work, 'mlp_external.onnx'), /external data file 'mlp_external.onnx.data' is missing/, /next to the model file/);
    });

    it('a well-formed graph that onnxruntime cannot load', async () => {
      const reg = await makeRegistry();
      const model = multiIo();
      model.graph.nodes[0]!.op = 'NoSuchOp';
      writeMessage(join(reg.work, 'custom.onnx'), modelProto(model));
      await expectInvalid(join(reg.work, 'custom.onnx'), /onnxruntime cannot load .*NoSuchOp/, /--no-load-check/);
      const skipped = await reg.cli('register', join(reg.work, 'custom.onnx'), '--no-load-check', '--json');
      expect(skipped.exitCode).toBe(0);
      expect(skipped.json().loadChecked).toBe(false);
    });

    /** --no-load-check: what maas itself reads, with no onnxruntime child in front of it. */
    const expectRefused = async (reg: Awaited<ReturnType<typeof makeRegistry>>, file: string, pattern: RegExp) => {
      const r = await reg.cli('register', file, '--no-load-check');
      expect(r.exitCode, r.stderr).toBe(7);
      expect(r.stderr).toMatch(pattern);
      expect(r.stderr).not.toMatch(/\n\s+at |Unexpected error/);
      expect(existsSync(join(reg.dir, 'models'))).toBe(false);
    };
    const weights = () => mlp({ externalData: 'w.bin' }).externalData!;

    it('external data that is a FIFO, a folder, or the model\'s own folder', async () => {
      const reg = await makeRegistry();
      execFileSync('mkfifo', [join(reg.work, 'w.bin')]);
      await expectRefused(reg, writeExternalMlp(reg.work, 'fifo.onnx', 'w.bin'), /external data location 'w.bin' is not a regular file/);
      mkdirSync(join(reg.work, 'sub'));
      await expectRefused(reg, writeExternalMlp(reg.work, 'dir.onnx', 'sub'), /'sub' is not a regular file/);
      await expectRefused(reg, writeExternalMlp(reg.work, 'dot.onnx', '.'), /'.' names a folder/);
      await expectRefused(reg, writeExternalMlp(reg.work, 'slash.onnx', 'sub/'), /'sub\/' names a folder/);
    });

    it('external data at a negative or non-numeric offset, or past the end', async () => {
      const reg = await makeRegistry();
      writeFileSync(join(reg.work, 'w.bin'), weights());
      await expectRefused(reg, writeExternalMlp(reg.work, 'neg.onnx', 'w.bin', { offset: -4 }), /external data offset '-4', not a byte count/);
      await expectRefused(reg, writeExternalMlp(reg.work, 'nan.onnx', 'w.bin', { offset: '1e3' }), /offset '1e3', not a byte count/);
      await expectRefused(reg, writeExternalMlp(reg.work, 'far.onnx', 'w.bin', { offset: 1 << 30 }), /lies past the end of 'w.bin'/);
    });

    it('a million dims, If-subgraphs 3,000 deep, sequence types 3,000 deep', async () => {
      const reg = await makeRegistry();
      await expectRefused(reg, writeBytes(reg.work, 'dims.onnx', manyDims(1_000_000)), /tensor dims at byte \d+ holds more than 1024 values/);
      const deep = await reg.cli('register', writeBytes(reg.work, 'deep.onnx', nestedIf(3000)), '--no-load-check', '--json');
      expect(deep.exitCode).toBe(7);
      expect(deep.json().error.message).toMatch(/graphs nested more than 64 deep/);
      await expectRefused(reg, writeBytes(reg.work, 'seq.onnx', nestedSequence(3000)), /types nested more than 64 deep/);
      // within the limits, the same shapes register
      expect((await reg.cli('register', writeBytes(reg.work, 'dims8.onnx', manyDims(8)), '--no-load-check')).exitCode).toBe(0);
      expect((await reg.cli('register', writeBytes(reg.work, 'deep8.onnx', nestedIf(8)), '--no-load-check')).exitCode).toBe(0);
    });

    it('SECURITY: external data that is a symlink out of the model\'s folder, or in a symlinked folder, is refused and never read', async () => {
      const reg = await makeRegistry();
      const outside = join(reg.home, 'outside');
      mkdirSync(outside);
      // exactly the bytes the model expects: only the confinement can refuse it
      const secret = weights();
      writeFileSync(join(outside, 'secret.bin'), secret);
      const modelDir = join(reg.work, 'model');
      mkdirSync(modelDir);
      symlinkSync(join(outside, 'secret.bin'), join(modelDir, 'w.bin'));
      await expectRefused(reg, writeExternalMlp(modelDir, 'link.onnx', 'w.bin'), /'w.bin' resolves to .*secret.bin, outside the model's folder/);
      symlinkSync(outside, join(modelDir, 'data'));
      await expectRefused(reg, writeExternalMlp(modelDir, 'folder.onnx', 'data/secret.bin'), /'data\/secret.bin' resolves to .*outside the model's folder/);
      const blobs = join(reg.dir, 'blobs/sha256');
      const stored = existsSync(blobs) ? readdirSync(blobs).map((f) => readFileSync(join(blobs, f))) : [];
      expect(stored.some((b) => b.equals(secret))).toBe(false);
      // a symlink that stays inside the folder is an ordinary external data file
      writeFileSync(join(modelDir, 'real.bin'), secret);
      symlinkSync('real.bin', join(modelDir, 'inside.bin'));
      const inside = await reg.cli('register', writeExternalMlp(modelDir, 'inside.onnx', 'inside.bin'), '--no-load-check');
      expect(inside.exitCode, inside.stderr).toBe(0);
    });

    it('a missing file (exit 4), a bad name and a bad version (exit 2)', async () => {
      const reg = await makeRegistry();
      const missing = await reg.cli('register', 'nope.onnx');
      expect(missing.exitCode).toBe(4);
      expect(missing.stderr).toContain('nope.onnx does not exist');
      const badName = await reg.cli('register', reg.fixture('mlp.onnx'), '--name', 'My Model');
      expect(badName.exitCode).toBe(2);
      expect(badName.stderr).toContain("'My Model' is not a valid model name");
      const badVersion = await reg.cli('register', reg.fixture('mlp.onnx'), '--version', 'two');
      expect(badVersion.exitCode).toBe(2);
      expect(badVersion.stderr).toContain("'two' is not a version");
    });

    it('outside any registry (exit 3, names maas init)', async () => {
      const reg = await makeRegistry();
      const { runCli } = await import('../helpers/run-cli.js');
      const r = await runCli(['register', reg.fixture('mlp.onnx')], { cwd: reg.work, env: reg.env });
      expect(r.exitCode).toBe(3);
      expect(r.stderr).toContain('no maas registry');
      expect(r.stderr).toContain('maas init');
      const viaFlag = await runCli(['register', reg.fixture('mlp.onnx'), '--registry', reg.dir, '--json'], { cwd: reg.work, env: reg.env });
      expect(viaFlag.json().version).toBe(1);
    });

    it('in a folder with maas.yaml that no git repository holds (exit 3, nothing written); init --force makes it one', async () => {
      const reg = await makeRegistry();
      const { runCli } = await import('../helpers/run-cli.js');
      const cli = (...args: string[]) => runCli(args, { cwd: reg.work, env: reg.env });
      const fake = join(reg.home, 'fake');
      mkdirSync(fake);
      const yaml = 'schemaVersion: 1\nname: x\n';
      writeFileSync(join(fake, 'maas.yaml'), yaml);
      const model = reg.fixture('mlp.onnx');
      for (const args of [['register', model], ['list'], ['verify']]) {
        const r = await cli(...args, '--registry', fake, '--json');
        expect(r.exitCode, args[0]).toBe(3);
        expect(r.json().error).toMatchObject({ code: 'MAAS_REGISTRY_NOT_FOUND', message: `${fake} is not a maas registry: it holds maas.yaml but no git repository commits it` });
      }
      const human = await cli('register', model, '--registry', fake);
      expect(human.stderr).toContain(`maas init ${fake} --force`);
      expect(human.stderr).toContain('git init');
      expect(readdirSync(fake)).toEqual(['maas.yaml']);

      // The hint leads somewhere: init refuses without --force, then keeps the file and adds git.
      expect((await cli('init', fake, '--yes')).exitCode).toBe(2);
      const init = await cli('init', fake, '--yes', '--force', '--json');
      expect(init.exitCode, init.stdout).toBe(0);
      expect(init.json()).toMatchObject({ name: 'x', createdRepository: true, files: ['maas.yaml', '.gitignore'] });
      expect(readFileSync(join(fake, 'maas.yaml'), 'utf8')).toBe(yaml);
      expect((await cli('register', model, '--registry', fake, '--json')).json().version).toBe(1);
      expect((await cli('verify', '--registry', fake)).exitCode).toBe(0);
      expect(git(fake, 'status', '--porcelain')).toBe('');
    });

    it('in a folder of a larger repository: works; one that repository ignores is refused', async () => {
      const reg = await makeRegistry();
      const { runCli } = await import('../helpers/run-cli.js');
      const app = join(reg.home, 'app');
      mkdirSync(app);
      git(app, 'init', '-q');
      writeFileSync(join(app, '.gitignore'), 'scratch/\n');
      const cli = (...args: string[]) => runCli(args, { cwd: app, env: reg.env });
      expect((await cli('init', 'ml/registry', '--yes')).exitCode).toBe(0);
      const registered = await cli('register', reg.fixture('mlp.onnx'), '--registry', 'ml/registry', '--json');
      expect(registered.exitCode, registered.stdout).toBe(0);
      expect(git(app, 'tag')).toBe('mlp@v1');
      expect((await cli('list', '--registry', 'ml/registry', '--json')).exitCode).toBe(0);
      expect((await cli('verify', '--registry', 'ml/registry')).exitCode).toBe(0);

      mkdirSync(join(app, 'scratch'));
      writeFileSync(join(app, 'scratch/maas.yaml'), 'schemaVersion: 1\nname: x\n');
      const ignored = await cli('register', reg.fixture('mlp.onnx'), '--registry', 'scratch');
      expect(ignored.exitCode).toBe(3);
      expect(ignored.stderr).toContain('no git repository commits it');
      expect(readdirSync(join(app, 'scratch'))).toEqual(['maas.yaml']);
    });
  });
});
