/**
 * Trust around the other commands: signing what they made, the signature check of `pull` and
 * `maas verify --signatures`, and what `maas show` lists about a version's attestations.
 */
import { resolve } from 'node:path';
import { checkNewFolder } from '../core/fs.js';
import { type AttestationKind, MODEL_SIGNATURE_FILE, attestationJson, listAttestations } from '../registry/attestations.js';
import { type ShowResult, showModel } from '../registry/query.js';
import { parseRef } from '../registry/refs.js';
import { Registry, type RegistryOptions } from '../registry/registry.js';
import { type WrittenFiles, writeVersionFiles } from '../registry/serve-cache.js';
import { importArchive } from '../remote/archive.js';
import type { Admission } from '../remote/artifact.js';
import { type PullOptions, type PullResult, type TransferContext, pull } from '../remote/transfer.js';
import { type ModelSigner, describeBundle } from './model-signing.js';
import { type SignatureCheck, type TrustFlags, type TrustPolicy, admitVersion, checkSignatures, loadTrustPolicy, registryTrustPolicy } from './policy.js';
import { signVersion } from './sign.js';

/** An attestation a command added (or found already there). */
export interface Attested {
  kind: AttestationKind;
  /** in the registry, or the file written beside a converted model. */
  path: string;
  status: 'added' | 'unchanged';
  /** the signing key's hint, when signed. */
  keyHint?: string;
}

export function signerHint(signer: ModelSigner): string {
  return 'key' in signer ? signer.key.hint : signer.hint;
}

/** Signs a version and reports it as an Attested. */
export async function signedAs(ref: string, signer: ModelSigner, ctx: RegistryOptions): Promise<Attested> {
  const signed = await signVersion({ ref, signer }, ctx);
  return { kind: 'signature', path: signed.path, status: signed.status === 'signed' ? 'added' : 'unchanged', keyHint: signed.keyHint };
}

export interface VersionSignatures {
  ref: string;
  ok: boolean;
  signatures: SignatureCheck[];
}

export interface SignaturesReport {
  ok: boolean;
  /** where the trust came from. */
  trust: string;
  versions: VersionSignatures[];
}

/** `maas verify --signatures`: each version (or the one named) needs a signature the trust verifies. */
export async function verifySignatures(options: { ref?: string | undefined; trust: TrustFlags }, ctx: RegistryOptions): Promise<SignaturesReport> {
  const registry = await Registry.open(ctx);
  const policy = (await loadTrustPolicy({ ...options.trust, requireSignature: true }, ctx.cwd, { trust: registry.config.trust, root: registry.root }))!;
  const targets = options.ref === undefined
    ? registry.modelNames().flatMap((name) => registry.versions(name).map((version) => ({ name, version })))
    : [registry.resolve(parseRef(options.ref))];
  const versions = targets.map(({ name, version }) => {
    const record = registry.readVersion(name, version);
    const signatures = checkSignatures(record.manifest, listAttestations(registry, name, version, 'signature').map((a) => ({ source: a.path, bytes: a.bytes })), policy);
    return { ref: `${name}@${version}`, ok: signatures.some((s) => s.ok), signatures };
  });
  return { ok: versions.every((v) => v.ok), trust: policy.source, versions };
}

/** One stored attestation as `maas show` lists it, read but not verified. */
export interface AttestationSummary {
  kind: AttestationKind;
  path: string;
  digest: string;
  signed: boolean;
  keyHint?: string;
  /** a certificate signature's signer. */
  signer?: string;
  predicateType?: string;
  /** not JSON: shown, so that it can be removed, rather than failing `show`. */
  unreadable?: boolean;
}

/** `maas show` with the version's signatures, provenance and SBOMs. */
export async function showAttested(options: { ref: string }, ctx: RegistryOptions): Promise<ShowResult & { attestations: AttestationSummary[] }> {
  const shown = await showModel(options, ctx);
  return { ...shown, attestations: describeAttestations(await Registry.open(ctx), shown.name, shown.version) };
}

function describeAttestations(registry: Registry, name: string, version: number): AttestationSummary[] {
  return listAttestations(registry, name, version).map((a) => {
    const base = { kind: a.kind, path: a.path, digest: a.digest };
    if (a.kind === 'sbom') return { ...base, signed: false };
    let json: { mediaType?: string; predicateType?: string };
    try {
      json = attestationJson(a) as typeof json;
    } catch {
      return { ...base, signed: false, unreadable: true };
    }
    if (json.mediaType === undefined) return { ...base, signed: false, ...(json.predicateType ? { predicateType: json.predicateType } : {}) };
    try {
      const parsed = describeBundle(json);
      return {
        ...base, signed: true,
        ...(parsed.predicateType ? { predicateType: parsed.predicateType } : {}),
        ...(parsed.keyHint ? { keyHint: parsed.keyHint } : {}),
        ...(parsed.certificates?.[0] ? { signer: parsed.certificates[0].subject } : {}),
      };
    } catch {
      return { ...base, signed: true };
    }
  });
}

export interface TrustedPull extends PullResult {
  /** each signature that came with it, checked, when a policy was in force. */
  signatures?: SignatureCheck[];
  attested?: Attested[];
  /** the files written with --to, `model.sig` among them when the version is signed. */
  written?: WrittenFiles;
}

/** The policy's check of a version arriving (pull, import) before its blobs, keeping what it saw. */
function arrivalCheck(policy: TrustPolicy | undefined, what: string) {
  const seen: { signatures?: SignatureCheck[]; received: Buffer[] } = { received: [] };
  const admit: Admission | undefined = policy && ((version) => {
    seen.received = version.attestations.filter((a) => a.kind === 'signature').map((a) => a.bytes);
    seen.signatures = admitVersion(what, version.manifest, seen.received.map((bytes, i) => ({ source: `referrer ${i + 1}`, bytes })), policy);
  });
  return { admit, seen };
}

/**
 * `maas pull` under a signature policy (the flags, else maas.yaml's): checked before a blob is
 * fetched; then signed with the puller's key when given, and written out as plain files with
 * `--to DIR`, its signature beside them as `model.sig` (where the reference `model_signing
 * verify` looks for it).
 */
export async function pullTrusted(options: PullOptions & { trust: TrustFlags; signer?: ModelSigner | undefined; to?: string | undefined }, ctx: TransferContext): Promise<TrustedPull> {
  const { trust, signer, to, ...pullOptions } = options;
  const dir = to === undefined ? undefined : resolve(ctx.cwd, to);
  if (dir) checkNewFolder(dir); // before anything is fetched
  const policy = await registryTrustPolicy(trust, ctx);
  const { admit, seen } = arrivalCheck(policy, options.remote);
  const pulled = await pull({ ...pullOptions, admit }, ctx);
  const attested = signer ? [await signedAs(pulled.ref, signer, ctx)] : undefined;
  let written: WrittenFiles | undefined;
  if (dir) {
    const registry = await Registry.open(ctx);
    const verified = seen.signatures?.findIndex((s) => s.ok) ?? -1;
    // The signature the policy verified; else one stored, so a verifier elsewhere has it.
    const sig = verified >= 0 ? seen.received[verified] : listAttestations(registry, pulled.name, pulled.version, 'signature').at(-1)?.bytes;
    written = writeVersionFiles(registry, registry.readVersion(pulled.name, pulled.version), dir, sig ? [{ path: MODEL_SIGNATURE_FILE, bytes: sig }] : []);
  }
  return { ...pulled, ...(seen.signatures ? { signatures: seen.signatures } : {}), ...(attested ? { attested } : {}), ...(written ? { written } : {}) };
}

/** `maas import` under the same policy as pull: the archive's signatures are checked before its blobs are taken in. */
export async function importTrusted(options: Parameters<typeof importArchive>[0] & { trust: TrustFlags }, ctx: TransferContext): Promise<TrustedPull> {
  const { trust, ...rest } = options;
  const { admit, seen } = arrivalCheck(await registryTrustPolicy(trust, ctx), options.file);
  const imported = await importArchive({ ...rest, admit }, ctx);
  return { ...imported, ...(seen.signatures ? { signatures: seen.signatures } : {}) };
}
