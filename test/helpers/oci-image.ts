/**
 * Container images for modelcar tests: a tiny base image made here (a gzip layer with /bin/sh,
 * a file, not a shell: nothing runs it) in an OCI layout, and a reader that opens an image in an
 * OCI layout and extracts its last layer, as a container runtime would.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import * as tar from 'tar';

const sha256 = (bytes: Buffer) => `sha256:${createHash('sha256').update(bytes).digest('hex')}`;

interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  platform?: { architecture: string; os: string };
  annotations?: Record<string, string>;
}

export interface ImageManifest {
  mediaType: string;
  config: Descriptor;
  layers: Descriptor[];
  annotations?: Record<string, string>;
}

export interface ImageConfig {
  architecture: string;
  os: string;
  rootfs: { type: string; diff_ids: string[] };
  history?: unknown[];
}

/** An OCI layout at `dir` holding a linux/amd64 image tagged `tag` whose one layer is /bin/sh. */
export async function writeBaseLayout(dir: string, tag = '1'): Promise<{ layerDigest: string; diffId: string }> {
  const root = join(dir, '.rootfs');
  mkdirSync(join(root, 'bin'), { recursive: true });
  writeFileSync(join(root, 'bin/sh'), '#!/not/a/shell\n');
  mkdirSync(join(dir, 'blobs/sha256'), { recursive: true });
  const layerFile = join(dir, '.layer.tar.gz');
  await tar.c({ cwd: root, file: layerFile, gzip: true, portable: true, mtime: new Date(0) }, ['bin']);
  const layer = readFileSync(layerFile);
  const diffId = sha256(gunzipSync(layer));
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', config: { Cmd: ['sh'] }, rootfs: { type: 'layers', diff_ids: [diffId] }, history: [{ created_by: 'test base' }] }));
  const put = (bytes: Buffer) => {
    writeFileSync(join(dir, 'blobs/sha256', sha256(bytes).slice(7)), bytes);
    return { digest: sha256(bytes), size: bytes.length };
  };
  const manifest = Buffer.from(JSON.stringify({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...put(config) },
    layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', ...put(layer) }],
  }));
  const m = put(manifest);
  writeFileSync(join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  writeFileSync(join(dir, 'index.json'), JSON.stringify({
    schemaVersion: 2,
    manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', ...m, annotations: { 'org.opencontainers.image.ref.name': tag } }],
  }));
  return { layerDigest: sha256(layer), diffId };
}

export function readBlob(layout: string, digest: string): Buffer {
  return readFileSync(join(layout, 'blobs/sha256', digest.slice('sha256:'.length)));
}

export const readJson = <T>(layout: string, digest: string): T => JSON.parse(readBlob(layout, digest).toString('utf8')) as T;

/** The image a tag of a layout names (the linux/amd64 one of an index), with its config. */
export function imageOf(layout: string, tag: string): { manifest: ImageManifest; config: ImageConfig; digest: string; index?: { manifests: Descriptor[]; annotations?: Record<string, string> } } {
  const entry = (JSON.parse(readFileSync(join(layout, 'index.json'), 'utf8')) as { manifests: Descriptor[] }).manifests.find((m) => m.annotations?.['org.opencontainers.image.ref.name'] === tag);
  if (!entry) throw new Error(`${layout} has no tag ${tag}`);
  let digest = entry.digest;
  let index: { manifests: Descriptor[]; annotations?: Record<string, string> } | undefined;
  if (entry.mediaType === 'application/vnd.oci.image.index.v1+json') {
    index = readJson(layout, entry.digest);
    digest = index!.manifests.find((m) => m.platform?.architecture === 'amd64')!.digest;
  }
  const manifest = readJson<ImageManifest>(layout, digest);
  return { manifest, config: readJson<ImageConfig>(layout, manifest.config.digest), digest: entry.digest, ...(index ? { index } : {}) };
}

/** Extracts a layer blob (plain or gzip tar) into `dir`, hard links included, as a container runtime unpacks it. */
export async function extractLayer(layout: string, digest: string, dir: string): Promise<void> {
  mkdirSync(dir, { recursive: true });
  await tar.x({ file: join(layout, 'blobs/sha256', digest.slice('sha256:'.length)), cwd: dir, strict: true });
}

/** Every entry of a layer, in order, with its type and link target. */
export async function layerEntries(layout: string, digest: string): Promise<{ path: string; type: string; linkpath?: string; mtime?: Date; uid?: number }[]> {
  const entries: { path: string; type: string; linkpath?: string; mtime?: Date; uid?: number }[] = [];
  await tar.t({
    file: join(layout, 'blobs/sha256', digest.slice('sha256:'.length)),
    onReadEntry: (e) => entries.push({ path: e.path, type: e.type, ...(e.linkpath ? { linkpath: e.linkpath } : {}), ...(e.mtime ? { mtime: e.mtime } : {}), ...(e.uid !== undefined ? { uid: e.uid } : {}) }),
  });
  return entries;
}
