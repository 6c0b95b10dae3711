/**
 * Hostile `maas import` archives: every one is refused with exit 5 or 7 in bounded time and
 * memory, and leaves the registry as it was (same versions, no stray blobs, no staging
 * leftovers, `maas verify` passes) and nothing written outside it.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { brotliCompressSync, constants, gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type HostileBench, hostileBench } from '../helpers/hostile-bench.js';
import { MANIFEST_TYPE, type OciArtifact, type TarEntry, editOnnx, layoutEntries, rawTar, sha256, tamper } from '../helpers/hostile-registry.js';

const BAD_DIGEST = 'sha256:../../../../../../etc/hostname';

let bench: HostileBench;
let root: string;
let artifact: OciArtifact;
const cli = (...args: string[]) => bench.cli(...args);

beforeAll(async () => {
  bench = await hostileBench('maas-hostile-archives-');
  ({ root, artifact } = bench);
}, 60_000);

afterAll(() => bench.remove());

const manifestJson = () => JSON.parse(artifact.manifest.toString('utf8')) as { config: { digest: string }; layers: { digest: string }[] };
const layer = (i: number) => manifestJson().layers[i]!.digest;
const blobEntry = (digest: string) => `blobs/sha256/${digest.slice(7)}`;
const layout = () => layoutEntries(artifact);
const index = (manifests: unknown[]) => ({ schemaVersion: 2, manifests });
const tagged = (extra: Record<string, unknown> = {}) => ({ mediaType: MANIFEST_TYPE, digest: artifact.digest, size: artifact.manifest.length, annotations: { 'org.opencontainers.image.ref.name': '1' }, ...extra });
const replace = (entries: TarEntry[], name: string, entry: Partial<TarEntry>) => entries.map((e) => (e.name === name ? { ...e, ...entry } : e));
const edited = (edit: (m: any) => void) => tar(layoutEntries(tamper(artifact, edit)));
const without = (digest: string): OciArtifact => ({ ...artifact, blobs: new Map([...artifact.blobs].filter(([d]) => d !== digest)) });
const withBlob = (digest: string, body: Buffer): OciArtifact => ({ ...artifact, blobs: new Map([...artifact.blobs].map(([d, b]) => [d, d === digest ? body : b])) });
const tar = (entries: TarEntry[], options?: { end?: boolean }) => rawTar(entries, options);

/** A tar holding a 32 MiB blob of zeros, which gzip and brotli squeeze to a few KiB. */
const bombTar = () => tar([...layout(), { name: blobEntry(sha256('bomb')), body: Buffer.alloc(32 << 20) }]);

const CASES: { name: string; file?: string; archive: () => Buffer }[] = [
  { name: 'an entry climbing out with ..', archive: () => tar([...layout(), { name: '../../sentinel/escape' }]) },
  { name: 'an absolute entry', archive: () => tar([...layout(), { name: join(root, 'sentinel/absolute') }]) },
  { name: 'a .. in the middle of a path', archive: () => tar([...layout(), { name: 'blobs/../../sentinel/escape' }]) },
  { name: 'a blob that is a symlink', archive: () => tar(replace(layout(), blobEntry(layer(1)), { type: '2', link: '/etc/passwd', body: '' })) },
  { name: 'an index.json that is a hard link', archive: () => tar(replace(layout(), 'index.json', { type: '1', link: '../../etc/passwd', body: '' })) },
  { name: 'a character device', archive: () => tar([...layout(), { name: 'blobs/sha256/tty', type: '3' }]) },
  { name: 'a block device', archive: () => tar([...layout(), { name: 'oci-disk', type: '4' }]) },
  { name: 'an index.json that is a FIFO', archive: () => tar(replace(layout(), 'index.json', { type: '6', body: '' })) },
  { name: 'a folder where a blob belongs', archive: () => tar(replace(layout(), blobEntry(layer(1)), { type: '5', body: '' })) },
  { name: 'a stray file', archive: () => tar([...layout(), { name: 'install.sh', body: 'rm -rf ~' }]) },
  { name: 'a blob named by no digest', archive: () => tar([...layout(), { name: 'blobs/sha256/notahexdigest', body: 'x' }]) },
  { name: 'a blob named in upper-case hex', archive: () => tar(replace(layout(), blobEntry(layer(1)), { name: blobEntry(layer(1)).toUpperCase().replace('BLOBS/SHA256', 'blobs/sha256') })) },
  { name: 'a sha512 blob folder', archive: () => tar([...layout(), { name: `blobs/sha512/${'a'.repeat(128)}`, body: 'x' }]) },
  { name: 'an empty archive', archive: () => tar([]) },
  { name: 'bytes that are no archive', archive: () => Buffer.from('PK\u0003\u0004 this is a zip, not a tar') },
  { name: 'a truncated archive', archive: () => tar([...layout(), { name: blobEntry(sha256('cut')), claimedSize: 1 << 20, body: 'short' }], { end: false }) },
  { name: 'an entry claiming 8 GiB', archive: () => tar([...layout(), { name: blobEntry(sha256('huge')), claimedSize: 8 * 2 ** 30 - 1, body: 'tiny' }], { end: false }) },
  { name: 'a gzip bomb', archive: () => gzipSync(bombTar(), { level: 1 }) },
  { name: 'a brotli bomb named .tbr', file: 'bomb.tbr', archive: () => brotliCompressSync(bombTar(), { params: { [constants.BROTLI_PARAM_QUALITY]: 1 } }) },
  { name: 'index.json twice (the second one lies)', archive: () => tar([...layout(), { name: 'index.json', body: JSON.stringify(index([tagged({ digest: BAD_DIGEST })])) }]) },
  { name: 'an index.json that is not JSON', archive: () => tar(replace(layout(), 'index.json', { body: '{"schemaVersion":2,' })) },
  { name: 'an index.json without a manifests list', archive: () => tar(replace(layout(), 'index.json', { body: '{"schemaVersion":2,"manifests":{"0":1}}' })) },
  { name: 'an index.json digest that climbs paths', archive: () => tar(replace(layout(), 'index.json', { body: JSON.stringify(index([tagged({ digest: BAD_DIGEST })])) })) },
  { name: 'an index.json naming an image index', archive: () => tar(replace(layout(), 'index.json', { body: JSON.stringify(index([tagged({ mediaType: 'application/vnd.oci.image.index.v1+json' })])) })) },
  { name: 'an index.json with no tag', archive: () => tar(replace(layout(), 'index.json', { body: JSON.stringify(index([tagged({ annotations: {} })])) })) },
  { name: 'a tag that is a path', archive: () => tar(replace(layout(), 'index.json', { body: JSON.stringify(index([tagged({ annotations: { 'org.opencontainers.image.ref.name': '../../x/y' } })])) })) },
  { name: 'an index.json of 5 MiB', archive: () => tar(replace(layout(), 'index.json', { body: JSON.stringify(index([tagged({ padding: 'x'.repeat(5 << 20) })])) })) },
  { name: 'a manifest claiming 5 MiB', archive: () => tar(replace(layout(), 'index.json', { body: JSON.stringify(index([tagged({ size: 5 << 20 })])) })) },
  { name: 'a manifest that does not match its digest', archive: () => tar(replace(layout(), blobEntry(artifact.digest), { body: artifact.manifest.toString().replace('"schemaVersion": 2', '"schemaVersion":2') })) },
  { name: 'a layer path that climbs out', archive: () => edited((m) => (m.layers[1].annotations['org.cncf.model.filepath'] = '../../../../../sentinel/pwned')) },
  { name: 'an absolute layer path', archive: () => edited((m) => (m.layers[1].annotations['org.cncf.model.filepath'] = join(root, 'sentinel/pwned'))) },
  { name: 'a model file outside the folder', archive: () => edited((m) => editOnnx(m, (o) => (o.modelFile = '../../../../../sentinel/model.onnx'))) },
  { name: 'two layers at one path', archive: () => edited((m) => (m.layers[1].annotations['org.cncf.model.filepath'] = m.layers[0].annotations['org.cncf.model.filepath'])) },
  { name: 'a layer digest that climbs paths', archive: () => edited((m) => (m.layers[0].digest = BAD_DIGEST)) },
  { name: 'a config digest that climbs paths', archive: () => edited((m) => (m.config.digest = BAD_DIGEST)) },
  { name: 'a sha512 layer digest', archive: () => edited((m) => (m.layers[0].digest = `sha512:${'a'.repeat(128)}`)) },
  { name: 'a Docker schema 2 manifest', archive: () => edited((m) => (m.mediaType = 'application/vnd.docker.distribution.manifest.v2+json')) },
  { name: 'a manifest of another artifact type', archive: () => edited((m) => (m.artifactType = 'application/vnd.example.not-a-model')) },
  { name: 'a manifest without the onnx annotation', archive: () => edited((m) => delete m.annotations['dev.maas.onnx.v1+json']) },
  { name: 'a negative layer size', archive: () => edited((m) => (m.layers[0].size = -5)) },
  { name: 'a missing layer blob', archive: () => tar(layoutEntries(without(layer(1)))) },
  { name: 'a second layer that does not match (the first was already stored)', archive: () => tar(layoutEntries(withBlob(layer(1), Buffer.from('tampered external data')))) },
  { name: 'a config that does not match', archive: () => tar(layoutEntries(withBlob(manifestJson().config.digest, Buffer.from('{"tampered":true}')))) },
  { name: 'no oci-layout file', archive: () => tar(layout().filter((e) => e.name !== 'oci-layout')) },
  { name: 'an index.json that is a folder', archive: () => tar(replace(layout(), 'index.json', { type: '5', body: '' })) },
];

describe('hostile archives', () => {
  it('has at least 30 cases', () => expect(CASES.length).toBeGreaterThanOrEqual(30));

  it.each(CASES)('refuses $name (exit 5 or 7), leaving the registry as it was', async ({ archive, file }) => {
    const path = join(root, 'archives', file ?? 'hostile.tar');
    writeFileSync(path, archive());
    const started = Date.now();
    const rssBefore = process.memoryUsage().rss;
    const r = await cli('import', path, '--json');
    expect([5, 7], r.stdout + r.stderr).toContain(r.exitCode);
    expect(r.json().error.message).toBeTruthy();
    expect(Date.now() - started).toBeLessThan(15_000);
    expect(process.memoryUsage().rss - rssBefore).toBeLessThan(256 << 20);
    bench.expectUntouched();
  });

  it('still holds exactly what it held, verify passes, and the honest archive imports', async () => {
    expect((await cli('list', '--json')).stdout).toBe(bench.list);
    const verify = await cli('verify', '--json');
    expect(verify.exitCode, verify.stdout).toBe(0);
    writeFileSync(join(root, 'archives', 'honest.tar'), tar(layout()));
    const imported = await cli('import', join(root, 'archives', 'honest.tar'), '--json');
    expect(imported.exitCode, imported.stdout).toBe(0);
  });
});
