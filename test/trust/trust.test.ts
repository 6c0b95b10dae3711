/**
 * The trust chain from register to serve, through the CLI: keygen, sign, verify --signatures on
 * every tampering case, signatures as OCI referrers on a real docker-registry (skopeo sees the
 * referrers tag), pull --require-signature into a fresh registry, serve refusing unsigned and
 * tampered versions while the signed ones answer, provenance of conversions, and push --sbom.
 */
import { createHash, createPublicKey, verify as cryptoVerify } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { mlp, writeModel } from '../../fixtures/models.js';
import { OciLayout } from '../../src/remote/layout.js';
import { pushLayoutReferrers } from '../../src/remote/referrers.js';
import { preAuthEncoding } from '../../src/trust/model-signing.js';
import { HAVE_REGISTRY, REQUIRE_TOOLS, skopeo, startOciRegistry } from '../helpers/oci-registry.js';
import { makeRegistry, type TestRegistry } from '../helpers/registry.js';
import { runCli } from '../helpers/run-cli.js';
import { serveRegistry } from '../helpers/serve.js';

const INPUT = { inputs: [{ name: 'input', shape: [1, 4], datatype: 'FP32', data: [1, 2, 3, 4] }] };

/** A registry with mlp@1 (signed by key.pem), the key pair in its work folder, and a second key. */
async function signedRegistry(): Promise<TestRegistry & { key: string; pub: string; otherKey: string; otherPub: string }> {
  const reg = await makeRegistry();
  expect((await reg.cli('register', reg.fixture('mlp.onnx'), '--name', 'mlp')).exitCode).toBe(0);
  const key = join(reg.work, 'key.pem');
  const otherKey = join(reg.work, 'other.pem');
  expect((await reg.cli('keygen', '-o', key)).exitCode).toBe(0);
  expect((await reg.cli('keygen', '-o', otherKey, '--curve', 'P-384')).exitCode).toBe(0);
  const signed = await reg.cli('sign', 'mlp@1', '--key', key, '--json');
  expect(signed.exitCode, signed.stderr).toBe(0);
  return { ...reg, key, pub: join(reg.work, 'key.pub.pem'), otherKey, otherPub: join(reg.work, 'other.pub.pem') };
}

const manifestPath = (reg: TestRegistry, name: string, version: number) => join(reg.dir, 'models', name, String(version), 'manifest.json');
const attestationsDir = (reg: TestRegistry, name: string, version: number) => join(reg.dir, 'models', name, String(version), 'attestations');

async function checkSignatures(reg: TestRegistry, ref: string, pub: string) {
  const r = await reg.cli('verify', ref, '--signatures', '--key', pub, '--json');
  return { exitCode: r.exitCode, report: r.json().signatures as { ok: boolean; versions: { ref: string; ok: boolean; signatures: { ok: boolean; reason?: string; message?: string }[] }[] } };
}

describe('keygen, sign and verify --signatures', () => {
  it('signs every file of a version, shows it, verifies it, and a second sign with the same key is a no-op', async () => {
    const reg = await signedRegistry();
    const show = (await reg.cli('show', 'mlp@1', '--json')).json();
    expect(show.attestations).toEqual([expect.objectContaining({ kind: 'signature', signed: true, keyHint: expect.stringMatching(/^[0-9a-f]{64}$/) })]);
    expect((await reg.cli('show', 'mlp@1')).stdout).toMatch(/attestations\n\s+signature\s+key [0-9a-f]{16}/);
    const ok = await checkSignatures(reg, 'mlp@1', reg.pub);
    expect(ok.exitCode).toBe(0);
    expect(ok.report.versions).toEqual([expect.objectContaining({ ref: 'mlp@1', ok: true })]);
    const again = await reg.cli('sign', 'mlp@1', '--key', reg.key, '--json');
    expect(again.json()).toMatchObject({ status: 'unchanged' });
    expect(readdirSync(attestationsDir(reg, 'mlp', 1))).toHaveLength(1);
    // the signature is committed, with a history line
    expect(execFileSync('git', ['status', '--porcelain'], { cwd: reg.dir }).toString()).toBe('');
    expect(readFileSync(join(reg.dir, 'history.jsonl'), 'utf8')).toContain('"action":"attest"');
  });

  it('writes model.sig with -o, signs from MAAS_SIGNING_KEY holding the PEM, and refuses without a key (exit 2)', async () => {
    const reg = await signedRegistry();
    const out = await reg.cli('sign', 'mlp@1', '--key', reg.key, '-o', join(reg.work, 'model.sig'), '--json');
    expect(JSON.parse(readFileSync(join(reg.work, 'model.sig'), 'utf8')).mediaType).toBe('application/vnd.dev.sigstore.bundle.v0.3+json');
    expect(out.json().output).toBe(join(reg.work, 'model.sig'));
    const env = { ...reg.env, MAAS_SIGNING_KEY: readFileSync(reg.otherKey, 'utf8') };
    const fromEnv = await runCli(['sign', 'mlp@1', '--json'], { cwd: reg.dir, env });
    expect(fromEnv.exitCode, fromEnv.stderr).toBe(0);
    expect(readdirSync(attestationsDir(reg, 'mlp', 1))).toHaveLength(2);
    expect((await checkSignatures(reg, 'mlp@1', reg.otherPub)).exitCode).toBe(0);
    const none = await reg.cli('sign', 'mlp@1', '--json');
    expect(none.exitCode).toBe(2);
    expect(none.json().error.hint).toContain('maas keygen');
    const clobber = await reg.cli('keygen', '-o', reg.key);
    expect(clobber.exitCode).toBe(2);
  });

  it('refuses an unsigned version, and a signature from a key it does not trust (exit 8)', async () => {
    const reg = await signedRegistry();
    writeModel(reg.work, 'other.onnx', mlp({ seed: 7 }));
    await reg.cli('register', join(reg.work, 'other.onnx'), '--name', 'other');
    const unsigned = await checkSignatures(reg, 'other@1', reg.pub);
    expect(unsigned.exitCode).toBe(8);
    expect(unsigned.report.versions[0]).toMatchObject({ ok: false, signatures: [] });
    const wrongKey = await checkSignatures(reg, 'mlp@1', reg.otherPub);
    expect(wrongKey.exitCode).toBe(8);
    expect(wrongKey.report.versions[0]!.signatures[0]).toMatchObject({ ok: false, reason: 'key-not-trusted' });
    // the whole registry: one good, one unsigned
    const all = await reg.cli('verify', '--signatures', '--key', reg.pub);
    expect(all.exitCode).toBe(8);
    expect(all.stdout).toMatch(/other@1 is not signed[\s\S]*1 of 2 versions without a signature/);
  });

  it('fails on every tampering: a changed byte, an added, a removed or a swapped file, a changed manifest, a swapped subject', async () => {
    const reg = await signedRegistry();
    writeModel(reg.work, 'ext.onnx', mlp({ externalData: 'ext.onnx.data' }), 'ext.onnx.data');
    await reg.cli('register', join(reg.work, 'ext.onnx'), '--name', 'ext');
    await reg.cli('sign', 'ext@1', '--key', reg.key);
    expect((await checkSignatures(reg, 'ext@1', reg.pub)).exitCode).toBe(0);
    const original = readFileSync(manifestPath(reg, 'ext', 1), 'utf8');
    const editManifest = (edit: (m: any) => void) => {
      const m = JSON.parse(original);
      edit(m);
      writeFileSync(manifestPath(reg, 'ext', 1), JSON.stringify(m, null, 2));
    };
    const reasonOf = async () => {
      const r = await checkSignatures(reg, 'ext@1', reg.pub);
      expect(r.exitCode).toBe(8);
      return r.report.versions[0]!.signatures[0]!.reason;
    };

    // a changed byte in a file: the blob no longer matches the manifest that was signed
    const layers = JSON.parse(original).layers as { digest: string; annotations: Record<string, string> }[];
    const data = layers.find((l) => l.annotations['org.cncf.model.filepath'] === 'ext.onnx.data')!;
    const blob = join(reg.dir, 'blobs/sha256', data.digest.slice(7));
    const bytes = readFileSync(blob);
    const flipped = Buffer.from(bytes);
    flipped[10] = flipped[10]! ^ 1;
    writeFileSync(blob, flipped);
    const changedByte = await reg.cli('verify', 'ext@1', '--signatures', '--key', reg.pub, '--json');
    expect(changedByte.exitCode).toBe(8);
    expect(JSON.stringify(changedByte.json().problems)).toContain(data.digest);
    writeFileSync(blob, bytes);

    editManifest((m) => m.layers.push({ ...m.layers[0], annotations: { 'org.cncf.model.filepath': 'extra.bin', 'org.opencontainers.image.title': 'extra.bin' } }));
    expect(await reasonOf()).toBe('file-added');
    editManifest((m) => m.layers.splice(m.layers.findIndex((l: any) => l.annotations['org.cncf.model.filepath'] === 'ext.onnx.data'), 1));
    expect(await reasonOf()).toBe('file-missing');
    // a changed manifest: a layer pointing at other bytes (mlp@1's model) under the signed name
    const mlpLayer = JSON.parse(readFileSync(manifestPath(reg, 'mlp', 1), 'utf8')).layers[0];
    editManifest((m) => Object.assign(m.layers.find((l: any) => l.annotations['org.cncf.model.filepath'] === 'ext.onnx.data'), { digest: mlpLayer.digest, size: mlpLayer.size }));
    expect(await reasonOf()).toBe('digest-mismatch');
    writeFileSync(manifestPath(reg, 'ext', 1), original);

    // a swapped subject: mlp@1's (valid) signature put beside ext@1
    const [sigFile] = readdirSync(attestationsDir(reg, 'ext', 1));
    const extSig = readFileSync(join(attestationsDir(reg, 'ext', 1), sigFile!));
    const [mlpSig] = readdirSync(attestationsDir(reg, 'mlp', 1));
    writeFileSync(join(attestationsDir(reg, 'ext', 1), sigFile!), readFileSync(join(attestationsDir(reg, 'mlp', 1), mlpSig!)));
    expect(['files-differ', 'file-missing', 'file-added', 'digest-mismatch']).toContain(await reasonOf());
    // a statement edited to name other files: the signature no longer covers it
    const bundle = JSON.parse(extSig.toString());
    const statement = JSON.parse(Buffer.from(bundle.dsseEnvelope.payload, 'base64').toString());
    statement.subject[0].digest.sha256 = '0'.repeat(64);
    bundle.dsseEnvelope.payload = Buffer.from(JSON.stringify(statement)).toString('base64');
    writeFileSync(join(attestationsDir(reg, 'ext', 1), sigFile!), JSON.stringify(bundle));
    expect(await reasonOf()).toBe('signature-invalid');
    writeFileSync(join(attestationsDir(reg, 'ext', 1), sigFile!), extSig);
    expect((await checkSignatures(reg, 'ext@1', reg.pub)).exitCode).toBe(0);
  });
});

describe('provenance of conversions', () => {
  it('register --fp16 --sign-key stores a signed SLSA provenance naming the source and the output, and a signature', async () => {
    const reg = await signedRegistry();
    const source = reg.fixture('mlp.onnx');
    const r = await reg.cli('register', source, '--name', 'mlp', '--fp16', '--sign-key', reg.key, '--json');
    expect(r.exitCode, r.stderr).toBe(0);
    const { version, manifestDigest } = r.json();
    expect(r.json().attested.map((a: any) => a.kind).sort()).toEqual(['provenance', 'signature']);
    const show = (await reg.cli('show', `mlp@${version}`, '--json')).json();
    const provenance = show.attestations.find((a: any) => a.kind === 'provenance');
    expect(provenance).toMatchObject({ signed: true, predicateType: 'https://slsa.dev/provenance/v1' });
    const bundle = JSON.parse(readFileSync(join(reg.dir, provenance.path), 'utf8'));
    // the DSSE signature over the PAE, checked with node:crypto against the public key file
    const payload = Buffer.from(bundle.dsseEnvelope.payload, 'base64');
    const pae = preAuthEncoding(bundle.dsseEnvelope.payloadType, payload);
    expect(cryptoVerify('sha256', pae, { key: createPublicKey(readFileSync(reg.pub)), dsaEncoding: 'der' }, Buffer.from(bundle.dsseEnvelope.signatures[0].sig, 'base64'))).toBe(true);
    const statement = JSON.parse(payload.toString());
    expect(statement.subject[0]).toEqual({ name: `mlp@${version}`, digest: { sha256: manifestDigest.slice(7) } });
    const sourceDigest = execFileSync('sha256sum', [source]).toString().split(' ')[0];
    const material = statement.predicate.buildDefinition.resolvedDependencies[0];
    // the source is mlp@1's bytes: named by its version too
    expect(material).toMatchObject({ digest: { sha256: sourceDigest }, uri: 'maas:mlp@1' });
    expect(statement.predicate.buildDefinition.externalParameters).toMatchObject({ steps: expect.arrayContaining([expect.stringContaining('fp16')]), flags: { fp16: true } });
    const report = JSON.parse(Buffer.from(statement.predicate.runDetails.byproducts[0].content, 'base64').toString());
    expect(report).toMatchObject({ passed: true, samples: expect.any(Number) });

    // pushed as a referrer of its own, with Sigstore's predicateType annotation, and pulled back
    const layout = join(reg.work, 'layout');
    expect((await reg.cli('push', `mlp@${version}`, `oci-layout:${layout}`)).exitCode).toBe(0);
    const listed = JSON.parse(readFileSync(join(layout, 'index.json'), 'utf8')).manifests.map((m: any) => m.annotations?.['dev.sigstore.bundle.predicateType']).filter(Boolean);
    expect(listed.sort()).toEqual(['https://model_signing/signature/v1.0', 'https://slsa.dev/provenance/v1']);
    const other = await makeRegistry();
    const pulled = await other.cli('pull', `oci-layout:${layout}:${version}`, '--json');
    expect(pulled.json().attestations).toEqual({ signature: 1, provenance: 1 });
  });

  it('convert writes an unsigned provenance beside its output, and with a key a signature of the file', async () => {
    const reg = await signedRegistry();
    const out = join(reg.work, 'mlp.fp16.onnx');
    const r = await reg.cli('convert', 'mlp@1', '--fp16', '-o', out, '--no-latency', '--json');
    expect(r.exitCode, r.stderr).toBe(0);
    const statement = JSON.parse(readFileSync(`${out}.provenance.json`, 'utf8'));
    expect(statement).toMatchObject({ _type: 'https://in-toto.io/Statement/v1', predicateType: 'https://slsa.dev/provenance/v1' });
    expect(statement.subject[0].digest.sha256).toBe(r.json().output.digest.slice(7));
    expect(statement.predicate.buildDefinition.resolvedDependencies[0].uri).toBe('maas:mlp@1');
    const signed = await reg.cli('convert', 'mlp@1', '--fp16', '-o', join(reg.work, 'b.onnx'), '--no-latency', '--sign-key', reg.key, '--json');
    expect(signed.json().attested.map((a: any) => a.kind)).toEqual(['provenance', 'signature']);
    expect(existsSync(join(reg.work, 'b.onnx.sig'))).toBe(true);
  });
});

describe('pack carries the signature', () => {
  it('writes model.sig into the archive and import brings the signature back', async () => {
    const reg = await signedRegistry();
    const archive = join(reg.work, 'mlp.tar');
    expect((await reg.cli('pack', 'mlp@1', '-o', archive)).exitCode).toBe(0);
    expect(execFileSync('tar', ['tf', archive]).toString()).toContain('model.sig');
    const other = await makeRegistry();
    const imported = await other.cli('import', archive, '--json');
    expect(imported.exitCode, imported.stderr).toBe(0);
    expect(imported.json().attestations).toEqual({ signature: 1 });
    expect((await other.cli('verify', 'mlp@1', '--signatures', '--key', reg.pub)).exitCode).toBe(0);
  });
});

describe.skipIf(!HAVE_REGISTRY && !REQUIRE_TOOLS)('signatures on a real registry (docker-registry on loopback)', () => {
  it('pushes the signature as a referrer (tag schema), pulls it into a fresh registry under --require-signature, and refuses the unsigned', async () => {
    const oci = await startOciRegistry('none');
    const reg = await signedRegistry();
    const target = `oci://${oci.host}/team/mlp`;
    const pushed = await reg.cli('push', 'mlp@1', target, '--sbom', '--json');
    expect(pushed.exitCode, pushed.stderr).toBe(0);
    // distribution 2.8 has no referrers API: maas keeps the sha256-<hex> tag
    expect(pushed.json().referrers).toMatchObject({ pushed: 2, via: 'tag schema' });
    const manifestDigest = pushed.json().manifestDigest as string;
    const tags = JSON.parse(await skopeo(['list-tags', '--tls-verify=false', `docker://${oci.host}/team/mlp`], reg.home)).Tags as string[];
    expect(tags.sort()).toEqual(['1', manifestDigest.replace(':', '-')].sort());
    const index = JSON.parse(await skopeo(['inspect', '--raw', '--tls-verify=false', `docker://${oci.host}/team/mlp:${manifestDigest.replace(':', '-')}`], reg.home));
    expect(index.manifests.map((m: any) => m.artifactType).sort()).toEqual(['application/vnd.cyclonedx+json', 'application/vnd.dev.sigstore.bundle.v0.3+json']);

    const fresh = await makeRegistry();
    const to = join(fresh.work, 'mlp-1');
    const pulled = await fresh.cli('pull', `${target}:1`, '--require-signature', '--key', reg.pub, '--to', to, '--json');
    expect(pulled.exitCode, pulled.stderr).toBe(0);
    expect(pulled.json()).toMatchObject({ attestations: { signature: 1, sbom: 1 }, signatures: [expect.objectContaining({ ok: true })] });
    expect(readdirSync(to).sort()).toEqual(['mlp.onnx', 'model.sig']);
    expect((await fresh.cli('verify', 'mlp@1', '--signatures', '--key', reg.pub)).exitCode).toBe(0);

    // a key it does not trust, then a version nobody signed: refused before a blob comes (exit 8)
    const wrong = await makeRegistry();
    const refused = await wrong.cli('pull', `${target}:1`, '--require-signature', '--key', reg.otherPub, '--json');
    expect(refused.exitCode).toBe(8);
    expect(refused.json().error).toMatchObject({ code: 'MAAS_VERIFY_FAILED' });
    expect(existsSync(join(wrong.dir, 'models'))).toBe(false);
    expect(existsSync(join(wrong.dir, 'blobs/sha256')) ? readdirSync(join(wrong.dir, 'blobs/sha256')) : []).toEqual([]);
    writeModel(reg.work, 'other.onnx', mlp({ seed: 3 }));
    await reg.cli('register', join(reg.work, 'other.onnx'), '--name', 'other');
    await reg.cli('push', 'other@1', `oci://${oci.host}/team/other`);
    // maas.yaml's policy, without flags
    mkdirSync(join(wrong.dir, 'keys'));
    copyFileSync(reg.pub, join(wrong.dir, 'keys/publisher.pem'));
    writeFileSync(join(wrong.dir, 'maas.yaml'), `${readFileSync(join(wrong.dir, 'maas.yaml'), 'utf8')}trust:\n  requireSignature: true\n  keys: keys/\n`);
    const unsigned = await wrong.cli('pull', `oci://${oci.host}/team/other:1`, '--json');
    expect(unsigned.exitCode).toBe(8);
    expect(unsigned.json().error.details).toMatchObject({ reason: 'unsigned' });
    expect((await wrong.cli('pull', `${target}:1`, '--json')).exitCode).toBe(0);
  });
});

describe('serve --require-signature', () => {
  it('refuses the unsigned version at start and a tampered one on hot reload and on a management load, while the signed one answers', async () => {
    const reg = await signedRegistry();
    writeModel(reg.work, 'other.onnx', mlp({ seed: 9 }));
    await reg.cli('register', join(reg.work, 'other.onnx'), '--name', 'other');
    // mlp@2 carries a signature of other bytes (mlp@1's, copied beside it): tampered
    writeModel(reg.work, 'mlp2.onnx', mlp({ seed: 11 }));
    await reg.cli('register', join(reg.work, 'mlp2.onnx'), '--name', 'mlp');
    mkdirSync(attestationsDir(reg, 'mlp', 2));
    const [sig] = readdirSync(attestationsDir(reg, 'mlp', 1));
    copyFileSync(join(attestationsDir(reg, 'mlp', 1), sig!), join(attestationsDir(reg, 'mlp', 2), sig!));
    await reg.cli('tag', 'mlp@1', 'prod');
    const server = await serveRegistry(reg, {
      targets: [{ name: 'mlp', selector: { kind: 'alias', alias: 'prod' } }, { name: 'other' }],
      trust: { requireSignature: true, key: reg.pub },
    });
    expect(server.logs.join('\n')).toMatch(/signatures required: 1 trusted key/);
    expect(server.logs.join('\n')).toMatch(/could not load other@1: other@1 is not signed/);
    expect((await server.post('/v2/models/mlp/infer', INPUT)).status).toBe(200);
    const refused = await server.post('/v2/models/other/infer', INPUT);
    expect(refused.status).toBe(503); // not "unknown": it says why it is not served
    expect(refused.json.error).toMatch(/^other@1 failed to load: other@1 is not signed/);

    // hot reload: prod moves to the tampered mlp@2
    await reg.cli('tag', 'mlp@2', 'prod');
    await expect.poll(() => server.logs.join('\n'), { timeout: 10_000 }).toMatch(/could not load mlp@2, still serving the previous version \(1\): mlp@2 has no signature that verifies/);
    const meta = await server.get('/v2/models/mlp');
    expect(meta.json.versions).toEqual(['1']);
    expect((await server.post('/v2/models/mlp/infer', INPUT)).status).toBe(200);
    // the alias keeps answering with the version it had, and the index says why 2 is out
    expect((await server.post('/v2/models/mlp/versions/prod/infer', INPUT)).status).toBe(200);
    const index = (await server.post('/v2/repository/index', {})).json as { name: string; version: string; reason: string }[];
    expect(index.find((s) => s.name === 'mlp' && s.version === '2')!.reason).toMatch(/failed to load: mlp@2 has no signature that verifies/);

    // a management load of the unsigned model: refused with the reason, nothing else disturbed
    const load = await server.post('/v2/repository/models/other/load', {});
    expect(load.status).toBe(422);
    expect(load.json.error).toContain('not signed');
    expect((await server.post('/v2/models/mlp/infer', INPUT)).status).toBe(200);
  });
});

describe('serve with trusted keys but no requirement', () => {
  it('serves unsigned versions and those signed by unknown keys, and refuses one a trusted key signed that was tampered with', async () => {
    const reg = await signedRegistry();
    writeModel(reg.work, 'other.onnx', mlp({ seed: 9 }));
    await reg.cli('register', join(reg.work, 'other.onnx'), '--name', 'other');
    writeModel(reg.work, 'third.onnx', mlp({ seed: 13 }));
    await reg.cli('register', join(reg.work, 'third.onnx'), '--name', 'third');
    await reg.cli('sign', 'third@1', '--key', reg.otherKey);
    // mlp@1's signature no longer matches: its manifest names another blob for its file
    const manifest = JSON.parse(readFileSync(manifestPath(reg, 'mlp', 1), 'utf8'));
    const otherLayer = JSON.parse(readFileSync(manifestPath(reg, 'other', 1), 'utf8')).layers[0];
    Object.assign(manifest.layers[0], { digest: otherLayer.digest, size: otherLayer.size });
    writeFileSync(manifestPath(reg, 'mlp', 1), JSON.stringify(manifest, null, 2));
    const server = await serveRegistry(reg, { trust: { key: reg.pub } });
    expect(server.logs.join('\n')).toMatch(/signatures checked when present: 1 trusted key/);
    expect((await server.post('/v2/models/other/infer', INPUT)).status).toBe(200);
    expect((await server.post('/v2/models/third/infer', INPUT)).status).toBe(200);
    expect(server.logs.join('\n')).toMatch(/could not load mlp@1: mlp@1 has no signature that verifies: .*mlp\.onnx/);
  });
});

describe('what arrives is checked before it is kept', () => {
  it('import --require-signature and maas.yaml trust refuse an unsigned archive; pull --to refuses a non-empty folder before fetching', async () => {
    const reg = await signedRegistry();
    writeModel(reg.work, 'other.onnx', mlp({ seed: 5 }));
    await reg.cli('register', join(reg.work, 'other.onnx'), '--name', 'other');
    const archive = join(reg.work, 'other.tar');
    await reg.cli('pack', 'other@1', '-o', archive);
    const fresh = await makeRegistry();
    const refused = await fresh.cli('import', archive, '--require-signature', '--key', reg.pub, '--json');
    expect(refused.exitCode).toBe(8);
    expect(refused.json().error.hint).toContain('Ask its publisher to sign it');
    writeFileSync(join(fresh.dir, 'maas.yaml'), `${readFileSync(join(fresh.dir, 'maas.yaml'), 'utf8')}trust:\n  requireSignature: true\n  keys: missing-keys/\n`);
    const badConfig = await fresh.cli('import', archive, '--json');
    expect(badConfig.exitCode).toBe(3);
    expect(badConfig.json().error.message).toContain("maas.yaml's trust");
    expect(existsSync(join(fresh.dir, 'models'))).toBe(false);

    const layout = join(reg.work, 'layout');
    await reg.cli('push', 'mlp@1', `oci-layout:${layout}`);
    const full = join(fresh.work, 'full');
    mkdirSync(full);
    writeFileSync(join(full, 'keep.txt'), 'mine');
    const other = await makeRegistry();
    const to = await other.cli('pull', `oci-layout:${layout}:1`, '--to', full, '--json');
    expect(to.exitCode).toBe(2);
    expect(existsSync(join(other.dir, 'models'))).toBe(false);
    expect(readdirSync(full)).toEqual(['keep.txt']);
  });

  it('refuses an artifact whose metadata lies about its model, drops a junk signature, and verify catches a committed manifest edit', async () => {
    const reg = await signedRegistry();
    const layout = join(reg.work, 'layout');
    await reg.cli('push', 'mlp@1', `oci-layout:${layout}`);
    // a manifest edited to call the FP32 input INT8, tagged 1 in place of the real one
    const oci = new OciLayout(layout);
    const manifest = JSON.parse(readFileSync(manifestPath(reg, 'mlp', 1), 'utf8'));
    const onnx = JSON.parse(manifest.annotations['dev.maas.onnx.v1+json']);
    onnx.signature.inputs[0].dtype = 'int8';
    manifest.annotations['dev.maas.onnx.v1+json'] = JSON.stringify(onnx);
    const bytes = Buffer.from(JSON.stringify(manifest));
    const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
    oci.putBlobBytes(bytes, digest);
    oci.tag({ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest, size: bytes.length }, ['lie']);
    const fresh = await makeRegistry();
    const lie = await fresh.cli('pull', `oci-layout:${layout}:lie`, '--json');
    expect(lie.exitCode).toBe(5);
    expect(lie.json().error.message).toMatch(/does not describe its model: .*input: int8/);
    expect(existsSync(join(fresh.dir, 'models'))).toBe(false);

    // a referrer whose layer is not a Sigstore bundle is dropped, not stored
    const subject = { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: oci.resolve('1').digest, size: oci.resolve('1').size };
    const junk = Buffer.from('this is not json');
    await pushLayoutReferrers(oci, subject, [{ kind: 'signature', path: 'junk', digest: `sha256:${createHash('sha256').update(junk).digest('hex')}`, bytes: junk }]);
    const pulled = await fresh.cli('pull', `oci-layout:${layout}:1`, '--json');
    expect(pulled.exitCode, pulled.stderr).toBe(0);
    expect(pulled.json().attestations).toEqual({ signature: 1 });
    expect((await fresh.cli('show', 'mlp@1')).exitCode).toBe(0);

    // a manifest edited and committed: the tag still records the registered one
    const edited = JSON.parse(readFileSync(manifestPath(reg, 'mlp', 1), 'utf8'));
    edited.annotations['org.opencontainers.image.description'] = 'edited';
    writeFileSync(manifestPath(reg, 'mlp', 1), JSON.stringify(edited, null, 2));
    execFileSync('git', ['commit', '-qam', 'edit'], { cwd: reg.dir, env: { ...process.env, ...reg.env, GIT_AUTHOR_NAME: 't', GIT_AUTHOR_EMAIL: 't@t', GIT_COMMITTER_NAME: 't', GIT_COMMITTER_EMAIL: 't@t' } });
    const verify = await reg.cli('verify', 'mlp@1', '--json');
    expect(verify.exitCode).toBe(8);
    expect(verify.json().problems).toEqual([expect.objectContaining({ kind: 'tag-mismatch', ref: 'mlp@1' })]);
  });

  it('refuses a folder as an output file with exit 2, not a stack trace', async () => {
    const reg = await signedRegistry();
    for (const args of [['sign', 'mlp@1', '--key', reg.key, '-o', reg.work], ['sbom', 'mlp@1', '-o', reg.work], ['keygen', '-o', reg.work, '--force']]) {
      const r = await reg.cli(...args, '--json');
      expect(r.exitCode, args.join(' ')).toBe(2);
      expect(r.json().error).toMatchObject({ code: 'MAAS_USAGE', message: expect.stringContaining('is a folder') });
    }
  });
});
