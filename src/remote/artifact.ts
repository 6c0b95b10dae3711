/**
 * A registered version as the OCI objects push sends and pull receives: the manifest's exact
 * bytes, its config blob and its layer blobs. Importing goes the other way, verifying every
 * digest before anything is written to the registry.
 */
import { existsSync } from 'node:fs';
import { MaasError, messageOf } from '../core/errors.js';
import { type AttestationKind, attestationFile, listAttestations } from '../registry/attestations.js';
import { versionTag } from '../registry/layout.js';
import { readSignature, type Signature } from '../onnx/inspect.js';
import { ANNOTATIONS, type Descriptor, type Manifest, type OnnxMetadata, digestOf, parseManifest } from '../registry/manifest.js';
import { assertModelName, formatRef, parseVersion } from '../registry/refs.js';
import type { Registry } from '../registry/registry.js';
import type { OnBytes } from '../registry/store.js';
import { corruptBlob } from '../registry/serve-cache.js';

export const MANIFEST_MEDIA_TYPE = 'application/vnd.oci.image.manifest.v1+json';
export const INDEX_MEDIA_TYPE = 'application/vnd.oci.image.index.v1+json';

export interface Artifact {
  name: string;
  version: number;
  manifest: Manifest;
  manifestBytes: Buffer;
  manifestDigest: string;
  configBytes: Buffer;
  /** config first, then the layers: everything a remote must hold before the manifest. */
  blobs: Descriptor[];
}

export function readArtifact(registry: Registry, name: string, version: number): Artifact {
  const record = registry.readVersion(name, version);
  const missing = record.manifest.layers.filter((l) => !existsSync(registry.store.path(l.digest)));
  // A stored file of another size than its blob is damage, not absence: the same exit 8 and hint as a changed byte.
  const damaged = record.manifest.layers.find((l) => !missing.includes(l) && !registry.store.has(l));
  if (damaged) throw corruptBlob(record, damaged.digest);
  if (missing.length) {
    throw new MaasError('MAAS_FILE_NOT_FOUND', `${formatRef(name, version)}: ${missing.length} blob(s) are not in this registry's store (${missing[0]!.digest})`, {
      hint: 'Pull the version first (maas pull REMOTE), or register the file again.',
    });
  }
  return {
    name,
    version,
    manifest: record.manifest,
    manifestBytes: record.manifestBytes,
    manifestDigest: record.manifestDigest,
    configBytes: registry.configBytes(name, version),
    blobs: [record.manifest.config, ...record.manifest.layers],
  };
}

export interface ImportSource {
  manifestBytes: Buffer;
  /** streams a blob's bytes; they are verified against the descriptor as they are stored. */
  blob: (descriptor: Descriptor) => Promise<AsyncIterable<Uint8Array>>;
}

export interface ImportResult {
  status: 'imported' | 'unchanged';
  name: string;
  version: number;
  ref: string;
  manifestDigest: string;
  blobsFetched: number;
  bytesFetched: number;
  commit?: string;
}

/** Up to `limit` bytes of a stream (a longer one is cut there: its digest will not match). */
export async function collect(chunks: AsyncIterable<Uint8Array>, limit: number): Promise<Buffer> {
  const parts: Buffer[] = [];
  let size = 0;
  for await (const chunk of chunks) {
    size += chunk.length;
    if (size > limit) break;
    parts.push(Buffer.from(chunk));
  }
  return Buffer.concat(parts);
}

/** What the caller checks before a blob is fetched: the manifest (its layers name every file and its digest) and the attestations that came with it. */
export type Admission = (version: { manifest: Manifest; manifestDigest: string; attestations: ReceivedAttestation[] }) => void | Promise<void>;

export interface ReceivedAttestation {
  kind: AttestationKind;
  bytes: Buffer;
}

/** Verifies and stores a version received from a remote (or an archive) as a normal version. */
export async function importArtifact(
  registry: Registry,
  source: ImportSource,
  options: {
    name: string;
    version?: number | undefined;
    expectedDigest?: string | undefined;
    onProgress?: (label: string, total: number) => OnBytes;
    /** signatures, provenance and SBOMs that came with it: stored with the version. */
    attestations?: ReceivedAttestation[];
    /** refuses the version (by throwing) before any of its blobs is fetched. */
    admit?: Admission | undefined;
  },
): Promise<ImportResult> {
  assertModelName(options.name);
  const manifestDigest = digestOf(source.manifestBytes);
  if (options.expectedDigest && manifestDigest !== options.expectedDigest) {
    throw new MaasError('MAAS_DIGEST_MISMATCH', `the manifest arrived with digest ${manifestDigest}, expected ${options.expectedDigest}`, {
      hint: 'The remote returned other bytes than it announced; nothing was written.',
    });
  }
  let parsed: { manifest: Manifest; onnx: OnnxMetadata };
  try {
    parsed = parseManifest(source.manifestBytes.toString('utf8'), 'the remote manifest');
  } catch (error) {
    throw new MaasError('MAAS_REMOTE_REJECTED', `the artifact is not a maas model version: ${(error as Error).message}`, {
      hint: 'maas pulls what maas pushed (a ModelPack manifest carrying dev.maas.onnx.v1+json).',
    });
  }
  const { manifest } = parsed;
  await options.admit?.({ manifest, manifestDigest, attestations: options.attestations ?? [] });
  const versionText = manifest.annotations[ANNOTATIONS.version];
  const version = options.version ?? (versionText ? remoteVersion(versionText) : undefined);
  if (version === undefined) throw new MaasError('MAAS_USAGE', 'the artifact names no version', { hint: 'Pass --version N.' });

  const configBytes = await collect(await source.blob(manifest.config), manifest.config.size);
  if (digestOf(configBytes) !== manifest.config.digest || configBytes.length !== manifest.config.size) {
    throw new MaasError('MAAS_DIGEST_MISMATCH', `config blob ${manifest.config.digest} does not match its digest`, { hint: 'The remote holds corrupted or tampered data; nothing was written.' });
  }
  const fetched: string[] = [];
  try {
    let bytesFetched = 0;
    for (const layer of manifest.layers) {
      // A blob already here is re-hashed, not trusted: one damaged on disk is fetched again.
      if ((await registry.store.check(layer)) === 'ok') continue;
      const onBytes = options.onProgress?.(`Fetching ${layer.annotations?.[ANNOTATIONS.filepath] ?? layer.digest}`, layer.size);
      await registry.store.ingestStream(await source.blob(layer), layer, onBytes);
      fetched.push(layer.digest);
      bytesFetched += layer.size;
    }
    checkDescribes(registry, manifest, parsed.onnx);
    return await commitImport(registry, { name: options.name, version, manifest, manifestDigest, configBytes, manifestBytes: source.manifestBytes, blobsFetched: fetched.length, bytesFetched, attestations: options.attestations ?? [] });
  } catch (error) {
    await dropUnreferenced(registry, fetched);
    throw error;
  }
}

/** The version a remote's manifest names: its data, so a bad one is the remote's fault (exit 5). */
function remoteVersion(text: string): number {
  try {
    return parseVersion(text);
  } catch {
    throw new MaasError('MAAS_REMOTE_REJECTED', `the artifact names the version '${text.slice(0, 40)}', which is not a version number`, { hint: 'Pass --version N to pull it as that version.' });
  }
}

/**
 * The manifest's account of its model (the IO signature serve validates requests against) must be
 * the model file's own: a signature covers the files, not this annotation, so an artifact edited
 * to lie about its inputs is refused here rather than served.
 */
function checkDescribes(registry: Registry, manifest: Manifest, onnx: OnnxMetadata): void {
  const layer = manifest.layers.find((l) => l.annotations?.[ANNOTATIONS.filepath] === onnx.modelFile);
  const rejected = (why: string) => new MaasError('MAAS_REMOTE_REJECTED', `the artifact's metadata (${ANNOTATIONS.onnx}) does not describe its model: ${why}`, {
    hint: 'It was edited after maas pushed it; nothing was written. Push it again from the registry that registered it.',
  });
  if (!layer) throw rejected(`no layer is its model file ${onnx.modelFile}`);
  let actual: Signature;
  try {
    actual = readSignature(registry.store.path(layer.digest));
  } catch (error) {
    throw rejected(messageOf(error));
  }
  if (JSON.stringify(actual) !== JSON.stringify(onnx.signature)) {
    throw rejected(`it names the inputs and outputs ${describeSignature(onnx.signature)}, the model file has ${describeSignature(actual)}`);
  }
}

const describeSignature = (s: Signature) => [...s.inputs, ...s.outputs].map((t) => `${t.name}: ${t.dtype}${t.shape ? `[${t.shape.map((d) => d ?? '?').join(', ')}]` : ''}`).join(', ');

async function commitImport(
  registry: Registry,
  args: { name: string; version: number; manifest: Manifest; manifestDigest: string; manifestBytes: Buffer; configBytes: Buffer; blobsFetched: number; bytesFetched: number; attestations: ReceivedAttestation[] },
): Promise<ImportResult> {
  const { name, version, manifest, manifestDigest, blobsFetched, bytesFetched } = args;
  return registry.transact((r: ImportResult) => `import ${r.ref} (${r.manifestDigest})`, async (tx) => {
    const ref = formatRef(name, version);
    const base = { name, version, ref, manifestDigest, blobsFetched, bytesFetched };
    const at = registry.now().toISOString();
    const attest = () => {
      const have = new Set(listAttestations(registry, name, version).map((a) => a.digest));
      for (const { kind, bytes } of args.attestations) {
        const { path, digest } = attestationFile(registry, name, version, kind, bytes);
        if (have.has(digest)) continue;
        have.add(digest);
        tx.write(path, bytes);
        tx.record({ at, action: 'attest', model: name, version, digest, kind });
      }
    };
    if (registry.versions(name).includes(version)) {
      if (registry.readVersion(name, version).manifestDigest === manifestDigest) {
        attest(); // signatures added to the remote since an earlier pull
        return { ...base, status: 'unchanged' as const };
      }
      throw new MaasError('MAAS_VERSION_CONFLICT', `${ref} already exists here with another manifest`, {
        hint: `Versions are immutable. Pull it under another name (--name) or version (--version).`,
      });
    }
    registry.assertNumberFree(name, version, manifest.layers[0]?.digest, 'Pass --version with a free number.');
    const dir = registry.layout.versionDir(name, version);
    tx.write(`${dir}/config.json`, args.configBytes);
    tx.write(`${dir}/manifest.json`, args.manifestBytes);
    tx.record({ at, action: 'import', model: name, version, digest: manifest.layers[0]!.digest });
    attest();
    tx.tag(versionTag(name, version));
    return { ...base, status: 'imported' as const };
  });
}

/**
 * A refused import leaves nothing behind: the blobs it stored that no version references are
 * removed, under the lock so a register that just came to use one keeps it. When a version
 * cannot be read, nothing is removed (`maas gc` decides later).
 */
async function dropUnreferenced(registry: Registry, digests: string[]): Promise<void> {
  if (digests.length === 0) return;
  let lock: Awaited<ReturnType<Registry['lock']>> | undefined;
  try {
    lock = await registry.lock();
    const referenced = new Set<string>();
    for (const name of registry.modelNames()) {
      for (const version of registry.versions(name)) {
        for (const layer of registry.readVersion(name, version).manifest.layers) referenced.add(layer.digest);
      }
    }
    for (const digest of digests) if (!referenced.has(digest)) registry.store.remove(digest);
  } catch {
    // best effort: the refusal the user sees is the original error
  } finally {
    lock?.release();
  }
}
