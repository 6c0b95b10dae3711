/**
 * `maas keygen` and `maas sign`, and the signing every other command does with `--sign-key`
 * (register, convert, pull) or `MAAS_SIGNING_KEY` in CI: the key is read and checked before any
 * work starts, so a bad key never leaves a half-signed result behind.
 */
import { existsSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import type { Env } from '../core/context.js';
import { MaasError } from '../core/errors.js';
import { writeOutputFile } from '../core/fs.js';
import { type Attestation, addAttestations, listAttestations } from '../registry/attestations.js';
import { parseRef } from '../registry/refs.js';
import { Registry, type RegistryOptions } from '../registry/registry.js';
import { type SigningCurve, generateKeyPair, loadPrivateKey, readCertificateSigner, readPrivateKey } from './keys.js';
import { type ModelSigner, parseStatement, signModelFiles } from './model-signing.js';
import { manifestFiles } from './policy.js';

/** How a command is told to sign: a key file, or the environment. */
export interface SigningFlags {
  /** a PEM private key file; else MAAS_SIGNING_KEY (a path, or the PEM itself). */
  key?: string | undefined;
  /** the key's certificate (PEM; certificate-chain signing), then the chain above it. */
  cert?: string | undefined;
  chain?: string[] | undefined;
}

/** The signer the flags or MAAS_SIGNING_KEY name, or undefined when neither does. */
export async function signerFrom(flags: SigningFlags, cwd: string, env: Env): Promise<ModelSigner | undefined> {
  const passphrase = env.MAAS_SIGNING_KEY_PASSPHRASE;
  const options = passphrase === undefined ? {} : { passphrase };
  const fromEnv = flags.key === undefined ? env.MAAS_SIGNING_KEY : undefined;
  if (flags.key === undefined && !fromEnv) {
    if (flags.cert !== undefined) throw new MaasError('MAAS_USAGE', '--cert needs the private key it certifies', { hint: 'Pass --key key.pem (or set MAAS_SIGNING_KEY).' });
    return undefined;
  }
  // CI secrets are usually the PEM text itself; a developer's is a file.
  if (fromEnv?.includes('-----BEGIN')) {
    const key = loadPrivateKey(fromEnv, { ...options, source: 'MAAS_SIGNING_KEY' });
    if (flags.cert === undefined) return key;
    throw new MaasError('MAAS_USAGE', 'certificate-chain signing takes the key from a file', { hint: 'Write the key to a file and pass --key FILE --cert cert.pem.' });
  }
  const path = resolve(cwd, (flags.key ?? fromEnv)!);
  if (fromEnv && !existsSync(path)) {
    throw new MaasError('MAAS_USAGE', 'MAAS_SIGNING_KEY holds neither a PEM private key nor the path of one', { hint: 'Set it to the key file\'s path, or to the PEM text itself (-----BEGIN ... PRIVATE KEY-----).' });
  }
  if (flags.cert === undefined) return readPrivateKey(path, options);
  return readCertificateSigner({ key: path, certificate: resolve(cwd, flags.cert), chain: (flags.chain ?? []).map((c) => resolve(cwd, c)), ...options });
}

export interface KeygenResult {
  curve: SigningCurve;
  privateKey: string;
  publicKey: string;
  /** the key's hint in the signatures it makes (SHA-256 of its public PEM). */
  keyHint: string;
}

/** Writes a new ECDSA key pair: the private key (mode 0600) and its public half beside it (`key.pub.pem`). */
export function keygen(options: { output: string; curve?: SigningCurve | undefined; force?: boolean | undefined }, cwd: string): KeygenResult {
  const privateKey = resolve(cwd, options.output);
  const publicKey = join(dirname(privateKey), `${basename(privateKey).replace(/\.pem$/, '')}.pub.pem`);
  for (const path of [privateKey, publicKey]) {
    if (existsSync(path) && !options.force) {
      throw new MaasError('MAAS_USAGE', `${path} exists`, { hint: 'Pick another -o, or pass --force to replace the key (signatures it made stay valid only for its old public key).' });
    }
  }
  const pair = generateKeyPair(options.curve ?? 'P-256');
  writeOutputFile(privateKey, pair.privateKeyPem, { mode: 0o600 });
  writeOutputFile(publicKey, pair.publicKeyPem);
  return { curve: pair.curve, privateKey, publicKey, keyHint: pair.hint };
}

export interface SignResult {
  ref: string;
  manifestDigest: string;
  method: 'key' | 'certificate';
  keyHint: string;
  /** the files signed, by path. */
  files: string[];
  /** where the signature is stored in the registry, and whether it was already there. */
  path: string;
  status: 'signed' | 'unchanged';
  /** the copy written with -o. */
  output?: string;
  commit?: string;
}

/** The hint of the key that made a stored signature, if it reads. */
function signedBy(attestation: Attestation): string | undefined {
  try {
    return parseStatement(JSON.parse(attestation.bytes.toString('utf8'))).keyHint;
  } catch {
    return undefined;
  }
}

/**
 * Signs a version: every file its manifest names, in the OpenSSF model-signing format, stored
 * beside it (a commit). A version this key signed already keeps that signature (ECDSA signatures
 * differ each time, so signing again would only pile them up).
 */
export async function signVersion(options: { ref: string; signer: ModelSigner; output?: string | undefined }, ctx: RegistryOptions): Promise<SignResult> {
  const registry = await Registry.open(ctx);
  const { name, version } = registry.resolve(parseRef(options.ref));
  const record = registry.readVersion(name, version);
  const ref = `${name}@${version}`;
  const files = manifestFiles(record.manifest);
  const key = 'key' in options.signer ? options.signer.key : options.signer;
  const method = 'key' in options.signer ? ('certificate' as const) : ('key' as const);
  const existing = listAttestations(registry, name, version, 'signature').find((a) => signedBy(a) === key.hint);
  let stored: Attestation;
  let commit: string | undefined;
  if (existing) stored = existing;
  else {
    const bytes = Buffer.from(`${JSON.stringify(signModelFiles(files, options.signer, { name: ref }), null, 2)}\n`);
    const added = await addAttestations(registry, name, version, record.manifestDigest, [{ kind: 'signature', bytes }]);
    stored = added.added[0] ?? added.present[0]!;
    commit = added.commit;
  }
  const output = options.output === undefined ? undefined : resolve(ctx.cwd, options.output);
  if (output) writeOutputFile(output, stored.bytes);
  return {
    ref, manifestDigest: record.manifestDigest, method, keyHint: key.hint, files: files.map((f) => f.name), path: stored.path,
    status: existing ? 'unchanged' : 'signed', ...(output ? { output } : {}), ...(commit ? { commit } : {}),
  };
}
