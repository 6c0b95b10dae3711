/**
 * `maas push --modelcar` and the reproducible tar under it: the version as a KServe modelcar image
 * (an index of linux images whose last layer adds /models), to an OCI layout and through a real
 * registry and skopeo, checked as a container runtime would see it: a valid image config, and
 * the model's bytes under /models.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tar from 'tar';
import { describe, expect, it } from 'vitest';
import { type TarEntry, writeTar } from '../../src/remote/tar-layer.js';
import { HAVE_REGISTRY, REQUIRE_TOOLS, skopeo, startOciRegistry } from '../helpers/oci-registry.js';
import { extractLayer, imageOf, layerEntries, writeBaseLayout } from '../helpers/oci-image.js';
import { makeRegistry, type TestRegistry } from '../helpers/registry.js';
import { useTempDir } from '../helpers/temp.js';

const sha256 = (path: string) => `sha256:${createHash('sha256').update(readFileSync(path)).digest('hex')}`;

async function registered(): Promise<TestRegistry> {
  const reg = await makeRegistry();
  reg.fixture('mlp_external.onnx.data');
  const r = await reg.cli('register', reg.fixture('mlp_external.onnx'), '--name', 'mlp', '--json');
  expect(r.exitCode, r.stdout + r.stderr).toBe(0);
  return reg;
}

const versionFiles = (reg: TestRegistry) => JSON.parse(readFileSync(join(reg.dir, 'models/mlp/1/manifest.json'), 'utf8')) as { layers: { digest: string; size: number; annotations: Record<string, string> }[] };

/** The files of the version under `root`/models, byte for byte (sha256), each where the manifest names it. */
function expectModelFiles(reg: TestRegistry, root: string): void {
  for (const layer of versionFiles(reg).layers) expect(sha256(join(root, 'models', layer.annotations['org.cncf.model.filepath']!))).toBe(layer.digest);
}

describe('the reproducible tar writer', () => {
  it('streams a file of several chunks, pads it, links, and writes the same bytes twice; a long path goes in a PAX header', async () => {
    const dir = useTempDir();
    const big = join(dir, 'big.bin');
    writeFileSync(big, randomBytes((9 << 20) + 77)); // three 4 MiB reads, an odd tail
    const long = `models/${'d'.repeat(120)}/${'f'.repeat(150)}.bin`;
    const entries: TarEntry[] = [
      { type: 'Directory', path: 'models' },
      { type: 'File', path: 'models/big.bin', size: statSync(big).size, source: big },
      { type: 'File', path: long, size: 3, source: Buffer.from('abc') },
      { type: 'Link', path: 'models/again.bin', linkpath: 'models/big.bin' },
    ];
    const [a, b] = [join(dir, 'a.tar'), join(dir, 'b.tar')];
    const written = await writeTar(entries, a);
    await writeTar(entries, b);
    expect(readFileSync(a).equals(readFileSync(b))).toBe(true);
    expect(written).toEqual({ digest: sha256(a), size: statSync(a).size });
    const out = join(dir, 'out');
    mkdirSync(out);
    await tar.x({ file: a, cwd: out, strict: true });
    expect(sha256(join(out, 'models/big.bin'))).toBe(sha256(big));
    expect(statSync(join(out, 'models/again.bin')).ino).toBe(statSync(join(out, 'models/big.bin')).ino);
    expect(readFileSync(join(out, long), 'utf8')).toBe('abc');
  });
});

describe('push --modelcar to an OCI image layout', () => {
  it('adds an image index of linux images whose layer holds the model under /models, reproducibly', async () => {
    const reg = await registered();
    const out = join(reg.work, 'out');
    const r = await reg.cli('push', 'mlp@1', `oci-layout:${out}`, '--modelcar', '--json');
    expect(r.exitCode, r.stdout + r.stderr).toBe(0);
    const { modelcar, manifestDigest } = r.json();
    expect(modelcar).toMatchObject({ tags: ['1-modelcar'], status: 'pushed', platforms: ['linux/amd64', 'linux/arm64'], digest: expect.stringMatching(/^sha256:/) });
    expect(modelcar.base).toBeUndefined();

    const { manifest, config, index, digest } = imageOf(out, '1-modelcar');
    expect(digest).toBe(modelcar.digest);
    expect(index!.annotations).toMatchObject({ 'dev.maas.modelpack.digest': manifestDigest, 'org.opencontainers.image.title': 'mlp', 'org.opencontainers.image.version': '1' });
    expect(index!.manifests.map((m) => m.platform)).toEqual([{ architecture: 'amd64', os: 'linux' }, { architecture: 'arm64', os: 'linux' }]);
    expect(manifest.config.mediaType).toBe('application/vnd.oci.image.config.v1+json');
    expect(manifest.layers).toEqual([{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: modelcar.layer.digest, size: modelcar.layer.size }]);
    // A plain tar layer: its diff_id is its digest.
    expect(config).toMatchObject({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [modelcar.layer.digest] } });
    expect(config.history).toHaveLength(1);

    const entries = await layerEntries(out, modelcar.layer.digest);
    expect(entries.every((e) => e.path.startsWith('models/') && e.mtime?.toISOString() === '1985-10-26T08:15:00.000Z' && e.uid === 0)).toBe(true);
    // Each weight is in the layer once: the Triton and OCI layout views are hard links to it.
    const files = versionFiles(reg).layers;
    expect(entries.filter((e) => e.type === 'File' && files.some((f) => e.path === `models/${f.annotations['org.cncf.model.filepath']}`))).toHaveLength(files.length);
    expect(entries).toContainEqual({ path: 'models/mlp/1/model.onnx', type: 'Link', linkpath: 'models/mlp_external.onnx', mtime: expect.any(Date), uid: 0 });
    expect(entries).toContainEqual({ path: 'models/mlp/1/mlp_external.onnx.data', type: 'Link', linkpath: 'models/mlp_external.onnx.data', mtime: expect.any(Date), uid: 0 });

    const root = join(reg.work, 'rootfs');
    await extractLayer(out, modelcar.layer.digest, root);
    expectModelFiles(reg, root);
    expect(sha256(join(root, 'models/mlp/1/model.onnx'))).toBe(sha256(join(reg.work, 'mlp_external.onnx')));
    expect(statSync(join(root, 'models/mlp/1/model.onnx')).ino).toBe(statSync(join(root, 'models/mlp_external.onnx')).ino);

    // /models/mlp is the version as pushed: another registry pulls it with the same manifest digest.
    const other = await makeRegistry();
    const pulled = await other.cli('pull', `oci-layout:${join(root, 'models/mlp')}:1`, '--json');
    expect(pulled.exitCode, pulled.stdout).toBe(0);
    expect(pulled.json()).toMatchObject({ name: 'mlp', version: 1, manifestDigest });

    // The same version makes the same image, byte for byte; a remote that has it gets nothing.
    const again = await reg.cli('push', 'mlp@1', `oci-layout:${join(reg.work, 'out2')}`, '--modelcar', '--json');
    expect(again.json().modelcar.digest).toBe(modelcar.digest);
    const repeat = await reg.cli('push', 'mlp@1', `oci-layout:${out}`, '--modelcar', '--json');
    expect(repeat.json().modelcar).toMatchObject({ status: 'present', digest: modelcar.digest, bytesSent: 0 });
  });

  it("carries a signed version's model.sig under /models and its signature in the version's layout", async () => {
    const reg = await registered();
    const key = join(reg.work, 'key.pem');
    expect((await reg.cli('keygen', '-o', key)).exitCode).toBe(0);
    expect((await reg.cli('sign', 'mlp@1', '--key', key)).exitCode).toBe(0);
    const out = join(reg.work, 'out');
    const { modelcar } = (await reg.cli('push', 'mlp@1', `oci-layout:${out}`, '--modelcar', '--json')).json();
    const root = join(reg.work, 'rootfs');
    await extractLayer(out, modelcar.layer.digest, root);
    const signature = JSON.parse(readFileSync(join(root, 'models/model.sig'), 'utf8'));
    expect(signature.mediaType).toBe('application/vnd.dev.sigstore.bundle.v0.3+json');
    const inner = JSON.parse(readFileSync(join(root, 'models/mlp/index.json'), 'utf8')) as { manifests: { artifactType?: string }[] };
    expect(inner.manifests.map((m) => m.artifactType)).toContain('application/vnd.dev.sigstore.bundle.v0.3+json');
  });

  it('layers /models on a base image from a layout, keeping its layers and history', async () => {
    const reg = await registered();
    const baseDir = join(reg.work, 'base');
    const base = await writeBaseLayout(baseDir, '1.0');
    const out = join(reg.work, 'out');
    const r = await reg.cli('push', 'mlp@1', `oci-layout:${out}`, '--modelcar', '--modelcar-base', `oci-layout:${baseDir}:1.0`, '--json');
    expect(r.exitCode, r.stdout + r.stderr).toBe(0);
    const { modelcar } = r.json();
    expect(modelcar).toMatchObject({ platforms: ['linux/amd64'], base: { name: `oci-layout:${baseDir}:1.0`, digest: expect.stringMatching(/^sha256:/) } });
    const { manifest, config, index } = imageOf(out, '1-modelcar');
    expect(manifest.layers.map((l) => l.digest)).toEqual([base.layerDigest, modelcar.layer.digest]);
    expect(config).toMatchObject({ architecture: 'amd64', os: 'linux', config: { Cmd: ['sh'] }, rootfs: { diff_ids: [base.diffId, modelcar.layer.digest] } });
    expect(config.history).toHaveLength(2);
    expect(index!.annotations).toMatchObject({ 'org.opencontainers.image.base.name': `oci-layout:${baseDir}:1.0`, 'org.opencontainers.image.base.digest': modelcar.base.digest });
    const root = join(reg.work, 'rootfs');
    for (const layer of manifest.layers) await extractLayer(out, layer.digest, root);
    expect(readFileSync(join(root, 'bin/sh'), 'utf8')).toContain('#!');
    expectModelFiles(reg, root);
  });

  it('refuses a base without a tag, before anything is pushed', async () => {
    const reg = await registered();
    const out = join(reg.work, 'out');
    const r = await reg.cli('push', 'mlp@1', `oci-layout:${out}`, '--modelcar', '--modelcar-base', 'oci://registry.example.com/busybox', '--json');
    expect(r.exitCode).toBe(2);
    expect(r.json().error).toMatchObject({ code: 'MAAS_USAGE', hint: expect.stringContaining('busybox:1.37') });
    expect(() => statSync(out)).toThrow();
  });

  it('refuses --modelcar-base without --modelcar on the command line, not from MAAS_MODELCAR_BASE', async () => {
    const reg = await registered();
    const out = join(reg.work, 'out');
    const r = await reg.cli('push', 'mlp@1', `oci-layout:${out}`, '--modelcar-base', 'oci://registry.example.com/busybox:1.37', '--json');
    expect(r.exitCode).toBe(2);
    expect(r.json().error).toMatchObject({ code: 'MAAS_USAGE', hint: expect.stringContaining('--modelcar') });
    expect(() => statSync(out)).toThrow();
    const { runCli } = await import('../helpers/run-cli.js');
    const fromEnv = await runCli(['push', 'mlp@1', `oci-layout:${out}`, '--json'], { cwd: reg.dir, env: { ...reg.env, MAAS_MODELCAR_BASE: 'oci://registry.example.com/busybox:1.37' } });
    expect(fromEnv.exitCode, fromEnv.stderr).toBe(0);
  });
});

describe.skipIf(!HAVE_REGISTRY && !REQUIRE_TOOLS)('push --modelcar through a real registry (docker-registry on loopback)', () => {
  it('round-trips through skopeo copy to an OCI layout whose filesystem has the model under /models', async () => {
    const oci = await startOciRegistry('none');
    const reg = await registered();
    // A base as Docker Hub serves busybox: Docker schema 2 media types, copied in by skopeo.
    const baseDir = join(reg.work, 'base');
    const base = await writeBaseLayout(baseDir);
    await skopeo(['copy', '--format', 'v2s2', '--dest-tls-verify=false', `oci:${baseDir}:1`, `docker://${oci.host}/base/busybox:1`], reg.home);

    const pushed = await reg.cli('push', 'mlp@1', `oci://${oci.host}/team/mlp`, '--modelcar', '--modelcar-base', `oci://${oci.host}/base/busybox:1`, '--json');
    expect(pushed.exitCode, pushed.stdout + pushed.stderr).toBe(0);
    const { modelcar } = pushed.json();
    expect(modelcar).toMatchObject({ repository: `${oci.host}/team/mlp`, tags: ['1-modelcar'], status: 'pushed', base: { name: `${oci.host}/base/busybox:1` } });
    const raw = JSON.parse(await skopeo(['inspect', '--raw', '--tls-verify=false', `docker://${oci.host}/team/mlp:1-modelcar`], reg.home));
    expect(raw.mediaType).toBe('application/vnd.oci.image.index.v1+json');
    expect(JSON.parse(await skopeo(['list-tags', '--tls-verify=false', `docker://${oci.host}/team/mlp`], reg.home)).Tags.sort()).toEqual(['1', '1-modelcar']);

    const copy = join(reg.work, 'copy');
    await skopeo(['copy', '--src-tls-verify=false', `docker://${oci.host}/team/mlp:1-modelcar`, `oci:${copy}:1-modelcar`], reg.home);
    const { manifest, config } = imageOf(copy, '1-modelcar');
    expect(manifest.layers).toHaveLength(2);
    // skopeo may compress on the way; the diff_ids name the uncompressed layers either way.
    expect(config.rootfs.diff_ids).toEqual([base.diffId, modelcar.layer.digest]);
    const root = join(reg.work, 'rootfs');
    for (const layer of manifest.layers) await extractLayer(copy, layer.digest, root);
    expectModelFiles(reg, root);
    expect(imageOf(join(root, 'models/mlp'), '1').digest).toBe(pushed.json().manifestDigest);

    const again = await reg.cli('push', 'mlp@1', `oci://${oci.host}/team/mlp`, '--modelcar', '--modelcar-base', `oci://${oci.host}/base/busybox:1`, '--json');
    expect(again.json().modelcar).toMatchObject({ status: 'present', digest: modelcar.digest, bytesSent: 0 });
  });
});
