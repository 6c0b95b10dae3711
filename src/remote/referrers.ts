/**
 * Attestations (signatures, provenance, SBOMs) as OCI referrers of a version's manifest
 * (image-spec 1.1): each is an image manifest whose `subject` is the version's manifest, whose
 * artifactType is the attestation's media type, with the empty config and the attestation as its
 * one layer. A registry with the referrers API indexes them itself (it answers OCI-Subject);
 * for one without it (distribution 2.8) maas keeps the referrers tag schema: an image index
 * tagged `sha256-<hex of the subject's digest>` that lists them. An OCI image layout lists them
 * in its index.json. Everything read back is bounded and checked against its digest.
 */
import { MaasError } from '../core/errors.js';
import { type Attestation, type AttestationKind, MAX_ATTESTATION_BYTES, isAttestation, kindOfReferrer, referrerType } from '../registry/attestations.js';
import { isDigest } from '../registry/layout.js';
import { type Descriptor, digestOf } from '../registry/manifest.js';
import { INDEX_MEDIA_TYPE, MANIFEST_MEDIA_TYPE, collect } from './artifact.js';
import type { RegistryClient } from './client.js';
import type { OciLayout } from './layout.js';

const EMPTY_JSON = Buffer.from('{}');
/** image-spec's empty descriptor: the config of an artifact that has none. */
const EMPTY_CONFIG: Descriptor = { mediaType: 'application/vnd.oci.empty.v1+json', digest: digestOf(EMPTY_JSON), size: 2 };
/** Referrers looked at per version: a few signatures, a provenance, an SBOM. */
const MAX_REFERRERS = 64;

export interface ReferrerDescriptor extends Descriptor {
  artifactType: string;
}

const kindOf = (d: ReferrerDescriptor) => kindOfReferrer(d.artifactType, d.annotations);

interface ImageIndex {
  schemaVersion: 2;
  mediaType: string;
  manifests: ReferrerDescriptor[];
}

/** The tag the referrers tag schema lists a subject's referrers under. */
export function referrersTag(subjectDigest: string): string {
  return subjectDigest.replace(':', '-');
}

/** An attestation's referrer manifest, pointing at `subject`. */
export function referrerManifest(subject: Descriptor, attestation: Attestation): { bytes: Buffer; descriptor: ReferrerDescriptor; layer: Descriptor } {
  const { artifactType, annotations } = referrerType(attestation);
  const layer: Descriptor = { mediaType: artifactType, digest: attestation.digest, size: attestation.bytes.length };
  const manifest = {
    schemaVersion: 2,
    mediaType: MANIFEST_MEDIA_TYPE,
    artifactType,
    config: EMPTY_CONFIG,
    layers: [layer],
    subject: { mediaType: subject.mediaType, digest: subject.digest, size: subject.size },
    ...(annotations ? { annotations } : {}),
  };
  const bytes = Buffer.from(JSON.stringify(manifest));
  return { bytes, layer, descriptor: { mediaType: MANIFEST_MEDIA_TYPE, digest: digestOf(bytes), size: bytes.length, artifactType, ...(annotations ? { annotations } : {}) } };
}

function parseIndex(bytes: Buffer, where: string): ImageIndex {
  let index: ImageIndex;
  try {
    index = JSON.parse(bytes.toString('utf8')) as ImageIndex;
  } catch (error) {
    throw new MaasError('MAAS_REMOTE_REJECTED', `${where} is not JSON: ${(error as Error).message}`);
  }
  if (index?.schemaVersion !== 2 || !Array.isArray(index.manifests)) throw new MaasError('MAAS_REMOTE_REJECTED', `${where} is not an image index`);
  return index;
}

/** The referrer descriptors maas keeps: manifests of a known artifactType, well-formed, at most MAX_REFERRERS. */
function attestationDescriptors(index: ImageIndex): ReferrerDescriptor[] {
  return index.manifests
    .filter((d) => d && d.mediaType === MANIFEST_MEDIA_TYPE && isDigest(d.digest) && Number.isSafeInteger(d.size) && kindOf(d) !== undefined)
    .slice(0, MAX_REFERRERS);
}

/** A referrer manifest read back, its digest checked: what it is about and its one layer. */
function readReferrer(bytes: Buffer, descriptor: ReferrerDescriptor): { subject: string | undefined; layer: Descriptor } {
  if (digestOf(bytes) !== descriptor.digest) throw new MaasError('MAAS_DIGEST_MISMATCH', `referrer ${descriptor.digest} arrived with other bytes`);
  let manifest: { subject?: Descriptor; layers?: Descriptor[] };
  try {
    manifest = JSON.parse(bytes.toString('utf8')) as typeof manifest;
  } catch {
    throw new MaasError('MAAS_REMOTE_REJECTED', `referrer ${descriptor.digest} is not JSON`);
  }
  const layer = manifest.layers?.[0];
  if (!layer || !isDigest(layer.digest) || !Number.isSafeInteger(layer.size) || layer.size > MAX_ATTESTATION_BYTES) {
    throw new MaasError('MAAS_REMOTE_REJECTED', `referrer ${descriptor.digest} holds no attestation maas can read (one layer of at most ${MAX_ATTESTATION_BYTES} bytes)`);
  }
  return { subject: manifest.subject?.digest, layer };
}

function checked(bytes: Buffer, layer: Descriptor): Buffer {
  if (bytes.length !== layer.size || digestOf(bytes) !== layer.digest) {
    throw new MaasError('MAAS_DIGEST_MISMATCH', `attestation ${layer.digest} arrived as ${bytes.length} bytes with digest ${digestOf(bytes)}`, { hint: 'The registry holds corrupted or tampered data.' });
  }
  return bytes;
}

/** The image index a referrers tag names; undefined when the tag is absent or names something else. */
async function tagIndex(client: RegistryClient, tag: string): Promise<Buffer | undefined> {
  if (!(await client.hasManifest(tag, [INDEX_MEDIA_TYPE]))) return undefined;
  const answer = await client.getManifest(tag, [INDEX_MEDIA_TYPE, MANIFEST_MEDIA_TYPE]);
  return answer.mediaType === INDEX_MEDIA_TYPE ? answer.bytes : undefined;
}

/** Keeps a fetched attestation that reads as one; junk a remote lists is dropped, never stored. */
function keep(found: { kind: AttestationKind; bytes: Buffer }[], kind: AttestationKind, bytes: Buffer): void {
  if (isAttestation(kind, bytes)) found.push({ kind, bytes });
}

export interface PushedReferrers {
  pushed: number;
  /** already there. */
  present: number;
  /** how the registry lists them: its referrers API, or the tag schema maas maintains. */
  via: 'referrers API' | 'tag schema' | 'layout index';
}

export async function pushReferrers(client: RegistryClient, subject: Descriptor, attestations: Attestation[]): Promise<PushedReferrers> {
  if (attestations.length === 0) return { pushed: 0, present: 0, via: 'referrers API' };
  let pushed = 0;
  let present = 0;
  let indexedByRegistry = true;
  const descriptors: ReferrerDescriptor[] = [];
  await client.uploadBytes(EMPTY_JSON, EMPTY_CONFIG).catch(async (error: unknown) => {
    if (!(await client.hasBlob(EMPTY_CONFIG))) throw error;
  });
  for (const attestation of attestations) {
    const { bytes, descriptor, layer } = referrerManifest(subject, attestation);
    descriptors.push(descriptor);
    if (await client.hasManifest(descriptor.digest, [MANIFEST_MEDIA_TYPE])) {
      present++;
      continue;
    }
    if (!(await client.hasBlob(layer))) await client.uploadBytes(attestation.bytes, layer);
    const { subjectProcessed } = await client.putManifest(descriptor.digest, bytes);
    indexedByRegistry &&= subjectProcessed;
    pushed++;
  }
  if (indexedByRegistry && pushed > 0) return { pushed, present, via: 'referrers API' };
  // The tag schema: merge into the index the tag already names, if any.
  const tag = referrersTag(subject.digest);
  const tagged = await tagIndex(client, tag);
  const existing = tagged ? parseIndex(tagged, `the referrers index ${tag}`) : undefined;
  const listed = new Set(existing?.manifests.map((d) => d.digest));
  const missing = descriptors.filter((d) => !listed.has(d.digest));
  if (missing.length) {
    const index: ImageIndex = { schemaVersion: 2, mediaType: INDEX_MEDIA_TYPE, manifests: [...(existing?.manifests ?? []), ...missing] };
    await client.putManifest(tag, Buffer.from(JSON.stringify(index)), INDEX_MEDIA_TYPE);
  }
  return { pushed, present, via: 'tag schema' };
}

/** The attestations pushed as referrers of `subjectDigest`, each checked against its digests. */
export async function fetchReferrers(client: RegistryClient, subjectDigest: string): Promise<{ kind: AttestationKind; bytes: Buffer }[]> {
  const indexBytes = (await client.referrers(subjectDigest)) ?? (await tagIndex(client, referrersTag(subjectDigest)));
  if (!indexBytes) return [];
  const found: { kind: AttestationKind; bytes: Buffer }[] = [];
  for (const descriptor of attestationDescriptors(parseIndex(indexBytes, `the referrers of ${subjectDigest}`))) {
    const { bytes } = await client.getManifest(descriptor.digest);
    const { subject, layer } = readReferrer(bytes, descriptor);
    if (subject !== subjectDigest) throw new MaasError('MAAS_REMOTE_REJECTED', `referrer ${descriptor.digest}, listed for ${subjectDigest}, is about ${String(subject).slice(0, 80)}`);
    keep(found, kindOf(descriptor)!, checked(await collect(await client.getBlob(layer), layer.size + 1), layer));
  }
  return found;
}

/** The same in an OCI image layout: blobs in, each referrer listed in index.json with its artifactType. */
export async function pushLayoutReferrers(layout: OciLayout, subject: Descriptor, attestations: Attestation[]): Promise<PushedReferrers> {
  let pushed = 0;
  let present = 0;
  layout.putBlobBytes(EMPTY_JSON, EMPTY_CONFIG.digest);
  for (const attestation of attestations) {
    const { bytes, descriptor, layer } = referrerManifest(subject, attestation);
    layout.putBlobBytes(attestation.bytes, layer.digest);
    layout.putBlobBytes(bytes, descriptor.digest);
    if (layout.addManifest(descriptor)) pushed++;
    else present++;
  }
  return { pushed, present, via: 'layout index' };
}

export async function fetchLayoutReferrers(layout: OciLayout, subjectDigest: string): Promise<{ kind: AttestationKind; bytes: Buffer }[]> {
  const found: { kind: AttestationKind; bytes: Buffer }[] = [];
  for (const descriptor of attestationDescriptors(layout.index() as ImageIndex)) {
    if (descriptor.size > MAX_ATTESTATION_BYTES) continue;
    const { subject, layer } = readReferrer(await collect(layout.readBlob(descriptor), descriptor.size + 1), descriptor);
    if (subject !== subjectDigest) continue; // another version's, in the same layout
    keep(found, kindOf(descriptor)!, checked(await collect(layout.readBlob(layer), layer.size + 1), layer));
  }
  return found;
}
