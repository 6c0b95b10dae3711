/**
 * Provenance of a conversion: an in-toto Statement v1 with a SLSA provenance v1 predicate. The
 * subject is what came out (the version's manifest and its model file, or the written file),
 * the one resolved dependency is what went in (the source file's digest, and the registered
 * version that holds it when there is one), the external parameters are the flags, and the
 * accuracy report is a byproduct. Signed (a Sigstore bundle around the DSSE envelope) when a key
 * is given, so a verifier knows who ran the conversion; a bare statement otherwise.
 */
import { createHash } from 'node:crypto';
import { basename } from 'node:path';
import { VERSION } from '../core/version.js';
import { PREDICATE_TYPES } from '../registry/attestations.js';
import type { AccuracyReport } from '../registry/manifest.js';
import { type ModelSigner, IN_TOTO_STATEMENT_TYPE, signStatement } from './model-signing.js';

/** What `buildType` names: a maas conversion, its parameters as `externalParameters` documents them. */
export const CONVERSION_BUILD_TYPE = 'https://github.com/maas-dev/maas/blob/main/README.md#provenance-of-a-conversion';
export const BUILDER_ID = `https://github.com/maas-dev/maas@${VERSION}`;

/** An in-toto ResourceDescriptor. */
export interface ResourceDescriptor {
  name?: string;
  uri?: string;
  digest: Record<string, string>;
  /** base64 of the resource's bytes, for a small one carried inline. */
  content?: string;
  mediaType?: string;
  annotations?: Record<string, unknown>;
}

export interface ProvenanceStatement {
  _type: typeof IN_TOTO_STATEMENT_TYPE;
  subject: ResourceDescriptor[];
  predicateType: typeof PREDICATE_TYPES.provenance;
  predicate: {
    buildDefinition: {
      buildType: string;
      externalParameters: { source: string; steps: string[]; flags: Record<string, unknown> };
      internalParameters: { node: string; platform: string };
      resolvedDependencies: ResourceDescriptor[];
    };
    runDetails: {
      builder: { id: string };
      metadata: { startedOn: string; finishedOn: string };
      byproducts: ResourceDescriptor[];
    };
  };
}

/** `sha256:<hex>` as an in-toto digest set; an empty set for anything else (a folder source). */
function digestSet(digest: string): Record<string, string> {
  return digest.startsWith('sha256:') ? { sha256: digest.slice(7) } : {};
}

/** The flags of a conversion as parameters: set values only, no callbacks. */
export function conversionParameters(flags: object): Record<string, unknown> {
  return Object.fromEntries(Object.entries(flags).filter(([, v]) => v !== undefined && v !== false && typeof v !== 'function'));
}

export interface ConversionFacts {
  /** what came out: the version (`mlp@2`, its manifest digest) and/or its files. */
  subject: { name: string; digest: string }[];
  /** what went in: the source file as the user named it, and its digest. */
  source: { name: string; digest: string; graphFingerprint: string };
  /** the registered version that holds the source's bytes, if any. */
  sourceVersion?: { ref: string; manifestDigest: string } | undefined;
  steps: string[];
  flags: Record<string, unknown>;
  accuracy: AccuracyReport;
  forced: boolean;
  startedOn: Date;
  finishedOn: Date;
}

/** A small JSON document as a byproduct carried inline, with its digest. */
function inline(name: string, value: unknown): ResourceDescriptor {
  const bytes = Buffer.from(JSON.stringify(value));
  return { name, mediaType: 'application/json', digest: { sha256: createHash('sha256').update(bytes).digest('hex') }, content: bytes.toString('base64') };
}

export function conversionProvenance(facts: ConversionFacts): ProvenanceStatement {
  const { source, sourceVersion } = facts;
  const material: ResourceDescriptor = {
    name: basename(source.name),
    ...(sourceVersion ? { uri: `maas:${sourceVersion.ref}` } : {}),
    digest: digestSet(source.digest),
    annotations: { graphFingerprint: source.graphFingerprint, ...(sourceVersion ? { manifestDigest: sourceVersion.manifestDigest } : {}) },
  };
  return {
    _type: IN_TOTO_STATEMENT_TYPE,
    subject: facts.subject.map((s) => ({ name: s.name, digest: digestSet(s.digest) })),
    predicateType: PREDICATE_TYPES.provenance,
    predicate: {
      buildDefinition: {
        buildType: CONVERSION_BUILD_TYPE,
        externalParameters: { source: sourceVersion?.ref ?? basename(source.name), steps: facts.steps, flags: facts.flags },
        internalParameters: { node: process.version, platform: `${process.platform}-${process.arch}` },
        resolvedDependencies: [material],
      },
      runDetails: {
        builder: { id: BUILDER_ID },
        metadata: { startedOn: facts.startedOn.toISOString(), finishedOn: facts.finishedOn.toISOString() },
        byproducts: [inline('accuracy-report.json', { ...facts.accuracy, forced: facts.forced })],
      },
    },
  };
}

/** The bytes to store or write: a Sigstore bundle when signed, the statement itself otherwise. */
export function provenanceBytes(statement: ProvenanceStatement, signer: ModelSigner | undefined): Buffer {
  return Buffer.from(`${JSON.stringify(signer ? signStatement(statement, signer) : statement, null, 2)}\n`);
}
