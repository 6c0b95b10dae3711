/**
 * A scripted hostile OCI registry on loopback: every scenario is refused by `maas pull` with
 * exit 5 or 7, in bounded time and memory, and leaves the registry as it was (same versions,
 * no stray blobs, no staging leftovers, `maas verify` passes) and nothing written outside it.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type HostileBench, hostileBench } from '../helpers/hostile-bench.js';
import { MANIFEST_TYPE, type OciArtifact, type Script, editOnnx, endless, sha256, startHostileRegistry, tamper } from '../helpers/hostile-registry.js';

const CLIMB = '../../../../../sentinel/pwned.onnx';
const BAD_DIGEST = 'sha256:../../../../../../etc/hostname';

let bench: HostileBench;
let root: string;
let artifact: OciArtifact;
const cli = (...args: string[]) => bench.cli(...args);

beforeAll(async () => {
  bench = await hostileBench('maas-hostile-registry-', { MAAS_REMOTE_TIMEOUT_S: '1' });
  ({ root, artifact } = bench);
}, 60_000);

afterAll(() => bench.remove());

const layers = () => (JSON.parse(artifact.manifest.toString('utf8')) as { layers: { digest: string }[] }).layers;
const json = (res: Parameters<Script>[1], status: number, body: unknown, headers: Record<string, string> = {}) => {
  res.writeHead(status, { 'content-type': 'application/json', ...headers }).end(JSON.stringify(body));
  return true;
};

interface Scenario {
  name: string;
  artifact?: () => OciArtifact;
  script?: Script;
}

const SCENARIOS: Scenario[] = [
  { name: 'a manifest whose bytes differ from its Docker-Content-Digest', script: (_q, res, r) => r.kind === 'manifest' && json(res, 200, JSON.parse(artifact.manifest.toString()), { 'content-type': MANIFEST_TYPE, 'docker-content-digest': sha256('other') }) },
  { name: 'a Docker-Content-Digest that climbs paths', script: (_q, res, r) => r.kind === 'manifest' && (res.writeHead(200, { 'content-type': MANIFEST_TYPE, 'docker-content-digest': BAD_DIGEST }).end(artifact.manifest), true) },
  { name: 'a layer whose bytes do not match its digest', script: (_q, res, r) => r.kind === 'blob' && r.digest === layers()[0]!.digest && (res.writeHead(200).end(Buffer.alloc(artifact.blobs.get(r.digest)!.length, 7)), true) },
  { name: 'a second layer that does not match (the first was already fetched)', script: (_q, res, r) => r.kind === 'blob' && r.digest === layers()[1]!.digest && (res.writeHead(200).end('tampered external data'), true) },
  { name: 'an endless layer', script: (_q, res, r) => r.kind === 'blob' && r.digest === layers()[0]!.digest && (endless(res, Buffer.alloc(64 << 10, 1), {}), true) },
  { name: 'an endless chunked manifest', script: (_q, res, r) => r.kind === 'manifest' && (endless(res, Buffer.alloc(64 << 10, 32), { 'content-type': MANIFEST_TYPE }), true) },
  { name: 'a manifest announcing 64 MiB', script: (_q, res, r) => r.kind === 'manifest' && (res.writeHead(200, { 'content-type': MANIFEST_TYPE, 'content-length': String(64 << 20) }).write(Buffer.alloc(1 << 20, 32)), true) },
  { name: 'a manifest that never answers', script: (_q, _res, r) => r.kind === 'manifest' },
  { name: 'a manifest that stalls halfway', script: (_q, res, r) => r.kind === 'manifest' && (res.writeHead(200, { 'content-type': MANIFEST_TYPE, 'content-length': String(artifact.manifest.length) }).write(artifact.manifest.subarray(0, 100)), true) },
  { name: 'a layer that stalls halfway', script: (_q, res, r) => r.kind === 'blob' && r.digest === layers()[0]!.digest && (res.writeHead(200, { 'content-length': String(artifact.blobs.get(r.digest)!.length) }).write(artifact.blobs.get(r.digest)!.subarray(0, 10)), true) },
  { name: 'a manifest redirect loop', script: (req, res, r) => r.kind === 'manifest' && (res.writeHead(307, { location: `${req.url}x` }).end(), true) },
  { name: 'a layer redirect loop', script: (req, res, r) => r.kind === 'blob' && (res.writeHead(302, { location: req.url! }).end(), true) },
  { name: 'an image index where a manifest belongs', script: (_q, res, r) => r.kind === 'manifest' && (res.writeHead(200, { 'content-type': 'application/vnd.oci.image.index.v1+json' }).end('{"schemaVersion":2,"manifests":[]}'), true) },
  { name: 'an HTML page as the manifest', script: (_q, res, r) => r.kind === 'manifest' && (res.writeHead(200, { 'content-type': 'text/html' }).end('<html>login</html>'), true) },
  { name: 'a manifest that is not JSON', script: (_q, res, r) => r.kind === 'manifest' && (res.writeHead(200, { 'content-type': MANIFEST_TYPE }).end('{"schemaVersion":2,'), true) },
  { name: 'a Docker schema 2 manifest', artifact: () => tamper(artifact, (m) => (m.mediaType = 'application/vnd.docker.distribution.manifest.v2+json')) },
  { name: 'a layer path that climbs out', artifact: () => tamper(artifact, (m) => (m.layers[1].annotations['org.cncf.model.filepath'] = CLIMB)) },
  { name: 'an absolute layer path', artifact: () => tamper(artifact, (m) => (m.layers[1].annotations['org.cncf.model.filepath'] = join(root, 'sentinel/pwned'))) },
  { name: 'a model file outside the folder', artifact: () => tamper(artifact, (m) => editOnnx(m, (o) => (o.modelFile = '../../../../../sentinel/model.onnx'))) },
  { name: 'two layers at one path', artifact: () => tamper(artifact, (m) => (m.layers[1].annotations['org.cncf.model.filepath'] = m.layers[0].annotations['org.cncf.model.filepath'])) },
  { name: 'a layer digest that climbs paths', artifact: () => tamper(artifact, (m) => (m.layers[0].digest = BAD_DIGEST)) },
  { name: 'a config digest that climbs paths', artifact: () => tamper(artifact, (m) => (m.config.digest = BAD_DIGEST)) },
  { name: 'an upper-case layer digest', artifact: () => tamper(artifact, (m) => (m.layers[0].digest = m.layers[0].digest.toUpperCase())) },
  { name: 'a negative layer size', artifact: () => tamper(artifact, (m) => (m.layers[0].size = -1)) },
  { name: 'a layer claiming a petabyte', artifact: () => tamper(artifact, (m) => (m.layers[0].size = 2 ** 50)) },
  { name: 'a missing layer', script: (_q, res, r) => r.kind === 'blob' && r.digest === layers()[1]!.digest && json(res, 404, { errors: [{ code: 'BLOB_UNKNOWN' }] }) },
  { name: 'a storm of 500s', script: (_q, res, r) => r.kind !== 'ping' && json(res, 500, { errors: [{ code: 'UNKNOWN' }] }) },
  { name: 'an unknown authentication scheme', script: (_q, res) => (res.writeHead(401, { 'www-authenticate': 'Negotiate' }).end(), true) },
  { name: 'a token server that never answers', script: (req, res) => req.url!.startsWith('/token') || (res.writeHead(401, { 'www-authenticate': `Bearer realm="http://${req.headers.host}/token",service="x"` }).end(), true) },
];

describe('a hostile registry on loopback', () => {
  it.each(SCENARIOS)('refuses $name (exit 5 or 7), leaving the registry as it was', async ({ artifact: make, script }) => {
    const remote = await startHostileRegistry(make ? make() : artifact, script);
    const started = Date.now();
    const rssBefore = process.memoryUsage().rss;
    const r = await cli('pull', `oci://${remote.host}/models/ext:1`, '--json');
    expect([5, 7], r.stdout + r.stderr).toContain(r.exitCode);
    expect(r.json().error.message).toBeTruthy();
    expect(Date.now() - started).toBeLessThan(15_000);
    expect(process.memoryUsage().rss - rssBefore).toBeLessThan(256 << 20);
    bench.expectUntouched();
  });

  it('ends a push whose upload the registry stalls with exit 5', async () => {
    const remote = await startHostileRegistry(artifact, (req, res, r) => {
      if (r.kind === 'blob' || (r.kind === 'manifest' && req.method === 'GET')) return (res.writeHead(404).end(), true); // an empty repository
      if (req.method === 'POST') return (res.writeHead(202, { location: '/v2/models/mlp/blobs/uploads/u1' }).end(), true);
      return req.method === 'PUT'; // never answered
    });
    const started = Date.now();
    const r = await cli('push', 'mlp@1', `oci://${remote.host}/models/mlp`, '--json');
    expect(r.exitCode).toBe(5);
    expect(r.json().error.message).toContain('moved no byte for 1 s');
    expect(Date.now() - started).toBeLessThan(15_000);
  });

  it('still holds exactly what it held, and verify passes', async () => {
    expect((await cli('list', '--json')).stdout).toBe(bench.list);
    const verify = await cli('verify', '--json');
    expect(verify.exitCode, verify.stdout).toBe(0);
    // The honest registry is pulled fine: the scenarios failed for what they did, not by accident.
    const honest = await startHostileRegistry(artifact);
    const pulled = await cli('pull', `oci://${honest.host}/models/ext:1`, '--json');
    expect(pulled.exitCode, pulled.stdout).toBe(0);
  });
});
