/**
 * Model signatures in the OpenSSF model-signing (OMS) v1.0 format, as the reference
 * implementation (sigstore/model-transparency, `model_signing` 1.x) writes and verifies them, so
 * that `model_signing verify key|certificate` accepts what `maas sign` writes and the other way
 * round. From the outside in:
 *
 * - a Sigstore bundle v0.3 as JSON (`mediaType` application/vnd.dev.sigstore.bundle.v0.3+json),
 *   whose `verificationMaterial` is `{ publicKey: { hint }, tlogEntries: [] }` for a bare key (hint:
 *   SHA-256 hex of the key's SubjectPublicKeyInfo PEM) or `{ x509CertificateChain: { certificates:
 *   [{ rawBytes }] }, tlogEntries: [] }` for a certificate (base64 DER, signing certificate first);
 * - a DSSE envelope `{ payload, payloadType: "application/vnd.in-toto+json", signatures: [{ sig,
 *   keyid: "" }] }`: `sig` is base64 of an ASN.1 DER ECDSA signature over the DSSE
 *   pre-authentication encoding `DSSEv1 <len(type)> <type> <len(payload)> <payload>`, with SHA-256
 *   on P-256, SHA-384 on P-384 (SHA-512 on P-521);
 * - an in-toto Statement v1 (`_type` https://in-toto.io/Statement/v1) with one subject `{ name,
 *   digest: { sha256 } }` and `predicateType` https://model_signing/signature/v1.0, whose predicate
 *   is `{ serialization: { method: "files", hash_type: "sha256", allow_symlinks: false },
 *   resources: [{ name, algorithm: "sha256", digest }] }`: every file of the model by its path
 *   inside the model folder, sorted by path components;
 * - the subject's digest is SHA-256 over the concatenated raw (32-byte) digests of the resources,
 *   in their order in the statement; the subject's name is informative (the reference writes the
 *   model folder's name and never checks it).
 *
 * Nothing here reads model files: signing and verifying take each file's name and SHA-256. That
 * is deliberate, so a caller can verify from an OCI manifest alone, without fetching blobs,
 * where the layer digests are the files' digests (ModelPack `.raw` layers): pass the layer
 * digests (`sha256:<hex>` is accepted) with the file names from their annotations.
 */
import { X509Certificate, createHash, sign as cryptoSign, verify as cryptoVerify, type KeyObject } from 'node:crypto';
import { dsse } from '@sigstore/core';
import { MaasError } from '../core/errors.js';
import { IN_TOTO_MEDIA_TYPE, PREDICATE_TYPES, SIGSTORE_BUNDLE_MEDIA_TYPE } from '../registry/attestations.js';
import { verifyCertificateChain, summarizeCertificate, type CertificateSummary } from './certificate-chain.js';
import { curveOf, digestForCurve, keyHint, type CertificateSigner, type SigningKey, type VerifyingCurve } from './keys.js';

export const SIGSTORE_BUNDLE_V03_MEDIA_TYPE = SIGSTORE_BUNDLE_MEDIA_TYPE;
export const IN_TOTO_PAYLOAD_TYPE = IN_TOTO_MEDIA_TYPE;
export const IN_TOTO_STATEMENT_TYPE = 'https://in-toto.io/Statement/v1';
export const MODEL_SIGNING_PREDICATE_TYPE = PREDICATE_TYPES.signature;

/**
 * One file of a model version: its path inside the version (POSIX, relative, e.g. `model.onnx`,
 * `weights/model.onnx.data`) and the SHA-256 of its bytes, as 64 hex digits or as an OCI digest
 * `sha256:<hex>` (so a ModelPack `.raw` layer digest can be passed as it is).
 */
export interface ModelFile {
  name: string;
  sha256: string;
}

/** The predicate's `serialization`: how the resources were made. */
export interface ModelSigningSerialization {
  method: 'files';
  hash_type: 'sha256';
  allow_symlinks: boolean;
  /** paths the signer left out (the reference ≥ 1.1 writes them; verifiers then ignore them too). */
  ignore_paths?: string[];
}

export interface ModelSigningResource {
  name: string;
  algorithm: string;
  digest: string;
}

/** The in-toto statement that is signed. */
export interface ModelSigningStatement {
  _type: typeof IN_TOTO_STATEMENT_TYPE;
  subject: [{ name: string; digest: { sha256: string } }];
  predicateType: typeof MODEL_SIGNING_PREDICATE_TYPE;
  predicate: { serialization: ModelSigningSerialization; resources: ModelSigningResource[] };
}

export type ModelSignatureVerificationMaterial =
  | { publicKey: { hint: string }; tlogEntries: unknown[] }
  | { x509CertificateChain: { certificates: { rawBytes: string }[] }; tlogEntries: unknown[] };

/** The signature file: a Sigstore bundle v0.3, as JSON. `JSON.stringify` it to write it. */
export interface ModelSignatureBundle {
  mediaType: typeof SIGSTORE_BUNDLE_V03_MEDIA_TYPE;
  verificationMaterial: ModelSignatureVerificationMaterial;
  dsseEnvelope: {
    /** base64 of the statement's JSON bytes. */
    payload: string;
    payloadType: string;
    /** one signature: base64 DER ECDSA over the PAE; keyid empty, as the reference writes it. */
    signatures: { sig: string; keyid: string }[];
  };
}

export interface SignModelOptions {
  /** the subject's name: informative (the reference uses the model folder's name), e.g. `mlp-2`. */
  name: string;
  /** recorded as `serialization.ignore_paths` when given (sorted); omitted otherwise. */
  ignorePaths?: string[];
}

/** What signs: a bare key, or a key with its certificate chain. */
export type ModelSigner = SigningKey | CertificateSigner;

/** Trust for verification: public keys (bare-key signatures) or certificates (certificate-chain signatures). */
export type SignatureTrust = { keys: KeyObject[] } | { certificates: X509Certificate[] };

export interface VerifyModelOptions {
  /** when given, the statement's subject name must be this (the reference does not check it). */
  name?: string;
}

/** Why a verification failed: `details.reason` of the MAAS_VERIFY_FAILED error. */
export type SignatureFailureReason =
  | 'bundle-malformed'
  | 'media-type'
  | 'trust-mismatch'
  | 'key-not-trusted'
  | 'key-unsupported'
  | 'certificate-untrusted'
  | 'certificate-usage'
  | 'signature-invalid'
  | 'payload-type'
  | 'statement-malformed'
  | 'statement-type'
  | 'predicate-type'
  | 'subject-digest-mismatch'
  | 'subject-name-mismatch'
  | 'serialization-unsupported'
  | 'digest-mismatch'
  | 'file-missing'
  | 'file-added'
  | 'files-differ';

/** One difference between the signed files and the files given. */
export interface FileDifference {
  name: string;
  kind: 'digest-mismatch' | 'file-missing' | 'file-added';
  /** sha256 hex as signed (absent for file-added). */
  signed?: string;
  /** sha256 hex as given (absent for file-missing). */
  actual?: string;
}

export interface ModelSignatureVerification {
  ok: true;
  method: 'key' | 'certificate';
  /** the signer's key hint (SHA-256 hex of its SubjectPublicKeyInfo PEM), for either method. */
  keyHint: string;
  curve: VerifyingCurve;
  /** for certificate signatures: the signing certificate and the path to the trusted root. */
  certificate?: CertificateSummary;
  chain?: CertificateSummary[];
  subject: { name: string; sha256: string };
  /** the signed files, in the statement's order. */
  files: ModelFile[];
  serialization: ModelSigningSerialization;
  /** things that did not fail verification but deserve a line (e.g. a bundle without a key hint). */
  warnings: string[];
}

/** A statement read from a bundle without verifying anything (for display). */
export interface ParsedModelSignature {
  method: 'key' | 'certificate';
  /** the bundle's key hint, when it has one. */
  keyHint?: string;
  certificates?: CertificateSummary[];
  subject: { name: string; sha256: string };
  predicateType: string;
  serialization: Record<string, unknown>;
  resources: ModelSigningResource[];
  /** whether the subject's digest is the digest of the resources (verification also checks the signature). */
  subjectMatches: boolean;
}

function failure(reason: SignatureFailureReason, message: string, options: { hint?: string; details?: Record<string, unknown> } = {}): MaasError {
  return new MaasError('MAAS_VERIFY_FAILED', message, { ...(options.hint === undefined ? {} : { hint: options.hint }), details: { reason, ...options.details } });
}

const HEX64 = /^[0-9a-f]{64}$/;

/** The sha256 hex of a ModelFile digest given as hex or as `sha256:<hex>` (lower-cased). */
function fileDigest(file: ModelFile): string {
  const hex = file.sha256.toLowerCase().replace(/^sha256:/, '');
  if (!HEX64.test(hex)) throw new MaasError('MAAS_USAGE', `${file.name}: "${file.sha256}" is not a SHA-256 digest (64 hex digits, optionally prefixed by sha256:)`);
  return hex;
}

/** A file name as the reference reads a resource name: a POSIX path, `.` and empty parts dropped. */
function normalizeName(name: string): string | undefined {
  if (name.startsWith('/') || name.includes('\0') || name.includes('\\')) return undefined;
  const parts = name.split('/').filter((part) => part !== '' && part !== '.');
  if (parts.length === 0 || parts.includes('..')) return undefined;
  return parts.join('/');
}

function checkFileName(name: string): string {
  const normal = normalizeName(name);
  if (normal === undefined || normal !== name) {
    throw new MaasError('MAAS_USAGE', `"${name}" is not a file path inside the model (relative, POSIX, no "." or ".." parts)`);
  }
  return normal;
}

/** Python's str ordering: by code point (JavaScript's `<` compares UTF-16 units). */
function compareCodePoints(a: string, b: string): number {
  const ia = a[Symbol.iterator]();
  const ib = b[Symbol.iterator]();
  for (;;) {
    const x = ia.next();
    const y = ib.next();
    if (x.done || y.done) return x.done && y.done ? 0 : x.done ? -1 : 1;
    const d = x.value.codePointAt(0)! - y.value.codePointAt(0)!;
    if (d !== 0) return d;
  }
}

/**
 * The order of resources in the statement: the reference sorts `PurePosixPath`s, which compare
 * part by part (so `a/b` sorts before `a.b`, unlike a plain string sort).
 */
export function compareResourceNames(a: string, b: string): number {
  const pa = a.split('/');
  const pb = b.split('/');
  for (let i = 0; i < Math.min(pa.length, pb.length); i++) {
    const d = compareCodePoints(pa[i]!, pb[i]!);
    if (d !== 0) return d;
  }
  return pa.length - pb.length;
}

/** SHA-256 over the concatenated raw digests, in order: the statement subject's digest. */
export function subjectDigest(digestsHex: string[]): string {
  const hash = createHash('sha256');
  for (const hex of digestsHex) hash.update(Buffer.from(hex, 'hex'));
  return hash.digest('hex');
}

/** The in-toto statement for a model's files (sorted, validated). */
export function buildStatement(files: ModelFile[], options: SignModelOptions): ModelSigningStatement {
  if (typeof options.name !== 'string' || options.name === '') throw new MaasError('MAAS_USAGE', 'a model signature needs a subject name (e.g. the model and version)');
  if (files.length === 0) throw new MaasError('MAAS_USAGE', 'a model signature needs at least one file');
  const seen = new Set<string>();
  const resources = files
    .map((file) => {
      const name = checkFileName(file.name);
      if (seen.has(name)) throw new MaasError('MAAS_USAGE', `the file ${name} is given twice`);
      seen.add(name);
      return { name, algorithm: 'sha256', digest: fileDigest(file) };
    })
    .sort((a, b) => compareResourceNames(a.name, b.name));
  const serialization: ModelSigningSerialization = { method: 'files', hash_type: 'sha256', allow_symlinks: false };
  if (options.ignorePaths !== undefined) serialization.ignore_paths = [...options.ignorePaths].sort(compareResourceNames);
  return {
    _type: IN_TOTO_STATEMENT_TYPE,
    subject: [{ name: options.name, digest: { sha256: subjectDigest(resources.map((r) => r.digest)) } }],
    predicateType: MODEL_SIGNING_PREDICATE_TYPE,
    predicate: { serialization, resources },
  };
}

/** The DSSE pre-authentication encoding: the bytes the signature is over. */
export function preAuthEncoding(payloadType: string, payload: Buffer): Buffer {
  return dsse.preAuthEncoding(payloadType, payload);
}

const isCertificateSigner = (signer: ModelSigner): signer is CertificateSigner => 'certificate' in signer;

/**
 * Signs any in-toto statement into a bundle (DSSE, in-toto JSON payload): the statement is
 * serialized as 2-space indented JSON, as the reference does. `signModelFiles` is this with the
 * model-signing statement; tests and other predicates (provenance) use it directly.
 */
export function signStatement(statement: object, signer: ModelSigner): ModelSignatureBundle {
  const key = isCertificateSigner(signer) ? signer.key : signer;
  const payload = Buffer.from(JSON.stringify(statement, null, 2), 'utf8');
  const sig = cryptoSign(digestForCurve(key.curve), preAuthEncoding(IN_TOTO_PAYLOAD_TYPE, payload), { key: key.privateKey, dsaEncoding: 'der' });
  const verificationMaterial: ModelSignatureVerificationMaterial = isCertificateSigner(signer)
    ? { x509CertificateChain: { certificates: [signer.certificate, ...signer.chain].map((c) => ({ rawBytes: c.raw.toString('base64') })) }, tlogEntries: [] }
    : { publicKey: { hint: key.hint }, tlogEntries: [] };
  return {
    mediaType: SIGSTORE_BUNDLE_V03_MEDIA_TYPE,
    verificationMaterial,
    dsseEnvelope: { payload: payload.toString('base64'), payloadType: IN_TOTO_PAYLOAD_TYPE, signatures: [{ sig: sig.toString('base64'), keyid: '' }] },
  };
}

/**
 * Signs a model version given its files' names and SHA-256 digests (no file is read: pass the
 * registry's blob digests, or the OCI layer digests of a ModelPack manifest). Returns the
 * Sigstore bundle v0.3 object; `JSON.stringify` writes the signature file.
 */
export function signModelFiles(files: ModelFile[], signer: ModelSigner, options: SignModelOptions): ModelSignatureBundle {
  return signStatement(buildStatement(files, options), signer);
}

// ---------------------------------------------------------------------------------------------
// Reading a bundle

type Json = Record<string, unknown>;
const isObject = (value: unknown): value is Json => typeof value === 'object' && value !== null && !Array.isArray(value);
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

function malformed(path: string, problem: string): MaasError {
  return failure('bundle-malformed', `the signature bundle is malformed: ${path} ${problem}`, { hint: 'The file is not a model signature (a Sigstore bundle v0.3 JSON), or it was damaged.', details: { path } });
}

function base64Field(value: unknown, path: string): Buffer {
  if (typeof value !== 'string' || value.length === 0) throw malformed(path, 'is missing or not a string');
  const text = value.replace(/\s/g, '');
  if (text.length % 4 !== 0 || !BASE64.test(text)) throw malformed(path, 'is not base64');
  return Buffer.from(text, 'base64');
}

interface ReadBundle {
  material: { kind: 'key'; hint: string | undefined } | { kind: 'certificate'; certificates: X509Certificate[] };
  payloadType: string;
  payload: Buffer;
  signature: Buffer;
}

function readBundle(bundle: unknown): ReadBundle {
  let value = bundle;
  if (typeof value === 'string' || Buffer.isBuffer(value)) {
    try {
      value = JSON.parse(value.toString());
    } catch {
      throw malformed('the file', 'is not JSON');
    }
  }
  if (!isObject(value)) throw malformed('the bundle', 'is not a JSON object');
  if (typeof value.mediaType !== 'string') throw malformed('mediaType', 'is missing');
  if (value.mediaType !== SIGSTORE_BUNDLE_V03_MEDIA_TYPE) {
    throw failure('media-type', `the bundle's mediaType is ${value.mediaType}; a model signature is a Sigstore bundle v0.3 (${SIGSTORE_BUNDLE_V03_MEDIA_TYPE})`, { details: { mediaType: value.mediaType } });
  }
  const vm = value.verificationMaterial;
  if (!isObject(vm)) throw malformed('verificationMaterial', 'is missing');
  if (vm.tlogEntries !== undefined && !Array.isArray(vm.tlogEntries)) throw malformed('verificationMaterial.tlogEntries', 'is not a list');
  const kinds = ['publicKey', 'x509CertificateChain', 'certificate'].filter((k) => vm[k] !== undefined);
  if (kinds.length !== 1) throw malformed('verificationMaterial', kinds.length === 0 ? 'has no publicKey, x509CertificateChain or certificate' : `has both ${kinds.join(' and ')}`);
  let material: ReadBundle['material'];
  if (vm.publicKey !== undefined) {
    if (!isObject(vm.publicKey)) throw malformed('verificationMaterial.publicKey', 'is not an object');
    const hint = vm.publicKey.hint;
    if (hint !== undefined && hint !== null && typeof hint !== 'string') throw malformed('verificationMaterial.publicKey.hint', 'is not a string');
    material = { kind: 'key', hint: typeof hint === 'string' && hint !== '' ? hint : undefined };
  } else {
    const raws: { value: unknown; path: string }[] = [];
    if (vm.certificate !== undefined) {
      if (!isObject(vm.certificate)) throw malformed('verificationMaterial.certificate', 'is not an object');
      raws.push({ value: vm.certificate.rawBytes, path: 'verificationMaterial.certificate.rawBytes' });
    } else {
      const chain = vm.x509CertificateChain;
      if (!isObject(chain) || !Array.isArray(chain.certificates) || chain.certificates.length === 0) throw malformed('verificationMaterial.x509CertificateChain.certificates', 'is missing or empty');
      chain.certificates.forEach((c: unknown, i) => raws.push({ value: isObject(c) ? c.rawBytes : undefined, path: `verificationMaterial.x509CertificateChain.certificates[${i}].rawBytes` }));
    }
    const certificates = raws.map(({ value: raw, path }) => {
      const der = base64Field(raw, path);
      try {
        return new X509Certificate(der);
      } catch {
        throw malformed(path, 'is not a DER X.509 certificate');
      }
    });
    material = { kind: 'certificate', certificates };
  }
  const envelope = value.dsseEnvelope;
  if (!isObject(envelope)) throw malformed('dsseEnvelope', value.messageSignature !== undefined ? 'is missing (this bundle signs a blob, not an in-toto statement)' : 'is missing');
  if (typeof envelope.payloadType !== 'string') throw malformed('dsseEnvelope.payloadType', 'is missing');
  const payload = base64Field(envelope.payload, 'dsseEnvelope.payload');
  if (!Array.isArray(envelope.signatures) || envelope.signatures.length !== 1) {
    throw malformed('dsseEnvelope.signatures', Array.isArray(envelope.signatures) ? `has ${envelope.signatures.length} signatures; a model signature has exactly one` : 'is missing');
  }
  const first: unknown = envelope.signatures[0];
  const signature = base64Field(isObject(first) ? first.sig : undefined, 'dsseEnvelope.signatures[0].sig');
  return { material, payloadType: envelope.payloadType, payload, signature };
}

interface ReadStatement {
  subject: { name: string; sha256: string };
  predicateType: string;
  serialization: Json;
  resources: ModelSigningResource[];
}

function statementError(problem: string): MaasError {
  return failure('statement-malformed', `the signed statement is malformed: ${problem}`);
}

function readStatement(payload: Buffer): ReadStatement {
  let statement: unknown;
  try {
    statement = JSON.parse(payload.toString('utf8'));
  } catch {
    throw statementError('the payload is not JSON');
  }
  if (!isObject(statement)) throw statementError('the payload is not a JSON object');
  if (statement._type !== IN_TOTO_STATEMENT_TYPE) {
    throw failure('statement-type', `the payload is not an in-toto Statement v1: _type is ${JSON.stringify(statement._type)}, expected ${IN_TOTO_STATEMENT_TYPE}`);
  }
  const predicateType = statement.predicateType;
  if (typeof predicateType !== 'string') throw statementError('predicateType is missing');
  const subjects = statement.subject;
  if (!Array.isArray(subjects) || subjects.length !== 1) throw statementError(`expected exactly one subject, found ${Array.isArray(subjects) ? subjects.length : 'none'}`);
  const subject: unknown = subjects[0];
  if (!isObject(subject) || typeof subject.name !== 'string' || !isObject(subject.digest) || typeof subject.digest.sha256 !== 'string') {
    throw statementError('the subject has no name or no sha256 digest');
  }
  const predicate = statement.predicate;
  if (!isObject(predicate)) throw statementError('predicate is missing');
  const serialization = predicate.serialization;
  if (!isObject(serialization)) throw statementError('predicate.serialization is missing');
  if (!Array.isArray(predicate.resources)) throw statementError('predicate.resources is missing');
  const resources = predicate.resources.map((r: unknown, i) => {
    if (!isObject(r) || typeof r.name !== 'string' || typeof r.algorithm !== 'string' || typeof r.digest !== 'string') {
      throw statementError(`predicate.resources[${i}] lacks a name, algorithm or digest`);
    }
    if (!/^([0-9a-f]{2})*$/i.test(r.digest)) throw statementError(`predicate.resources[${i}] (${r.name}) has a digest that is not hex`);
    return { name: r.name, algorithm: r.algorithm, digest: r.digest.toLowerCase() };
  });
  return { subject: { name: subject.name, sha256: subject.digest.sha256.toLowerCase() }, predicateType, serialization, resources };
}

/**
 * Reads a signature's statement without verifying anything: for display (`maas show`, `verify`
 * before it decides). `bundle` is the parsed JSON (or its text). Throws MAAS_VERIFY_FAILED
 * (reason bundle-malformed, media-type, statement-malformed or statement-type) when it cannot
 * be read at all.
 */
/** Who signed a bundle and what its statement is about, for any predicate (provenance too); nothing verified. */
export function describeBundle(bundle: unknown): { method: 'key' | 'certificate'; keyHint?: string; certificates?: CertificateSummary[]; predicateType?: string } {
  const read = readBundle(bundle);
  let predicateType: unknown;
  try {
    predicateType = (JSON.parse(read.payload.toString('utf8')) as { predicateType?: unknown }).predicateType;
  } catch {
    predicateType = undefined;
  }
  return {
    method: read.material.kind,
    ...(read.material.kind === 'key' ? (read.material.hint === undefined ? {} : { keyHint: read.material.hint }) : { certificates: read.material.certificates.map(summarizeCertificate) }),
    ...(typeof predicateType === 'string' ? { predicateType } : {}),
  };
}

export function parseStatement(bundle: unknown): ParsedModelSignature {
  const read = readBundle(bundle);
  const statement = readStatement(read.payload);
  return {
    method: read.material.kind,
    ...(read.material.kind === 'key' ? (read.material.hint === undefined ? {} : { keyHint: read.material.hint }) : { certificates: read.material.certificates.map(summarizeCertificate) }),
    subject: statement.subject,
    predicateType: statement.predicateType,
    serialization: statement.serialization,
    resources: statement.resources,
    subjectMatches: statement.subject.sha256 === subjectDigest(statement.resources.map((r) => r.digest)),
  };
}

// ---------------------------------------------------------------------------------------------
// Verifying

interface Signer {
  publicKey: KeyObject;
  curve: VerifyingCurve;
  hint: string;
  certificate?: CertificateSummary;
  chain?: CertificateSummary[];
}

function trustedSigner(read: ReadBundle, trust: SignatureTrust, warnings: string[]): Signer[] {
  if (read.material.kind === 'key') {
    if (!('keys' in trust)) {
      throw failure('trust-mismatch', 'the model was signed with a bare key, but only certificates were given to verify it', { hint: 'Pass the signer’s public key (--trusted-keys).' });
    }
    const keys = trust.keys.flatMap((publicKey) => {
      const curve = curveOf(publicKey);
      return curve === undefined ? [] : [{ publicKey, curve, hint: keyHint(publicKey) }];
    });
    if (keys.length === 0) throw new MaasError('MAAS_USAGE', 'no ECDSA public key was given to verify the signature with', { hint: 'Pass the signer’s public key (--trusted-keys FILE|DIR).' });
    const hint = read.material.hint;
    if (hint === undefined) {
      warnings.push('the bundle names no public key (an older format); every trusted key was tried');
      return keys;
    }
    const match = keys.filter((k) => k.hint === hint.toLowerCase());
    if (match.length === 0) {
      throw failure('key-not-trusted', `the model was signed by key ${hint}, which is not a trusted key`, {
        hint: 'Pass the signer’s public key (--trusted-keys FILE|DIR); `maas verify` prints the hint of each trusted key.',
        details: { keyHint: hint, trusted: keys.map((k) => k.hint) },
      });
    }
    return match;
  }
  if (!('certificates' in trust)) {
    throw failure('trust-mismatch', 'the model was signed with a certificate, but only public keys were given to verify it', { hint: 'Pass the root CA certificate of the signer’s chain.' });
  }
  const [leaf, ...intermediates] = read.material.certificates;
  const path = verifyCertificateChain(leaf!, intermediates, trust.certificates);
  const publicKey = leaf!.publicKey;
  const curve = curveOf(publicKey);
  if (curve === undefined) {
    throw failure('key-unsupported', `the signing certificate's key is not ECDSA P-256, P-384 or P-521 (${publicKey.asymmetricKeyType ?? 'unknown'})`);
  }
  return [{ publicKey, curve, hint: keyHint(publicKey), certificate: summarizeCertificate(leaf!), chain: path.map(summarizeCertificate) }];
}

/** Whether a file lies at or under one of the signature's ignore_paths (the reference leaves those out). */
function ignoredBy(ignorePaths: string[]): (name: string) => boolean {
  const paths = ignorePaths.map(normalizeName).filter((p): p is string => p !== undefined);
  return (name) => paths.some((p) => name === p || name.startsWith(`${p}/`));
}

function checkFiles(resources: ModelSigningResource[], files: ModelFile[], ignorePaths: string[]): void {
  const ignored = ignoredBy(ignorePaths);
  const signed = new Map<string, string>();
  for (const r of resources) {
    const name = normalizeName(r.name);
    if (name === undefined) throw statementError(`the resource name "${r.name}" is not a path inside the model`);
    if (signed.has(name)) throw statementError(`the resource ${name} is listed twice`);
    if (r.algorithm !== 'sha256') throw failure('serialization-unsupported', `the resource ${name} is hashed with ${r.algorithm}; maas verifies sha256 resources only`);
    if (r.digest.length !== 64) throw statementError(`the resource ${name} has a sha256 digest of ${r.digest.length / 2} bytes`);
    signed.set(name, r.digest);
  }
  const given = new Map<string, string>();
  for (const file of files) {
    const name = checkFileName(file.name);
    if (given.has(name)) throw new MaasError('MAAS_USAGE', `the file ${name} is given twice`);
    const digest = fileDigest(file);
    if (!ignored(name)) given.set(name, digest);
  }
  const differences: FileDifference[] = [];
  for (const [name, digest] of signed) {
    const actual = given.get(name);
    if (actual === undefined) differences.push({ name, kind: 'file-missing', signed: digest });
    else if (actual !== digest) differences.push({ name, kind: 'digest-mismatch', signed: digest, actual });
  }
  for (const [name, actual] of given) if (!signed.has(name)) differences.push({ name, kind: 'file-added', actual });
  if (differences.length === 0) return;
  differences.sort((a, b) => compareResourceNames(a.name, b.name));
  const kinds = new Set(differences.map((d) => d.kind));
  const reason: SignatureFailureReason = kinds.size === 1 ? differences[0]!.kind : 'files-differ';
  const lines = differences.map((d) =>
    d.kind === 'digest-mismatch'
      ? `${d.name} differs from the signed file (signed sha256:${d.signed}, found sha256:${d.actual})`
      : d.kind === 'file-missing'
        ? `${d.name} was signed but is missing`
        : `${d.name} is not covered by the signature (added after signing)`,
  );
  throw failure(reason, `the model does not match its signature: ${lines.join('; ')}`, {
    hint: 'The files changed after signing. Re-sign the version if the change is intended.',
    details: { differences },
  });
}

/**
 * Verifies a model signature against the model's files, in the order the reference verifier
 * does: bundle shape and media type; the signer (the key whose hint the bundle names among
 * `trust.keys`, or the certificate chain against `trust.certificates`); the ECDSA signature over
 * the DSSE PAE; the payload type; the statement (`_type`, `predicateType`, one subject whose
 * digest is the digest of the resources, `files` serialization with sha256); then the signed
 * files against `files` (names and SHA-256, hex or `sha256:<hex>`: OCI layer digests can be
 * passed as they are, so a ModelPack manifest can be verified without fetching its blobs).
 *
 * Returns what was verified; throws MAAS_VERIFY_FAILED with `details.reason` naming the
 * failure (see SignatureFailureReason), or MAAS_USAGE for unusable arguments.
 */
export function verifyModelSignature(bundle: unknown, files: ModelFile[], trust: SignatureTrust, options: VerifyModelOptions = {}): ModelSignatureVerification {
  const warnings: string[] = [];
  const read = readBundle(bundle);
  const candidates = trustedSigner(read, trust, warnings);
  const pae = preAuthEncoding(read.payloadType, read.payload);
  const signer = candidates.find((c) => {
    try {
      return cryptoVerify(digestForCurve(c.curve), pae, { key: c.publicKey, dsaEncoding: 'der' }, read.signature);
    } catch {
      return false;
    }
  });
  if (signer === undefined) {
    const by = candidates.length === 1 ? `key ${candidates[0]!.hint}` : `any of the ${candidates.length} trusted keys`;
    throw failure('signature-invalid', `the signature does not verify with ${by}: the signed statement was changed, or another key signed it`, {
      hint: 'Do not trust this model; get the signature again from its publisher.',
      details: { keyHints: candidates.map((c) => c.hint) },
    });
  }
  if (read.payloadType !== IN_TOTO_PAYLOAD_TYPE) {
    throw failure('payload-type', `the signed payload is ${read.payloadType}, not an in-toto statement (${IN_TOTO_PAYLOAD_TYPE})`);
  }
  const statement = readStatement(read.payload);
  if (statement.predicateType !== MODEL_SIGNING_PREDICATE_TYPE) {
    throw failure('predicate-type', `the statement's predicateType is ${statement.predicateType}, not a model signature (${MODEL_SIGNING_PREDICATE_TYPE})`, {
      details: { predicateType: statement.predicateType },
    });
  }
  const computed = subjectDigest(statement.resources.map((r) => r.digest));
  if (computed !== statement.subject.sha256) {
    throw failure('subject-digest-mismatch', `the statement is inconsistent: its subject digest is ${statement.subject.sha256}, but its resources hash to ${computed}`, {
      details: { subject: statement.subject.sha256, resources: computed },
    });
  }
  if (options.name !== undefined && statement.subject.name !== options.name) {
    throw failure('subject-name-mismatch', `the signature is for ${statement.subject.name}, not ${options.name}`, { details: { subject: statement.subject.name, expected: options.name } });
  }
  const s = statement.serialization;
  if (s.method !== 'files') throw failure('serialization-unsupported', `the model was serialized by ${JSON.stringify(s.method)}; maas verifies the "files" serialization`);
  if (s.hash_type !== 'sha256') throw failure('serialization-unsupported', `the model was hashed with ${JSON.stringify(s.hash_type)}; maas verifies sha256`);
  if (typeof s.allow_symlinks !== 'boolean') throw statementError('predicate.serialization.allow_symlinks is not a boolean');
  if (s.ignore_paths !== undefined && (!Array.isArray(s.ignore_paths) || s.ignore_paths.some((p) => typeof p !== 'string'))) throw statementError('predicate.serialization.ignore_paths is not a list of paths');
  const ignorePaths = s.ignore_paths as string[] | undefined;
  checkFiles(statement.resources, files, ignorePaths ?? []);
  const serialization: ModelSigningSerialization = { method: 'files', hash_type: 'sha256', allow_symlinks: s.allow_symlinks, ...(ignorePaths === undefined ? {} : { ignore_paths: ignorePaths }) };
  return {
    ok: true,
    method: read.material.kind,
    keyHint: signer.hint,
    curve: signer.curve,
    ...(signer.certificate === undefined ? {} : { certificate: signer.certificate, chain: signer.chain ?? [] }),
    subject: statement.subject,
    files: statement.resources.map((r) => ({ name: normalizeName(r.name)!, sha256: r.digest })),
    serialization,
    warnings,
  };
}
