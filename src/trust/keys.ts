/**
 * Key material for model signatures (OpenSSF model-signing v1.0): ECDSA key pairs on P-256 or
 * P-384, the private keys users bring (PKCS#8 or SEC1 PEM, as openssl writes them), trusted
 * public keys (a PEM file, or every .pem of a folder), and X.509 certificates for
 * certificate-chain signing. Node's crypto does the ECDSA; nothing here prints.
 *
 * The key hint is what the reference implementation (sigstore/model-transparency,
 * `sign_ec_key.py`) writes as the bundle's `verificationMaterial.publicKey.hint`: the SHA-256,
 * in hex, of the public key's SubjectPublicKeyInfo PEM text, exactly as OpenSSL writes it
 * (64-column base64, trailing newline).
 */
import { X509Certificate, createHash, createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { readFile, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { checkSigningCertificate } from './certificate-chain.js';
import { MaasError, errnoCode, messageOf } from '../core/errors.js';

/** The curves a maas signing key may use. */
export type SigningCurve = 'P-256' | 'P-384';
/** The curves a signature may be verified on: the reference implementation also signs on P-521. */
export type VerifyingCurve = SigningCurve | 'P-521';

/** OpenSSL's curve names (what Node reports) → the NIST names the format and our flags use. */
const CURVES: Record<string, VerifyingCurve> = { prime256v1: 'P-256', secp384r1: 'P-384', secp521r1: 'P-521' };
/** The digest ECDSA uses on each curve, as the reference's `get_ec_key_hash` picks it from the key size. */
const CURVE_DIGESTS: Record<VerifyingCurve, 'sha256' | 'sha384' | 'sha512'> = { 'P-256': 'sha256', 'P-384': 'sha384', 'P-521': 'sha512' };

const KEY_HINT = 'Make one with `openssl ecparam -genkey -name prime256v1 -noout -out key.pem` (P-256) or `-name secp384r1` (P-384).';

export interface GeneratedKeyPair {
  curve: SigningCurve;
  /** PKCS#8 PEM ("PRIVATE KEY"). */
  privateKeyPem: string;
  /** SubjectPublicKeyInfo PEM ("PUBLIC KEY"): what verifiers pass as a trusted key. */
  publicKeyPem: string;
  /** The bundle's public-key hint for this key (see keyHint). */
  hint: string;
}

/** A private key ready to sign, with its public half. */
export interface SigningKey {
  curve: SigningCurve;
  privateKey: KeyObject;
  publicKey: KeyObject;
  hint: string;
}

/** A public key a verifier trusts. */
export interface TrustedKey {
  curve: VerifyingCurve;
  publicKey: KeyObject;
  hint: string;
  /** where it came from (a file path), for messages. */
  source: string;
}

export interface LoadPrivateKeyOptions {
  /** for an encrypted PEM ("ENCRYPTED PRIVATE KEY", or a SEC1 key with Proc-Type 4,ENCRYPTED). */
  passphrase?: string;
  /** the file (or flag) it came from, for messages. */
  source?: string;
}

/** A fresh ECDSA key pair, P-256 unless asked otherwise. */
export function generateKeyPair(curve: SigningCurve = 'P-256'): GeneratedKeyPair {
  if (curve !== 'P-256' && curve !== 'P-384') throw new MaasError('MAAS_USAGE', `cannot make a ${String(curve)} key: model signing keys are ECDSA P-256 or P-384`);
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: curve });
  return {
    curve,
    privateKeyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    hint: keyHint(publicKey),
  };
}

/** The bundle's `publicKey.hint` of a key: SHA-256 hex of its SubjectPublicKeyInfo PEM. */
export function keyHint(publicKey: KeyObject): string {
  return createHash('sha256').update(publicKey.export({ type: 'spki', format: 'pem' })).digest('hex');
}

/** The NIST curve of an EC key, or undefined for any other key. */
export function curveOf(key: KeyObject): VerifyingCurve | undefined {
  if (key.asymmetricKeyType !== 'ec') return undefined;
  const name = key.asymmetricKeyDetails?.namedCurve;
  return name === undefined ? undefined : CURVES[name];
}

/** The digest ECDSA signs with on a curve (SHA-256 on P-256, SHA-384 on P-384, SHA-512 on P-521). */
export function digestForCurve(curve: VerifyingCurve): 'sha256' | 'sha384' | 'sha512' {
  return CURVE_DIGESTS[curve];
}

/** One PEM block: its label ("PUBLIC KEY", "EC PRIVATE KEY", ...) and its whole text. */
export interface PemBlock {
  label: string;
  text: string;
}

/** The PEM blocks of a text, in order (anything between them is ignored, as openssl does). */
export function pemBlocks(text: string): PemBlock[] {
  const blocks: PemBlock[] = [];
  const re = /-----BEGIN ([A-Z0-9 ]+)-----[\s\S]*?-----END \1-----/g;
  for (const match of text.matchAll(re)) blocks.push({ label: match[1]!, text: `${match[0]}\n` });
  return blocks;
}

/**
 * A user's private key from PEM: PKCS#8 ("PRIVATE KEY", `openssl genpkey`), SEC1
 * ("EC PRIVATE KEY", `openssl ecparam -genkey`, with or without its "EC PARAMETERS" block), or
 * an encrypted PKCS#8/SEC1 key with `passphrase`. Only ECDSA P-256 and P-384 are accepted.
 */
/** "a" or "an", by how the word is read out: an RSA key, an EC key, a DSA key. */
function article(word: string): string {
  return /^(rsa|ec|ed|x\d|[aeio])/i.test(word) ? 'an' : 'a';
}

export function loadPrivateKey(pem: string | Buffer, options: LoadPrivateKeyOptions = {}): SigningKey {
  const source = options.source ?? 'the private key';
  const text = typeof pem === 'string' ? pem : pem.toString('utf8');
  const blocks = pemBlocks(text).filter((b) => b.label.endsWith('PRIVATE KEY'));
  if (blocks.length === 0) {
    const other = pemBlocks(text)[0]?.label;
    const hint = other === 'PUBLIC KEY' ? 'Sign with the private key (key.pem); its public half (key.pub.pem) is what verifiers are given.' : KEY_HINT;
    throw new MaasError('MAAS_USAGE', other ? `${source} holds ${article(other)} ${other}, not a private key` : `${source} is not a PEM private key`, { hint });
  }
  if (blocks.length > 1) throw new MaasError('MAAS_USAGE', `${source} holds ${blocks.length} private keys; give a file with one`, { hint: KEY_HINT });
  const block = blocks[0]!;
  if (block.label !== 'PRIVATE KEY' && block.label !== 'EC PRIVATE KEY' && block.label !== 'ENCRYPTED PRIVATE KEY') {
    throw new MaasError('MAAS_USAGE', `${source} is ${article(block.label)} ${block.label}: model signing keys are ECDSA P-256 or P-384`, { hint: KEY_HINT });
  }
  const encrypted = block.label === 'ENCRYPTED PRIVATE KEY' || /Proc-Type:\s*4,ENCRYPTED/.test(block.text);
  if (encrypted && options.passphrase === undefined) {
    throw new MaasError('MAAS_USAGE', `${source} is encrypted and no passphrase was given`, { hint: 'Set MAAS_SIGNING_KEY_PASSPHRASE to its passphrase, or decrypt it: openssl pkey -in key.pem -out plain.pem' });
  }
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(encrypted ? { key: block.text, format: 'pem', passphrase: options.passphrase } : { key: block.text, format: 'pem' });
  } catch (error) {
    const badPass = encrypted && /decrypt/i.test(messageOf(error));
    throw new MaasError('MAAS_USAGE', badPass ? `cannot decrypt ${source}: wrong passphrase` : `cannot read ${source}: ${messageOf(error)}`, {
      cause: error,
      hint: badPass ? 'Check MAAS_SIGNING_KEY_PASSPHRASE.' : KEY_HINT,
    });
  }
  const curve = curveOf(privateKey);
  if (curve !== 'P-256' && curve !== 'P-384') {
    const what = privateKey.asymmetricKeyType === 'ec' ? `an EC key on ${privateKey.asymmetricKeyDetails?.namedCurve ?? 'an unnamed curve'}` : `${article(privateKey.asymmetricKeyType ?? 'non-EC')} ${privateKey.asymmetricKeyType ?? 'non-EC'} key`;
    throw new MaasError('MAAS_USAGE', `${source} is ${what}: model signing keys are ECDSA P-256 or P-384`, { hint: KEY_HINT });
  }
  const publicKey = createPublicKey(privateKey);
  return { curve, privateKey, publicKey, hint: keyHint(publicKey) };
}

/** A public key from PEM ("PUBLIC KEY", SubjectPublicKeyInfo): ECDSA P-256, P-384 or P-521. */
export function loadPublicKeys(pem: string | Buffer, source = 'the public key'): TrustedKey[] {
  const text = typeof pem === 'string' ? pem : pem.toString('utf8');
  const blocks = pemBlocks(text);
  if (blocks.some((b) => b.label.endsWith('PRIVATE KEY'))) {
    throw new MaasError('MAAS_USAGE', `${source} holds a private key; a verifier needs only the public key`, { hint: 'Extract it: openssl ec -in key.pem -pubout -out key.pub.pem' });
  }
  const keys = blocks.filter((b) => b.label === 'PUBLIC KEY');
  if (keys.length === 0) {
    throw new MaasError('MAAS_USAGE', `${source} holds no PEM public key ("-----BEGIN PUBLIC KEY-----")`, { hint: 'Extract one from the signing key: openssl ec -in key.pem -pubout -out key.pub.pem' });
  }
  return keys.map((block) => {
    let publicKey: KeyObject;
    try {
      publicKey = createPublicKey({ key: block.text, format: 'pem' });
    } catch (error) {
      throw new MaasError('MAAS_USAGE', `cannot read ${source}: ${messageOf(error)}`, { cause: error });
    }
    const curve = curveOf(publicKey);
    if (curve === undefined) throw new MaasError('MAAS_USAGE', `${source} is not an ECDSA P-256, P-384 or P-521 key`, { hint: 'Model signatures are ECDSA; pass the public half of the signing key.' });
    return { curve, publicKey, hint: keyHint(publicKey), source };
  });
}

/** Every X.509 certificate of a PEM text, in order. */
export function loadCertificates(pem: string | Buffer, source = 'the certificate file'): X509Certificate[] {
  const text = typeof pem === 'string' ? pem : pem.toString('utf8');
  const blocks = pemBlocks(text).filter((b) => b.label === 'CERTIFICATE');
  if (blocks.length === 0) throw new MaasError('MAAS_USAGE', `${source} holds no PEM certificate ("-----BEGIN CERTIFICATE-----")`);
  return blocks.map((block) => {
    try {
      return new X509Certificate(block.text);
    } catch (error) {
      throw new MaasError('MAAS_USAGE', `cannot read a certificate of ${source}: ${messageOf(error)}`, { cause: error });
    }
  });
}

/** What certificate-chain signing needs: the key, its certificate, and the chain above it. */
export interface CertificateSigner {
  key: SigningKey;
  /** the signing (leaf) certificate; its public key is the key's. */
  certificate: X509Certificate;
  /** intermediates (and the root, if given) in the order given; they go into the bundle after the leaf. */
  chain: X509Certificate[];
}

/**
 * Pairs a signing key with its certificate and chain, refusing a certificate whose public key is
 * not the key's (as the reference signer does).
 */
export function certificateSigner(key: SigningKey, certificate: X509Certificate, chain: X509Certificate[] = []): CertificateSigner {
  const fromCert = certificate.publicKey.export({ type: 'spki', format: 'der' });
  const fromKey = key.publicKey.export({ type: 'spki', format: 'der' });
  if (!fromCert.equals(fromKey)) {
    throw new MaasError('MAAS_USAGE', `the signing certificate (${certificate.subject.replace(/\n/g, ', ')}) is not for this private key`, { hint: 'Pass the certificate issued for the key you sign with.' });
  }
  checkSigningCertificate(certificate);
  return { key, certificate, chain };
}

async function readText(path: string, what: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (error) {
    if (errnoCode(error) === 'ENOENT') throw new MaasError('MAAS_FILE_NOT_FOUND', `${what} ${path} does not exist`, { cause: error, hint: 'Check the path.' });
    if (errnoCode(error) === 'EISDIR') throw new MaasError('MAAS_USAGE', `${what} ${path} is a folder; give a PEM file`, { cause: error });
    throw new MaasError('MAAS_USAGE', `cannot read ${what} ${path}: ${messageOf(error)}`, { cause: error });
  }
}

/** Reads a private key file (see loadPrivateKey). */
export async function readPrivateKey(path: string, options: { passphrase?: string } = {}): Promise<SigningKey> {
  return loadPrivateKey(await readText(path, 'the private key'), { ...options, source: path });
}

/**
 * Reads trusted public keys (`--trusted-keys PATH`): a PEM file, or every `*.pem` file of a
 * folder (not recursive, in name order). A folder without one is an error, not an empty trust.
 */
export async function readTrustedKeys(path: string): Promise<TrustedKey[]> {
  const files = await pemFiles(path, 'the trusted keys');
  const keys: TrustedKey[] = [];
  for (const file of files) keys.push(...loadPublicKeys(await readText(file, 'the public key'), file));
  return keys;
}

/** Reads the certificates of a PEM file, or of every `*.pem` file of a folder. */
export async function readCertificates(path: string): Promise<X509Certificate[]> {
  const files = await pemFiles(path, 'the certificates');
  const certificates: X509Certificate[] = [];
  for (const file of files) certificates.push(...loadCertificates(await readText(file, 'the certificate file'), file));
  return certificates;
}

/** Reads a private key, its signing certificate and the chain files above it (see certificateSigner). */
export async function readCertificateSigner(options: { key: string; passphrase?: string; certificate: string; chain?: string[] }): Promise<CertificateSigner> {
  const key = await readPrivateKey(options.key, options.passphrase === undefined ? {} : { passphrase: options.passphrase });
  const [leaf, ...rest] = loadCertificates(await readText(options.certificate, 'the signing certificate'), options.certificate);
  const chain = [...rest];
  for (const file of options.chain ?? []) chain.push(...(await readCertificates(file)));
  return certificateSigner(key, leaf!, chain);
}

async function pemFiles(path: string, what: string): Promise<string[]> {
  let isDir: boolean;
  try {
    isDir = (await stat(path)).isDirectory();
  } catch (error) {
    if (errnoCode(error) === 'ENOENT') throw new MaasError('MAAS_FILE_NOT_FOUND', `${what} ${path} does not exist`, { cause: error, hint: 'Check the path.' });
    throw new MaasError('MAAS_USAGE', `cannot read ${what} ${path}: ${messageOf(error)}`, { cause: error });
  }
  if (!isDir) return [path];
  const names = (await readdir(path)).filter((name) => name.endsWith('.pem')).sort();
  if (names.length === 0) throw new MaasError('MAAS_USAGE', `${what} folder ${path} holds no .pem file`, { hint: 'Put one PEM file per key or certificate in it, named *.pem.' });
  return names.map((name) => join(path, name));
}
