/**
 * Which signatures a version needs, and the check that refuses the others: at pull (before a
 * blob is fetched), at serve start, hot reload and management loads, and in `maas verify
 * --signatures`. The trust comes from flags (`--key`, `--trusted-keys`, `--ca`) or from
 * maas.yaml's `trust:` block; a version passes when one of its signatures verifies against it.
 * Everything is checked from the manifest: its ModelPack layers are the files, by path and
 * SHA-256, so no blob is read here (`maas verify` re-hashes the blobs against the manifest).
 */
import { isAbsolute, resolve } from 'node:path';
import type { X509Certificate } from 'node:crypto';
import { MaasError, isMaasError } from '../core/errors.js';
import { listAttestations } from '../registry/attestations.js';
import type { TrustConfig } from '../registry/config.js';
import { ANNOTATIONS, type Manifest } from '../registry/manifest.js';
import { Registry, type RegistryOptions, type VersionRecord } from '../registry/registry.js';
import type { Admission } from '../remote/artifact.js';
import { type TrustedKey, readCertificates, readTrustedKeys } from './keys.js';
import { type ModelFile, type ModelSignatureVerification, parseStatement, verifyModelSignature } from './model-signing.js';

/** Where the trust comes from, as flags name it (paths relative to the working folder). */
export interface TrustFlags {
  requireSignature?: boolean | undefined;
  /** a PEM public key. */
  key?: string | undefined;
  /** a folder of PEM public keys (or one PEM file). */
  trustedKeys?: string | undefined;
  /** a PEM file (or folder) of CA certificates: certificate-chain signatures must lead to one. */
  trustedCa?: string | undefined;
}

export interface TrustPolicy {
  /** refuse versions without a signature that verifies. */
  require: boolean;
  keys: TrustedKey[];
  certificates: X509Certificate[];
  /** where the trust was read from, for messages. */
  source: string;
}

/**
 * The policy of the flags, else of maas.yaml (whose paths are relative to the registry). Flags
 * naming keys replace the file's keys; `--require-signature` without keys uses the file's. No
 * keys at all under a requirement is a usage error: nothing could pass.
 */
export async function loadTrustPolicy(flags: TrustFlags, cwd: string, config?: { trust?: TrustConfig | undefined; root: string }): Promise<TrustPolicy | undefined> {
  const fromFlags = flags.key !== undefined || flags.trustedKeys !== undefined || flags.trustedCa !== undefined;
  const file = config?.trust;
  const require = flags.requireSignature === true || (file?.requireSignature ?? false);
  let base: string;
  let sources: { keys: string[]; ca: string | undefined };
  let source: string;
  if (fromFlags) {
    base = cwd;
    sources = { keys: [flags.key, flags.trustedKeys].filter((p): p is string => p !== undefined), ca: flags.trustedCa };
    source = 'the command line';
  } else if (file && (file.keys !== undefined || file.ca !== undefined)) {
    base = config!.root;
    sources = { keys: file.keys === undefined ? [] : [file.keys], ca: file.ca };
    source = 'maas.yaml (trust:)';
  } else {
    if (!require) return undefined;
    throw new MaasError('MAAS_USAGE', 'a signature is required, but no key or CA to verify it with was given', {
      hint: 'Pass --key pub.pem, --trusted-keys DIR or --trusted-ca ca.pem, or set trust.keys in maas.yaml.',
    });
  }
  const at = (path: string) => (isAbsolute(path) ? path : resolve(base, path));
  try {
    const keys: TrustedKey[] = [];
    for (const path of sources.keys) keys.push(...(await readTrustedKeys(at(path))));
    const certificates = sources.ca === undefined ? [] : await readCertificates(at(sources.ca));
    return { require, keys, certificates, source };
  } catch (error) {
    if (fromFlags || !isMaasError(error)) throw error;
    throw new MaasError('MAAS_CONFIG_INVALID', `maas.yaml's trust: ${error.message}`, { hint: 'Fix trust.keys / trust.ca in maas.yaml (paths are relative to the registry), or pass --key.', cause: error });
  }
}

/** A version's files as its manifest names them: each layer's path and digest. */
export function manifestFiles(manifest: Manifest): ModelFile[] {
  return manifest.layers.map((layer) => ({ name: layer.annotations?.[ANNOTATIONS.filepath] ?? layer.digest, sha256: layer.digest }));
}

/** One signature's outcome. */
export interface SignatureCheck {
  /** where it is stored (a registry path), or `referrer N` for one that came with a pull. */
  source: string;
  ok: boolean;
  method?: 'key' | 'certificate';
  keyHint?: string;
  /** a certificate signature's signer. */
  signer?: string;
  /** why it failed: model-signing's reason (digest-mismatch, file-added, signature-invalid, …). */
  reason?: string;
  message?: string;
  warnings?: string[];
}

function describe(verification: ModelSignatureVerification): Pick<SignatureCheck, 'method' | 'keyHint' | 'signer' | 'warnings'> {
  return {
    method: verification.method,
    keyHint: verification.keyHint,
    ...(verification.certificate ? { signer: verification.certificate.subject } : {}),
    ...(verification.warnings.length ? { warnings: verification.warnings } : {}),
  };
}

/** Checks each signature of a version against the policy's keys (bare-key bundles) or CAs (certificate bundles). */
export function checkSignatures(manifest: Manifest, signatures: { source: string; bytes: Buffer }[], policy: TrustPolicy): SignatureCheck[] {
  const files = manifestFiles(manifest);
  return signatures.map(({ source, bytes }) => {
    try {
      const bundle = JSON.parse(bytes.toString('utf8')) as unknown;
      const method = parseStatement(bundle).method;
      const trust = method === 'certificate' ? { certificates: policy.certificates } : { keys: policy.keys.map((k) => k.publicKey) };
      if (method === 'certificate' ? policy.certificates.length === 0 : policy.keys.length === 0) {
        return { source, ok: false, method, reason: 'key-not-trusted', message: `it is a ${method === 'certificate' ? 'certificate-chain' : 'bare-key'} signature and ${policy.source} gives no ${method === 'certificate' ? 'CA (--trusted-ca)' : 'public key (--key, --trusted-keys)'}` };
      }
      return { source, ok: true, ...describe(verifyModelSignature(bundle, files, trust)) };
    } catch (error) {
      if (error instanceof SyntaxError) return { source, ok: false, reason: 'bundle-malformed', message: `not JSON: ${error.message}` };
      if (!isMaasError(error)) throw error;
      return { source, ok: false, reason: String(error.details?.reason ?? error.code), message: error.message };
    }
  });
}

/** The fix for each way a signature fails; the default: the files changed since signing. */
const FAILURE_HINTS: Record<string, string> = {
  'key-not-trusted': 'A key you do not trust signed it: if you trust its signer, add its public key to the trusted keys (--key, --trusted-keys, maas.yaml trust.keys).',
  'trust-mismatch': 'Give the kind of trust the signature needs: a public key for a bare-key signature, a CA (--trusted-ca) for a certificate-chain one.',
  'certificate-untrusted': 'Its certificate does not lead to a CA you listed: add the CA with --trusted-ca if you trust it.',
  'signature-invalid': 'The signature does not match what it claims to sign: it or its statement was altered. Do not use this version; get it again from its publisher.',
  'bundle-malformed': 'The signature file is damaged or not a Sigstore bundle: get the signature again from its publisher.',
};

/** Failures that say only that the signer is not one of ours, nothing about the files. */
const UNKNOWN_SIGNER = new Set(['key-not-trusted', 'trust-mismatch', 'certificate-untrusted']);

/**
 * Refuses a version the policy does not admit. Required: unsigned, tampered (its files are not
 * what was signed) or signed by no trusted key. Not required: only tampered with after a trusted
 * key signed it. The error names the version, the reason and the fix.
 */
export function admitVersion(ref: string, manifest: Manifest, signatures: { source: string; bytes: Buffer }[], policy: TrustPolicy): SignatureCheck[] {
  const checks = checkSignatures(manifest, signatures, policy);
  if (checks.some((c) => c.ok)) return checks;
  // Not required: only a signature a trusted key made that no longer matches (tampering) refuses.
  if (!policy.require && checks.every((c) => UNKNOWN_SIGNER.has(c.reason ?? ''))) return checks;
  if (checks.length === 0) {
    throw new MaasError('MAAS_VERIFY_FAILED', `${ref} is not signed, and ${policy.source} requires a signature`, {
      // A remote's or an archive's version is signed by its publisher, in their registry.
      hint: /^[a-z0-9][a-z0-9._-]*@\d+$/.test(ref) ? `Sign it: maas sign ${ref} --key key.pem.` : 'Ask its publisher to sign it (maas sign NAME@VERSION --key key.pem) and push it again.',
      details: { reason: 'unsigned', ref },
    });
  }
  const first = checks[0]!;
  const others = checks.length - 1;
  const more = others > 0 ? ` (and ${others} other signature${others > 1 ? 's that do' : ' that does'} not verify either)` : '';
  throw new MaasError('MAAS_VERIFY_FAILED', `${ref} has no signature that verifies: ${first.message ?? first.reason}${more}`, {
    hint: FAILURE_HINTS[first.reason ?? ''] ?? 'Its files are not the ones that were signed: do not serve it; get it again from its publisher.',
    details: { reason: first.reason, ref, signatures: checks },
  });
}

/** The policy of a registry's commands: the flags, else its maas.yaml. */
export async function registryTrustPolicy(flags: TrustFlags, ctx: RegistryOptions): Promise<TrustPolicy | undefined> {
  const registry = await Registry.open(ctx);
  return loadTrustPolicy(flags, ctx.cwd, { trust: registry.config.trust, root: registry.root });
}

/** Pull's check, before a blob is fetched: the signatures that came as referrers. */
export function pullAdmission(policy: TrustPolicy, remote: string): Admission {
  return ({ manifest, attestations }) => {
    const signatures = attestations.filter((a) => a.kind === 'signature').map((a, i) => ({ source: `referrer ${i + 1}`, bytes: a.bytes }));
    admitVersion(remote, manifest, signatures, policy);
  };
}

/** Serve's check, before a version loads: the signatures stored beside it. */
export function loadAdmission(policy: TrustPolicy): (registry: Registry, record: VersionRecord) => void {
  return (registry, record) => {
    const signatures = listAttestations(registry, record.name, record.version, 'signature').map((a) => ({ source: a.path, bytes: a.bytes }));
    admitVersion(`${record.name}@${record.version}`, record.manifest, signatures, policy);
  };
}

/** One line on what the policy asks, for serve's start. */
export function describePolicy(policy: TrustPolicy): string {
  const what = [policy.keys.length ? `${policy.keys.length} trusted key${policy.keys.length === 1 ? '' : 's'}` : '', policy.certificates.length ? `${policy.certificates.length} trusted CA certificate${policy.certificates.length === 1 ? '' : 's'}` : ''].filter(Boolean).join(' and ');
  return `${policy.require ? 'signatures required' : 'signatures checked when present'}: ${what} from ${policy.source}`;
}
