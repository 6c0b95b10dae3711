/**
 * What is said about a version beside it, committed with it: signatures (Sigstore bundles in the
 * OpenSSF model-signing format), provenance (in-toto statements, signed or not) and SBOMs
 * (CycloneDX), each a file `models/<name>/<version>/attestations/<kind>-<digest>.json` named by
 * its own SHA-256, so a version may carry several and the same one twice is one file. `push`
 * sends them as OCI referrers of the version's manifest and `pull` brings them back. They are
 * not part of the manifest: adding one never changes the version's digest.
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { MaasError } from '../core/errors.js';
import { digestOf } from './manifest.js';
import { formatRef } from './refs.js';
import type { Registry } from './registry.js';

export const ATTESTATION_KINDS = ['signature', 'provenance', 'sbom'] as const;
export type AttestationKind = (typeof ATTESTATION_KINDS)[number];

/** The Sigstore bundle (v0.3, JSON): what a signed attestation is, and a signature's artifactType. */
export const SIGSTORE_BUNDLE_MEDIA_TYPE = 'application/vnd.dev.sigstore.bundle.v0.3+json';
/** An in-toto statement, unsigned. */
export const IN_TOTO_MEDIA_TYPE = 'application/vnd.in-toto+json';
export const CYCLONEDX_MEDIA_TYPE = 'application/vnd.cyclonedx+json';
/** The predicate types of signed attestations, as the OpenSSF model-signing and SLSA specifications name them. */
export const PREDICATE_TYPES = {
  signature: 'https://model_signing/signature/v1.0',
  provenance: 'https://slsa.dev/provenance/v1',
} as const;
/** Sigstore's annotation on a bundle pushed to an OCI registry: what the bundle's statement is about. */
export const BUNDLE_PREDICATE_ANNOTATION = 'dev.sigstore.bundle.predicateType';

/**
 * How an attestation is pushed as a referrer: its artifactType (the media type of its one layer)
 * and annotations. Bundles follow Sigstore's layout for OCI (artifactType the bundle's media type,
 * the statement's predicateType as an annotation), so cosign and the reference tools find them;
 * an unsigned provenance is an in-toto statement; an SBOM is CycloneDX.
 */
export function referrerType(attestation: Pick<Attestation, 'kind' | 'bytes'>): { artifactType: string; annotations?: Record<string, string> } {
  if (attestation.kind === 'sbom') return { artifactType: CYCLONEDX_MEDIA_TYPE };
  if (attestation.kind === 'provenance' && !isBundle(attestation.bytes)) return { artifactType: IN_TOTO_MEDIA_TYPE };
  return { artifactType: SIGSTORE_BUNDLE_MEDIA_TYPE, annotations: { [BUNDLE_PREDICATE_ANNOTATION]: PREDICATE_TYPES[attestation.kind] } };
}

/** The kind of a referrer, back from its artifactType and annotations; undefined for one maas does not keep. */
export function kindOfReferrer(artifactType: string | undefined, annotations: Record<string, string> | undefined): AttestationKind | undefined {
  if (artifactType === CYCLONEDX_MEDIA_TYPE) return 'sbom';
  if (artifactType === IN_TOTO_MEDIA_TYPE) return 'provenance';
  if (artifactType !== SIGSTORE_BUNDLE_MEDIA_TYPE) return undefined;
  // A bundle without the annotation is a model signature: what the reference pushes.
  return annotations?.[BUNDLE_PREDICATE_ANNOTATION] === PREDICATE_TYPES.provenance ? 'provenance' : 'signature';
}

/**
 * Whether bytes from elsewhere are an attestation of `kind` worth keeping: a JSON object, and a
 * Sigstore bundle for a signature. Anything else is dropped at pull, never stored.
 */
export function isAttestation(kind: AttestationKind, bytes: Buffer): boolean {
  if (kind === 'signature') return isBundle(bytes);
  try {
    const value: unknown = JSON.parse(bytes.toString('utf8'));
    return typeof value === 'object' && value !== null && !Array.isArray(value);
  } catch {
    return false;
  }
}

/** Whether the bytes are a Sigstore bundle (a signed attestation), by its mediaType field. */
export function isBundle(bytes: Buffer): boolean {
  try {
    return (JSON.parse(bytes.toString('utf8')) as { mediaType?: unknown }).mediaType === SIGSTORE_BUNDLE_MEDIA_TYPE;
  } catch {
    return false;
  }
}

/** A signature written beside a model's files: the name the reference `model_signing` reads by default. */
export const MODEL_SIGNATURE_FILE = 'model.sig';

/** An attestation is a few KiB; an SBOM of a large model a few hundred. */
export const MAX_ATTESTATION_BYTES = 4 << 20;

export interface Attestation {
  kind: AttestationKind;
  /** relative to the registry root. */
  path: string;
  /** sha256: of its bytes. */
  digest: string;
  bytes: Buffer;
}

const FILE = /^(signature|provenance|sbom)-([0-9a-f]{16})\.json$/;

export function attestationsDir(registry: Registry, name: string, version: number): string {
  return `${registry.layout.versionDir(name, version)}/attestations`;
}

/** Where an attestation of these bytes is kept, and their digest. */
export function attestationFile(registry: Registry, name: string, version: number, kind: AttestationKind, bytes: Buffer): { path: string; digest: string } {
  const digest = digestOf(bytes);
  return { path: `${attestationsDir(registry, name, version)}/${kind}-${digest.slice(7, 23)}.json`, digest };
}

/** Every attestation stored for a version (of one kind, when given), in file order. */
export function listAttestations(registry: Registry, name: string, version: number, kind?: AttestationKind): Attestation[] {
  const dir = attestationsDir(registry, name, version);
  const abs = join(registry.root, dir);
  if (!existsSync(abs)) return [];
  return readdirSync(abs).sort().flatMap((file) => {
    const match = FILE.exec(file);
    if (!match || (kind && match[1] !== kind)) return [];
    const bytes = readFileSync(join(abs, file));
    return [{ kind: match[1] as AttestationKind, path: `${dir}/${file}`, digest: digestOf(bytes), bytes }];
  });
}

/** Parses an attestation's JSON, with the file named in the error. */
export function attestationJson(attestation: Attestation): unknown {
  try {
    return JSON.parse(attestation.bytes.toString('utf8'));
  } catch (error) {
    throw new MaasError('MAAS_CONFIG_INVALID', `${attestation.path} is not JSON: ${(error as Error).message}`, { hint: `Restore it with \`git checkout -- ${attestation.path}\`, or remove it.` });
  }
}

export interface AddedAttestations {
  added: Attestation[];
  /** those the version had already (the same bytes). */
  present: Attestation[];
  commit?: string;
}

/**
 * Stores attestations beside a version in one commit with a history entry. The same bytes again
 * are a no-op. The version must still be the one the attestations speak of (`manifestDigest`).
 */
export async function addAttestations(registry: Registry, name: string, version: number, manifestDigest: string, items: { kind: AttestationKind; bytes: Buffer }[]): Promise<AddedAttestations> {
  const ref = formatRef(name, version);
  for (const item of items) {
    if (item.bytes.length > MAX_ATTESTATION_BYTES) throw new MaasError('MAAS_USAGE', `a ${item.kind} of ${item.bytes.length} bytes is larger than ${MAX_ATTESTATION_BYTES}`);
  }
  const kinds = [...new Set(items.map((i) => i.kind))].join(', ');
  return registry.transact((r: AddedAttestations) => `${kinds} for ${ref}${r.added.length ? '' : ' (unchanged)'}`, async (tx) => {
    const record = registry.readVersion(name, version);
    if (record.manifestDigest !== manifestDigest) {
      throw new MaasError('MAAS_VERSION_CONFLICT', `${ref} is other bytes than the ${kinds} speaks of (${record.manifestDigest}, not ${manifestDigest})`, { hint: `Sign or attest ${ref} as it is now.` });
    }
    const existing = listAttestations(registry, name, version);
    const added: Attestation[] = [];
    const present: Attestation[] = [];
    const at = registry.now().toISOString();
    for (const { kind, bytes } of items) {
      const { path, digest } = attestationFile(registry, name, version, kind, bytes);
      const same = existing.find((e) => e.digest === digest) ?? added.find((e) => e.digest === digest);
      if (same) {
        present.push(same);
        continue;
      }
      tx.write(path, bytes);
      tx.record({ at, action: 'attest', model: name, version, digest, kind });
      added.push({ kind, path, digest, bytes });
    }
    return { added, present };
  });
}
