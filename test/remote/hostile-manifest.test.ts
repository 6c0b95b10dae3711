/**
 * Paths and digests read from a manifest never lead outside the registry: `verify` reports a
 * manifest that names one, `push` refuses it instead of uploading the file it names, and serve
 * confines the files it links by real path even when handed such a record.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { isConfinedPath, isDigest } from '../../src/registry/layout.js';
import { Registry } from '../../src/registry/registry.js';
import { modelPath } from '../../src/registry/serve-cache.js';
import { makeRegistry, type TestRegistry } from '../helpers/registry.js';

async function withExternal(): Promise<TestRegistry> {
  const reg = await makeRegistry();
  reg.fixture('mlp_external.onnx.data');
  const r = await reg.cli('register', reg.fixture('mlp_external.onnx'), '--name', 'ext');
  expect(r.exitCode, r.stderr).toBe(0);
  return reg;
}

/** Edits a version's manifest.json as an attacker with write access to the git remote would, and commits it. */
function editManifest(reg: TestRegistry, edit: (m: any) => void): void {
  const path = join(reg.dir, 'models/ext/1/manifest.json');
  const manifest = JSON.parse(readFileSync(path, 'utf8'));
  edit(manifest);
  writeFileSync(path, JSON.stringify(manifest, null, 2));
  execFileSync('git', ['commit', '-qam', 'tamper'], { cwd: reg.dir, env: { ...reg.env, GIT_AUTHOR_NAME: 'x', GIT_AUTHOR_EMAIL: 'x@x', GIT_COMMITTER_NAME: 'x', GIT_COMMITTER_EMAIL: 'x@x' } });
}

describe('what a manifest may name', () => {
  it('accepts only sha256 digests of 64 lowercase hex digits', () => {
    expect(isDigest(`sha256:${'a'.repeat(64)}`)).toBe(true);
    for (const bad of ['sha256:../../../../etc/hostname', `sha256:${'A'.repeat(64)}`, `sha256:${'a'.repeat(63)}`, `sha512:${'a'.repeat(128)}`, `sha256:${'a'.repeat(64)}/x`, `sha256:${'a'.repeat(64)}\n`, '', 42]) {
      expect(isDigest(bad), String(bad)).toBe(false);
    }
  });

  it('accepts only relative paths that stay in their folder', () => {
    for (const ok of ['model.onnx', 'weights/w.bin', './w.bin', 'a..b']) expect(isConfinedPath(ok), ok).toBe(true);
    for (const bad of ['', '.', './', '..', '../x', 'a/../../x', 'a/../b', '/etc/passwd', 'a\\..\\b', 'a\0b', 'x'.repeat(5000), 7]) {
      expect(isConfinedPath(bad), String(bad)).toBe(false);
    }
  });
});

describe('hostile manifests in the registry itself', () => {
  it('verify reports layer paths and a model file that leave the version folder', async () => {
    const cases: [string, (m: any) => void][] = [
      ['layer path', (m) => (m.layers[1].annotations['org.cncf.model.filepath'] = '../../../../../sentinel/pwned')],
      ['model file', (m) => {
        const onnx = JSON.parse(m.annotations['dev.maas.onnx.v1+json']);
        onnx.modelFile = '/etc/passwd';
        m.annotations['dev.maas.onnx.v1+json'] = JSON.stringify(onnx);
      }],
      ['layer digest', (m) => (m.layers[0].digest = 'sha256:../../../../etc/hostname')],
    ];
    for (const [label, edit] of cases) {
      const reg = await withExternal();
      expect((await reg.cli('verify')).exitCode, label).toBe(0);
      editManifest(reg, edit);
      const verify = await reg.cli('verify', '--json');
      expect(verify.exitCode, label).toBe(8);
      expect(verify.json().problems, label).toEqual([expect.objectContaining({ kind: 'bad-manifest', ref: 'ext@1' })]);
    }
  });

  it('push refuses a layer digest that names another file instead of uploading it', async () => {
    const reg = await withExternal();
    // blobs/sha256/../../../secret.txt is the registry's parent folder: a file the user never registered.
    const secret = 'the contents of a file outside the registry';
    writeFileSync(join(reg.home, 'secret.txt'), secret);
    editManifest(reg, (m) => {
      m.layers[1].digest = 'sha256:../../../secret.txt';
      m.layers[1].size = secret.length;
    });
    const layout = join(reg.work, 'export');
    const r = await reg.cli('push', 'ext@1', `oci-layout:${layout}`, '--json');
    expect(r.exitCode).toBe(3);
    expect(r.json().error.message).toContain('sha256:../../../secret.txt');
    const leaked = existsSync(layout) ? readdirSync(layout, { recursive: true }).filter((f) => String(f).includes('secret')) : [];
    expect(leaked).toEqual([]);
    expect(existsSync(join(reg.home, 'secret.txt'))).toBe(true);
  });

  it('serve confines layer files by real path, whatever the record and the folder hold', async () => {
    const reg = await withExternal();
    const sentinel = join(reg.home, 'sentinel');
    mkdirSync(sentinel);
    const registry = await Registry.open({ cwd: reg.dir, env: reg.env });
    const good = registry.readVersion('ext', 1);
    const record = (filepath: string, modelFile = good.onnx.modelFile) => {
      const copy = structuredClone(good);
      copy.manifest.layers[1]!.annotations!['org.cncf.model.filepath'] = filepath;
      copy.onnx.modelFile = modelFile;
      return copy;
    };
    expect(() => modelPath(registry, record('../../../../sentinel/pwned'))).toThrow(/leaves the version's folder/);
    expect(() => modelPath(registry, record('mlp_external.onnx.data', '../../../sentinel/model.onnx'))).toThrow(/leaves the version's folder/);
    // A folder on the way that is a symlink out of .maas/serve (planted, or left by an old version).
    const serveDir = join(reg.dir, '.maas/serve', good.manifestDigest.slice(7));
    mkdirSync(serveDir, { recursive: true });
    symlinkSync(sentinel, join(serveDir, 'weights'));
    expect(() => modelPath(registry, record('weights/mlp_external.onnx.data'))).toThrow(/leaves the version's folder/);
    expect(() => modelPath(registry, record('weights/deeper/mlp_external.onnx.data'))).toThrow(/leaves the version's folder/);
    // A layer file that is a symlink where the hard link belongs.
    symlinkSync(join(sentinel, 'target'), join(serveDir, 'mlp_external.onnx.data'));
    expect(() => modelPath(registry, good)).toThrow(/leaves the version's folder/);
    expect(readdirSync(sentinel)).toEqual([]);
    expect(readdirSync(reg.home).filter((f) => f.includes('pwned') || f.includes('model.onnx'))).toEqual([]);
  });
});
