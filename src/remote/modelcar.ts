/**
 * A version as a KServe modelcar: an OCI image (an image, not an artifact: KServe's `oci://`
 * storage runs it as a container beside the predictor and reads its /models) pushed beside the
 * ModelPack artifact, under `<tag>-modelcar` for each tag of the version in the same repository.
 * The tag names an image index with one image per platform: the base image's (`--modelcar-base`),
 * or linux/amd64 and linux/arm64 for an image with no base (containerd refuses an image whose one
 * platform is not the node's).
 *
 * One layer, plain tar, reproducible (writeTar), adds /models; every copy of a file after the
 * first is a hard link, so each weight is in the layer once:
 *   /models/<file>...          the version's files as its manifest names them; model.sig when signed
 *   /models/<name>/<version>/  model.onnx (Triton's default name) and its external data: /models is
 *                              a Triton model repository, which KServe's Triton runtime reads as is
 *   /models/<name>/            also an OCI image layout of the version as pushed (oci-layout,
 *                              index.json tagged <version>, blobs/sha256/…, signatures as
 *                              referrers): `maas serve oci-layout:/mnt/models/<name>:<version>`
 *                              serves the same manifest digest. Triton skips it: its version
 *                              folders are numbers.
 *
 * KServe's modelcar sidecar runs `sh -c 'ln … && sleep infinity'` in the image, so an image with no
 * base (no shell) only serves where the image is mounted, not run (KServe's `oci+native://`).
 */
import { rmSync, statSync } from 'node:fs';
import { join, posix } from 'node:path';
import { MaasError, isMaasError } from '../core/errors.js';
import { makeFolders, tempName } from '../core/fs.js';
import { MODEL_SIGNATURE_FILE, listAttestations } from '../registry/attestations.js';
import { Layout, isDigest } from '../registry/layout.js';
import { ANNOTATIONS, type Descriptor, MAX_CONFIG_BYTES, MAX_MANIFEST_BYTES, MEDIA_TYPES, digestOf } from '../registry/manifest.js';
import type { Registry } from '../registry/registry.js';
import { BlobStore, type BlobRef, type OnBytes } from '../registry/store.js';
import { type Artifact, INDEX_MEDIA_TYPE, MANIFEST_MEDIA_TYPE, collect } from './artifact.js';
import type { RegistryClient } from './client.js';
import { OciLayout } from './layout.js';
import { isTag } from './ref.js';
import { pushLayoutReferrers } from './referrers.js';
import { type TarEntry, filesUnder, writeTar } from './tar-layer.js';

export const MODELCAR_SUFFIX = '-modelcar';
/** On the modelcar's index and manifests: the digest of the ModelPack manifest it holds. */
export const MODELPACK_DIGEST_ANNOTATION = 'dev.maas.modelpack.digest';
const BASE_NAME = 'org.opencontainers.image.base.name';
const BASE_DIGEST = 'org.opencontainers.image.base.digest';
const REF_NAME = 'org.opencontainers.image.ref.name';

const IMAGE_CONFIG = 'application/vnd.oci.image.config.v1+json';
const LAYER_TAR = 'application/vnd.oci.image.layer.v1.tar';
const DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json';
const DOCKER_LIST = 'application/vnd.docker.distribution.manifest.list.v2+json';
/** Layer types a base may have, and what they are called in an OCI manifest (the bytes are the same). */
const BASE_LAYER_TYPES: Record<string, string> = {
  [LAYER_TAR]: LAYER_TAR,
  [`${LAYER_TAR}+gzip`]: `${LAYER_TAR}+gzip`,
  [`${LAYER_TAR}+zstd`]: `${LAYER_TAR}+zstd`,
  'application/vnd.docker.image.rootfs.diff.tar.gzip': `${LAYER_TAR}+gzip`,
};
/** An image without a base has no binaries: any node may run it. */
const SCRATCH_PLATFORMS: Platform[] = [{ architecture: 'amd64', os: 'linux' }, { architecture: 'arm64', os: 'linux' }];

interface Platform {
  architecture: string;
  os: string;
  variant?: string;
}

interface ImageConfig {
  architecture?: string;
  os?: string;
  variant?: string;
  rootfs?: { type: string; diff_ids: string[] };
  history?: unknown[];
  [key: string]: unknown;
}

/** Where images go: a registry, through its client, or an OCI image layout. */
export type ImageTarget = { kind: 'registry'; client: RegistryClient } | { kind: 'layout'; layout: OciLayout };

/** A base image: `reference` is a tag (or digest) in `target`'s repository or layout; `name` what the annotations call it. */
export type ImageSource = ImageTarget & { reference: string; name: string };

export interface ModelcarResult {
  /** where it is, as an image reference: HOST/REPOSITORY (or the layout's path). */
  repository: string;
  tags: string[];
  /** the image index's digest: what an InferenceService pins. */
  digest: string;
  /** `present`: the remote had this version's modelcar (same ModelPack manifest, same base) and nothing was sent. */
  status: 'pushed' | 'present';
  base?: { name: string; digest: string };
  platforms: string[];
  /** the /models layer (plain tar), when it was built. */
  layer?: BlobRef;
  bytesSent: number;
}

/** What a remote's modelcar tag holds, read from its index and its annotations. */
export interface FoundModelcar {
  digest: string;
  bytes: Buffer;
  modelpackDigest: string | undefined;
  base: { name: string; digest: string } | undefined;
  platforms: string[];
}

export function modelcarTag(tag: string): string {
  const tagged = `${tag}${MODELCAR_SUFFIX}`;
  if (!isTag(tagged)) throw new MaasError('MAAS_USAGE', `'${tag}${MODELCAR_SUFFIX}' is longer than a tag may be (128 characters)`, { hint: 'Push to a remote with a shorter tag.' });
  return tagged;
}

const platformText = (p: Platform) => `${p.os}/${p.architecture}${p.variant ? `/${p.variant}` : ''}`;

function jsonOf(bytes: Buffer, where: string): Record<string, unknown> {
  try {
    const value = JSON.parse(bytes.toString('utf8')) as unknown;
    if (value && typeof value === 'object' && !Array.isArray(value)) return value as Record<string, unknown>;
  } catch {
    // reported below
  }
  throw new MaasError('MAAS_REMOTE_REJECTED', `${where} is not a JSON object`, { hint: 'Name a container image (a tag of an OCI or Docker image) as the base.' });
}

interface TaggedManifest {
  bytes: Buffer;
  mediaType: string;
  digest: string;
}

type ImageReader = ReturnType<typeof reader>;

/** Reads manifests and blobs of a source, every one checked against its digest. */
function reader(source: ImageTarget) {
  const checked = (bytes: Buffer, d: Descriptor) => {
    if (digestOf(bytes) !== d.digest) throw new MaasError('MAAS_DIGEST_MISMATCH', `${d.digest} arrived with other bytes (${digestOf(bytes)})`, { hint: 'The base image is corrupted or was tampered with; nothing was pushed.' });
    return bytes;
  };
  const accept = [MANIFEST_MEDIA_TYPE, INDEX_MEDIA_TYPE, DOCKER_MANIFEST, DOCKER_LIST];
  return {
    async tagged(reference: string): Promise<TaggedManifest> {
      if (source.kind === 'registry') {
        const got = await source.client.getManifest(reference, accept);
        const digest = digestOf(got.bytes);
        if ((got.digest && got.digest !== digest) || (isDigest(reference) && reference !== digest)) throw new MaasError('MAAS_DIGEST_MISMATCH', `the manifest of ${reference} arrived with digest ${digest}`);
        return { bytes: got.bytes, mediaType: got.mediaType, digest };
      }
      const entry = source.layout.index().manifests.find((m) => m.annotations?.[REF_NAME] === reference || m.digest === reference);
      if (!entry) throw new MaasError('MAAS_REMOTE_NOT_FOUND', `${source.layout.root} has no image '${reference}'`, { hint: 'Copy the base image into the layout first: skopeo copy docker://IMAGE oci:PATH:TAG.' });
      return { bytes: await this.manifest(entry), mediaType: entry.mediaType, digest: entry.digest };
    },
    async manifest(d: Descriptor): Promise<Buffer> {
      if (d.size > MAX_MANIFEST_BYTES) throw new MaasError('MAAS_REMOTE_REJECTED', `manifest ${d.digest} claims ${d.size} bytes (at most ${MAX_MANIFEST_BYTES})`);
      if (source.kind === 'registry') return checked((await source.client.getManifest(d.digest, accept)).bytes, d);
      return checked(await collect(source.layout.readBlob(d), d.size), d);
    },
    async blob(d: Descriptor): Promise<AsyncIterable<Uint8Array>> {
      return source.kind === 'registry' ? source.client.getBlob(d) : source.layout.readBlob(d);
    },
  };
}

interface BaseImage {
  name: string;
  digest: string;
  images: { platform: Platform; config: ImageConfig; layers: Descriptor[] }[];
}

/** The base's images for linux (an index's attestation entries, platform unknown/unknown, are skipped). */
async function readBase(source: ImageSource, read: ImageReader, top: TaggedManifest): Promise<BaseImage> {
  const where = `the base image ${source.name}`;
  const entries: (Descriptor & { platform?: Platform })[] = [MANIFEST_MEDIA_TYPE, DOCKER_MANIFEST].includes(top.mediaType)
    ? [{ mediaType: top.mediaType, digest: top.digest, size: top.bytes.length }]
    : ((jsonOf(top.bytes, where).manifests ?? []) as (Descriptor & { platform?: Platform })[]).filter((m) => m?.platform?.os === 'linux');
  const images: BaseImage['images'] = [];
  for (const entry of entries) {
    if (!isDigest(entry.digest) || !Number.isSafeInteger(entry.size)) throw new MaasError('MAAS_REMOTE_REJECTED', `${where} lists a manifest with digest '${String(entry.digest).slice(0, 80)}'`);
    const manifest = jsonOf(entry.digest === top.digest ? top.bytes : await read.manifest(entry), `${where} (${entry.digest})`) as { config?: Descriptor; layers?: Descriptor[] };
    const configRef = manifest.config;
    if (!configRef || !isDigest(configRef.digest) || !(configRef.size <= MAX_CONFIG_BYTES)) throw new MaasError('MAAS_REMOTE_REJECTED', `${where} has a manifest without a readable config`);
    const configBytes = await collect(await read.blob(configRef), configRef.size);
    if (digestOf(configBytes) !== configRef.digest) throw new MaasError('MAAS_DIGEST_MISMATCH', `${where}'s config arrived with other bytes`, { hint: 'The base image is corrupted or was tampered with; nothing was pushed.' });
    const config = jsonOf(configBytes, `${where}'s config`) as ImageConfig;
    const layers = (manifest.layers ?? []).map((layer) => {
      const mediaType = BASE_LAYER_TYPES[layer.mediaType];
      if (!mediaType || !isDigest(layer.digest) || !Number.isSafeInteger(layer.size)) {
        throw new MaasError('MAAS_REMOTE_REJECTED', `${where} has a layer maas cannot copy (${String(layer.mediaType).slice(0, 80)})`, { hint: 'Use a plain Linux image with tar layers, such as busybox.' });
      }
      return { mediaType, digest: layer.digest, size: layer.size };
    });
    if (config.rootfs?.diff_ids?.length !== layers.length) throw new MaasError('MAAS_REMOTE_REJECTED', `${where}'s config lists ${config.rootfs?.diff_ids?.length ?? 0} layers and its manifest ${layers.length}`);
    const platform = entry.platform ?? { architecture: config.architecture ?? 'amd64', os: config.os ?? 'linux', ...(config.variant ? { variant: config.variant } : {}) };
    images.push({ platform, config, layers });
  }
  if (images.length === 0) throw new MaasError('MAAS_REMOTE_REJECTED', `${where} has no Linux image`, { hint: 'Name a Linux image with a shell, such as busybox.' });
  return { name: source.name, digest: top.digest, images };
}

/** What the modelcar tag of a remote holds; undefined when there is none (or it is not an image index). */
export async function findModelcar(target: ImageTarget, tag: string): Promise<FoundModelcar | undefined> {
  let bytes: Buffer;
  if (target.kind === 'registry') {
    if (!(await target.client.hasManifest(tag, [INDEX_MEDIA_TYPE]))) return undefined;
    const got = await target.client.getManifest(tag, [INDEX_MEDIA_TYPE, MANIFEST_MEDIA_TYPE]);
    if (got.mediaType !== INDEX_MEDIA_TYPE) return undefined;
    ({ bytes } = got);
  } else {
    if (!target.layout.exists()) return undefined;
    const entry = target.layout.index().manifests.find((m) => m.annotations?.[REF_NAME] === tag);
    if (entry?.mediaType !== INDEX_MEDIA_TYPE || entry.size > MAX_MANIFEST_BYTES || !target.layout.hasBlob(entry)) return undefined;
    bytes = await collect(target.layout.readBlob(entry), entry.size);
  }
  const index = jsonOf(bytes, `the image index tagged ${tag}`) as { manifests?: { platform?: Platform }[]; annotations?: Record<string, string> };
  const annotations = index.annotations ?? {};
  return {
    digest: digestOf(bytes),
    bytes,
    modelpackDigest: annotations[MODELPACK_DIGEST_ANNOTATION],
    base: annotations[BASE_NAME] === undefined ? undefined : { name: annotations[BASE_NAME], digest: annotations[BASE_DIGEST] ?? '' },
    platforms: (index.manifests ?? []).flatMap((m) => (m?.platform ? [platformText(m.platform)] : [])),
  };
}

/** Adds entries, each folder before what it holds, refusing two entries at one path. */
class LayerPlan {
  readonly entries: TarEntry[] = [];
  private readonly kinds = new Map<string, 'dir' | 'file'>();

  constructor(private readonly ref: string) {}

  private claim(path: string, kind: 'dir' | 'file'): boolean {
    const had = this.kinds.get(path);
    if (had === 'dir' && kind === 'dir') return false;
    if (had) {
      throw new MaasError('MAAS_MODEL_INVALID', `${this.ref}: its files cannot be laid out as a modelcar: '${path}' would be two things`, {
        hint: 'A file of the version is named like a folder of the modelcar layout (<name>/, <name>/<version>/, the OCI layout in <name>/); register it with other file names.',
      });
    }
    this.kinds.set(path, kind);
    return true;
  }

  private parents(path: string): void {
    const dir = posix.dirname(path);
    if (dir === '.' || !this.claim(dir, 'dir')) return;
    this.parents(dir);
    this.entries.push({ type: 'Directory', path: dir });
  }

  add(entry: Exclude<TarEntry, { type: 'Directory' }>): void {
    this.parents(entry.path);
    this.claim(entry.path, 'file');
    this.entries.push(entry);
  }
}

/** Path order that is the same on every machine (localeCompare's depends on the locale). */
const byCodeUnits = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/** The /models layer's entries: the files, the Triton repository and the OCI layout of the version (staged in `staging`). */
async function layerEntries(registry: Registry, artifact: Artifact, staging: string): Promise<TarEntry[]> {
  const { name, version, manifest } = artifact;
  const ref = `${name}@${version}`;
  const record = registry.readVersion(name, version);
  const plan = new LayerPlan(ref);
  const fileOf = new Map<string, string>(); // layer digest → its path in the layer
  const files = manifest.layers.map((layer) => ({ layer, path: layer.annotations?.[ANNOTATIONS.filepath] ?? layer.digest }));
  for (const { layer, path } of [...files].sort((a, b) => byCodeUnits(a.path, b.path))) {
    const at = `models/${path}`;
    if (fileOf.has(layer.digest)) plan.add({ type: 'Link', path: at, linkpath: fileOf.get(layer.digest)! });
    else plan.add({ type: 'File', path: at, size: layer.size, source: registry.store.path(layer.digest) });
    fileOf.set(layer.digest, fileOf.get(layer.digest) ?? at);
  }
  const signature = listAttestations(registry, name, version, 'signature').at(-1);
  if (signature) plan.add({ type: 'File', path: `models/${MODEL_SIGNATURE_FILE}`, size: signature.bytes.length, source: signature.bytes });

  // Triton reads <name>/<version>/model.onnx; external data keeps the path the graph names it by.
  const graphDir = posix.dirname(record.onnx.modelFile);
  for (const { layer, path } of files.filter((f) => f.layer.mediaType === MEDIA_TYPES.weight).sort((a, b) => byCodeUnits(a.path, b.path))) {
    const inVersion = path === record.onnx.modelFile ? 'model.onnx' : posix.relative(graphDir, path);
    if (inVersion.startsWith('../')) throw new MaasError('MAAS_MODEL_INVALID', `${ref}: '${path}' is outside the folder of its graph ${record.onnx.modelFile}, which Triton cannot load`);
    plan.add({ type: 'Link', path: `models/${name}/${version}/${inVersion}`, linkpath: fileOf.get(layer.digest)! });
  }

  // The version as pushed, in an OCI layout: small files here, the weights as links to the files above.
  const layout = new OciLayout(join(staging, 'layout'));
  layout.ensure();
  layout.putBlobBytes(artifact.configBytes, manifest.config.digest);
  layout.putBlobBytes(artifact.manifestBytes, artifact.manifestDigest);
  const descriptor = { mediaType: MANIFEST_MEDIA_TYPE, digest: artifact.manifestDigest, size: artifact.manifestBytes.length, artifactType: manifest.artifactType };
  layout.tag(descriptor, [String(version)]);
  const attestations = listAttestations(registry, name, version);
  if (attestations.length) await pushLayoutReferrers(layout, descriptor, attestations);
  const staged = new Map(filesUnder(layout.root).map((path) => [path, join(layout.root, path)]));
  for (const { layer } of files) staged.set(`blobs/sha256/${layer.digest.slice('sha256:'.length)}`, '');
  for (const [path, source] of [...staged].sort(([a], [b]) => byCodeUnits(a, b))) {
    const at = `models/${name}/${path}`;
    const digest = `sha256:${posix.basename(path)}`;
    if (!source) plan.add({ type: 'Link', path: at, linkpath: fileOf.get(digest)! });
    else plan.add({ type: 'File', path: at, size: statSync(source).size, source });
  }
  return plan.entries;
}

/** Sends blobs and manifests to a registry or a layout; a blob the target has is not sent again. */
function sink(target: ImageTarget) {
  return {
    hasBlob: async (d: Descriptor) => (target.kind === 'registry' ? target.client.hasBlob(d) : target.layout.hasBlob(d)),
    putFile: async (path: string, d: Descriptor, onBytes?: OnBytes) => {
      if (target.kind === 'registry') await target.client.uploadFile(path, d, onBytes);
      else await target.layout.putBlobFile(path, d);
    },
    putBytes: async (bytes: Buffer, d: Descriptor) => {
      if (target.kind === 'registry') await target.client.uploadBytes(bytes, d);
      else target.layout.putBlobBytes(bytes, d.digest);
    },
    /** a manifest by digest (`tags` empty) or under tags. */
    putManifest: async (bytes: Buffer, mediaType: string, tags: string[]) => {
      if (target.kind === 'registry') {
        for (const reference of tags.length ? tags : [digestOf(bytes)]) await target.client.putManifest(reference, bytes, mediaType);
        return;
      }
      target.layout.putBlobBytes(bytes, digestOf(bytes));
      if (tags.length) target.layout.tag({ mediaType, digest: digestOf(bytes), size: bytes.length }, tags);
    },
  };
}

export interface ModelcarOptions {
  target: ImageTarget;
  /** HOST/REPOSITORY, or the layout's path: where the result says it is. */
  repository: string;
  /** the version's tags on the remote; the modelcar goes under each with MODELCAR_SUFFIX. */
  tags: string[];
  base?: ImageSource | undefined;
  onProgress?: ((label: string, total: number) => OnBytes) | undefined;
}

/** Reads the base image's top manifest before anything is pushed: a base that cannot be read refuses the push, and says it is the base. */
export async function checkBase(base: ImageSource): Promise<void> {
  try {
    await reader(base).tagged(base.reference);
  } catch (error) {
    if (!isMaasError(error)) throw error;
    throw new MaasError(error.code, `the modelcar base image ${base.name} cannot be read: ${error.message}`, {
      hint: 'Copy an image with a shell there first, e.g. skopeo copy --all docker://docker.io/library/busybox:1.37 docker://HOST/base/busybox:1.37 (oci:DIR:TAG for a folder).',
      cause: error,
    });
  }
}

/**
 * Pushes the version's modelcar, unless the remote has it already: the same ModelPack manifest
 * on the same base (the same base digest, when a base is named).
 */
export async function pushModelcar(registry: Registry, artifact: Artifact, options: ModelcarOptions): Promise<ModelcarResult> {
  const tags = options.tags.map(modelcarTag);
  const out = sink(options.target);
  const read = options.base && reader(options.base);
  const baseTop = options.base && read ? await read.tagged(options.base.reference) : undefined;
  const found = await findModelcar(options.target, tags[0]!);
  if (found && found.modelpackDigest === artifact.manifestDigest && found.base?.name === options.base?.name && found.base?.digest === baseTop?.digest) {
    await out.putManifest(found.bytes, INDEX_MEDIA_TYPE, tags);
    return { repository: options.repository, tags, digest: found.digest, status: 'present', ...(found.base ? { base: found.base } : {}), platforms: found.platforms, bytesSent: 0 };
  }
  const base = options.base && read && baseTop ? await readBase(options.base, read, baseTop) : undefined;
  const { name, version, manifest } = artifact;
  const ref = `${name}@${version}`;
  const dir = tempName(registry.layout.staging, 'modelcar');
  makeFolders(dir);
  try {
    const entries = await layerEntries(registry, artifact, dir);
    const total = entries.reduce((n, e) => n + (e.type === 'File' ? e.size : 0), 0);
    const layerFile = join(dir, 'layer.tar');
    const layer = await writeTar(entries, layerFile, options.onProgress?.('Building the modelcar layer', total));
    const layerDescriptor: Descriptor = { mediaType: LAYER_TAR, digest: layer.digest, size: layer.size };
    const created = manifest.annotations[ANNOTATIONS.created];
    const annotations: Record<string, string> = {
      [ANNOTATIONS.title]: name,
      [ANNOTATIONS.version]: String(version),
      ...(created ? { [ANNOTATIONS.created]: created } : {}),
      [MODELPACK_DIGEST_ANNOTATION]: artifact.manifestDigest,
      ...(base ? { [BASE_NAME]: base.name, [BASE_DIGEST]: base.digest } : {}),
    };
    const history = { ...(created ? { created } : {}), created_by: 'maas push --modelcar', comment: `${ref} under /models` };
    const images = base?.images ?? SCRATCH_PLATFORMS.map((platform) => ({ platform, config: { architecture: platform.architecture, os: platform.os, config: {} } as ImageConfig, layers: [] }));

    let bytesSent = 0;
    const send = async (d: Descriptor, put: () => Promise<void>) => {
      if (await out.hasBlob(d)) return;
      await put();
      bytesSent += d.size;
    };
    for (const d of new Map(images.flatMap((i) => i.layers).map((d) => [d.digest, d])).values()) {
      // A base layer comes through a scratch store that checks its digest before it goes on.
      await send(d, async () => {
        const store = new BlobStore(new Layout(join(dir, 'base')));
        await store.ingestStream(await read!.blob(d), d);
        await out.putFile(store.path(d.digest), d);
      });
    }
    await send(layerDescriptor, () => out.putFile(layerFile, layerDescriptor, options.onProgress?.('Pushing the modelcar layer', layer.size)));

    const listed: (Descriptor & { platform: Platform })[] = [];
    for (const { platform, config, layers } of images) {
      const configBytes = Buffer.from(JSON.stringify({
        ...config,
        ...(created ? { created } : {}),
        rootfs: { type: 'layers', diff_ids: [...(config.rootfs?.diff_ids ?? []), layer.digest] },
        // history is optional; a base without it stays without, so its entries still match its layers
        ...(config.history || !base ? { history: [...(config.history ?? []), history] } : {}),
      }));
      const configDescriptor: Descriptor = { mediaType: IMAGE_CONFIG, digest: digestOf(configBytes), size: configBytes.length };
      await send(configDescriptor, () => out.putBytes(configBytes, configDescriptor));
      const manifestBytes = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MANIFEST_MEDIA_TYPE, config: configDescriptor, layers: [...layers, layerDescriptor], annotations }));
      await out.putManifest(manifestBytes, MANIFEST_MEDIA_TYPE, []);
      listed.push({ mediaType: MANIFEST_MEDIA_TYPE, digest: digestOf(manifestBytes), size: manifestBytes.length, platform });
    }
    const indexBytes = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: INDEX_MEDIA_TYPE, manifests: listed, annotations }));
    await out.putManifest(indexBytes, INDEX_MEDIA_TYPE, tags);
    return {
      repository: options.repository,
      tags,
      digest: digestOf(indexBytes),
      status: 'pushed',
      ...(base ? { base: { name: base.name, digest: base.digest } } : {}),
      platforms: images.map((i) => platformText(i.platform)),
      layer,
      bytesSent,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
