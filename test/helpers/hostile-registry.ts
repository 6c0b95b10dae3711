/**
 * Hostile remotes for the fuzz suites: a real maas artifact taken apart and tampered with,
 * tar archives written byte by byte (so an entry can be whatever an attacker likes), and a
 * scripted OCI registry on loopback that answers honestly except where a scenario says.
 */
import { createHash } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';
import { type IncomingMessage, type ServerResponse, createServer } from 'node:http';
import { join } from 'node:path';
import { onTestFinished } from 'vitest';

export const MANIFEST_TYPE = 'application/vnd.oci.image.manifest.v1+json';

export const sha256 = (bytes: Buffer | string): string => `sha256:${createHash('sha256').update(bytes).digest('hex')}`;

/** A manifest and the blobs it names (config and layers), by digest. */
export interface OciArtifact {
  manifest: Buffer;
  digest: string;
  blobs: Map<string, Buffer>;
}

/** Reads what `maas push ... oci-layout:DIR` wrote for `tag`. */
export function readLayoutArtifact(dir: string, tag: string): OciArtifact {
  const index = JSON.parse(readFileSync(join(dir, 'index.json'), 'utf8')) as { manifests: { digest: string; annotations?: Record<string, string> }[] };
  const entry = index.manifests.find((m) => m.annotations?.['org.opencontainers.image.ref.name'] === tag)!;
  const blobs = new Map<string, Buffer>();
  for (const hex of readdirSync(join(dir, 'blobs/sha256'))) blobs.set(`sha256:${hex}`, readFileSync(join(dir, 'blobs/sha256', hex)));
  const manifest = blobs.get(entry.digest)!;
  blobs.delete(entry.digest);
  return { manifest, digest: entry.digest, blobs };
}

/** The artifact with its manifest edited (and re-serialised, so its digest is consistent). */
export function tamper(artifact: OciArtifact, edit: (manifest: any) => void): OciArtifact {
  const manifest = JSON.parse(artifact.manifest.toString('utf8'));
  edit(manifest);
  const bytes = Buffer.from(JSON.stringify(manifest, null, 2));
  return { manifest: bytes, digest: sha256(bytes), blobs: artifact.blobs };
}

/** Edits the `dev.maas.onnx.v1+json` annotation inside a manifest. */
export function editOnnx(manifest: any, edit: (onnx: any) => void): void {
  const onnx = JSON.parse(manifest.annotations['dev.maas.onnx.v1+json']);
  edit(onnx);
  manifest.annotations['dev.maas.onnx.v1+json'] = JSON.stringify(onnx);
}

export interface TarEntry {
  name: string;
  /** ustar type flag: 0 file, 1 hard link, 2 symlink, 3 char device, 4 block device, 5 folder, 6 FIFO. */
  type?: '0' | '1' | '2' | '3' | '4' | '5' | '6';
  body?: Buffer | string;
  link?: string;
  /** the size the header claims, when it should lie about the body. */
  claimedSize?: number;
}

/** A ustar archive written byte by byte, so entries can be whatever an attacker likes. */
export function rawTar(entries: TarEntry[], { end = true } = {}): Buffer {
  const blocks: Buffer[] = [];
  for (const e of entries) {
    const body = Buffer.from(e.body ?? '');
    const header = Buffer.alloc(512);
    header.write(e.name, 0, 100);
    header.write('0000644\0', 100);
    header.write('0000000\0', 108);
    header.write('0000000\0', 116);
    header.write(`${(e.claimedSize ?? body.length).toString(8).padStart(11, '0')}\0`, 124);
    header.write('00000000000\0', 136);
    header.write('        ', 148);
    header.write(e.type ?? '0', 156);
    if (e.link) header.write(e.link, 157, 100);
    header.write('ustar\0', 257);
    header.write('00', 263);
    let sum = 0;
    for (const byte of header) sum += byte;
    header.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148);
    blocks.push(header, body, Buffer.alloc((512 - (body.length % 512)) % 512));
  }
  if (end) blocks.push(Buffer.alloc(1024));
  return Buffer.concat(blocks);
}

/** The entries of an OCI image layout holding the artifact under `tag`, as `maas pack` writes it. */
export function layoutEntries(artifact: OciArtifact, options: { tag?: string; index?: unknown } = {}): TarEntry[] {
  const index = options.index ?? {
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.index.v1+json',
    manifests: [{ mediaType: MANIFEST_TYPE, digest: artifact.digest, size: artifact.manifest.length, annotations: { 'org.opencontainers.image.ref.name': options.tag ?? '1' } }],
  };
  return [
    { name: 'oci-layout', body: '{"imageLayoutVersion":"1.0.0"}' },
    { name: 'index.json', body: typeof index === 'string' ? index : JSON.stringify(index) },
    { name: `blobs/sha256/${artifact.digest.slice(7)}`, body: artifact.manifest },
    ...[...artifact.blobs].map(([digest, body]) => ({ name: `blobs/sha256/${digest.slice(7)}`, body })),
  ];
}

export type Route = { kind: 'ping' } | { kind: 'manifest'; reference: string } | { kind: 'blob'; digest: string } | { kind: 'other' };

/** Answers a request itself (true) or leaves it to the honest registry (false). */
export type Script = (req: IncomingMessage, res: ServerResponse, route: Route) => boolean;

export interface HostileRegistry {
  host: string;
  /** `METHOD path` of every request seen. */
  requests: string[];
}

function routeOf(url: string): Route {
  const path = url.split('?')[0]!;
  if (path === '/v2/' || path === '/v2') return { kind: 'ping' };
  const manifest = /^\/v2\/.+\/manifests\/([^/]+)$/.exec(path);
  if (manifest) return { kind: 'manifest', reference: decodeURIComponent(manifest[1]!) };
  const blob = /^\/v2\/.+\/blobs\/([^/]+)$/.exec(path);
  if (blob) return { kind: 'blob', digest: decodeURIComponent(blob[1]!) };
  return { kind: 'other' };
}

/** An OCI registry on 127.0.0.1 serving `artifact` under any repository and tag, as `script` allows. */
export async function startHostileRegistry(artifact: OciArtifact, script: Script = () => false): Promise<HostileRegistry> {
  const requests: string[] = [];
  const server = createServer((req, res) => {
    requests.push(`${req.method} ${req.url}`);
    const route = routeOf(req.url ?? '/');
    res.on('error', () => undefined);
    if (script(req, res, route)) return;
    const send = (status: number, headers: Record<string, string>, body?: Buffer) => {
      res.writeHead(status, { ...headers, 'content-length': String(body?.length ?? 0) });
      res.end(req.method === 'HEAD' ? undefined : body);
    };
    if (route.kind === 'ping') return send(200, { 'content-type': 'application/json' }, Buffer.from('{}'));
    if (route.kind === 'manifest') return send(200, { 'content-type': MANIFEST_TYPE, 'docker-content-digest': artifact.digest }, artifact.manifest);
    const blob = route.kind === 'blob' ? artifact.blobs.get(route.digest) : undefined;
    if (blob) return send(200, { 'content-type': 'application/octet-stream', 'docker-content-digest': (route as { digest: string }).digest }, blob);
    return send(404, { 'content-type': 'application/json' }, Buffer.from('{"errors":[{"code":"NOT_FOUND"}]}'));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  onTestFinished(() => new Promise<void>((resolve) => {
    server.closeAllConnections();
    server.close(() => resolve());
  }));
  return { host: `127.0.0.1:${(server.address() as { port: number }).port}`, requests };
}

/** Writes `chunk` every few milliseconds until the client goes away: an endless body. */
export function endless(res: ServerResponse, chunk: Buffer, headers: Record<string, string>): void {
  res.writeHead(200, headers);
  const pump = () => {
    while (!res.destroyed && res.write(chunk));
    if (!res.destroyed) res.once('drain', pump);
  };
  res.on('close', () => res.removeAllListeners('drain'));
  pump();
}
