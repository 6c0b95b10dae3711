/**
 * Model signatures in the OpenSSF model-signing v1.0 format (src/trust/): sign → verify round
 * trips on keys openssl makes (P-256 and P-384, SEC1 and PKCS#8), every tampering case with its
 * own reason, certificate-chain signing on a CA openssl makes, and implementations that are not
 * ours: `openssl dgst` verifies the DSSE signature over PAE bytes rebuilt here, `openssl verify`
 * the chain, and a Python script on Debian's python3-cryptography + python3-openssl does what the
 * reference verifier (sigstore/model-transparency) does, and signs a bundle the way it signs for
 * ours to verify. Without those Python modules that part is skipped with one line, unless
 * MAAS_REQUIRE_TOOLS is set (CI), where it runs and fails.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { X509Certificate, createHash, createPublicKey, sign as nodeSign } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MaasError } from '../../src/core/errors.js';
import {
  certificateSigner,
  generateKeyPair,
  loadCertificates,
  loadPrivateKey,
  loadPublicKeys,
  readCertificateSigner,
  readPrivateKey,
  readTrustedKeys,
  type SigningKey,
} from '../../src/trust/keys.js';
import {
  IN_TOTO_PAYLOAD_TYPE,
  MODEL_SIGNING_PREDICATE_TYPE,
  buildStatement,
  compareResourceNames,
  parseStatement,
  signModelFiles,
  signStatement,
  verifyModelSignature,
  type ModelFile,
  type ModelSignatureBundle,
  type SignatureTrust,
} from '../../src/trust/model-signing.js';

const PYTHON = '/usr/bin/python3';
const REQUIRE_TOOLS = Boolean(process.env.MAAS_REQUIRE_TOOLS);
const HAVE_PYTHON_CRYPTO = spawnSync(PYTHON, ['-c', 'import cryptography, OpenSSL'], { stdio: 'ignore' }).status === 0;
if (!HAVE_PYTHON_CRYPTO && !REQUIRE_TOOLS) {
  console.warn(`SKIPPED: the Python cross-checks of model signatures need ${PYTHON} with cryptography and pyOpenSSL (apt-get install python3-cryptography python3-openssl)`);
}
const SKIP_PYTHON = !HAVE_PYTHON_CRYPTO && !REQUIRE_TOOLS;

let dir: string;
const path = (...parts: string[]) => join(dir, ...parts);
const openssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] }).toString();
const sha256 = (data: Buffer | string) => createHash('sha256').update(data).digest('hex');

/** A model version on disk: the files `maas sign` would sign, and their digests. */
const MODEL: Record<string, Buffer> = {
  'model.onnx': Buffer.from('onnx graph bytes: a tiny stand-in for a ModelProto'),
  'model.onnx.data': Buffer.alloc(4096, 7),
};
const filesOf = (model: Record<string, Buffer>): ModelFile[] => Object.entries(model).map(([name, bytes]) => ({ name, sha256: sha256(bytes) }));
const FILES = filesOf(MODEL);

/** Key files openssl writes, as a user brings them. */
const KEYS = {
  'p256-sec1': ['ecparam', '-genkey', '-name', 'prime256v1', '-noout'],
  'p256-sec1-params': ['ecparam', '-genkey', '-name', 'prime256v1'],
  'p256-pkcs8': ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256'],
  'p384-sec1': ['ecparam', '-genkey', '-name', 'secp384r1', '-noout'],
  'p384-pkcs8': ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-384'],
  other: ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256'],
} as const;
type KeyName = keyof typeof KEYS;
const keyFile = (name: KeyName) => path('keys', `${name}.pem`);
const pubFile = (name: KeyName) => path('keys', `${name}.pub.pem`);
const key = (name: KeyName) => loadPrivateKey(readFileSync(keyFile(name)), { source: keyFile(name) });
const trustKeys = (...names: KeyName[]): SignatureTrust => ({ keys: names.flatMap((n) => loadPublicKeys(readFileSync(pubFile(n)), pubFile(n)).map((k) => k.publicKey)) });

beforeAll(() => {
  dir = realpathSync(mkdtempSync(join(tmpdir(), 'maas-trust-')));
  mkdirSync(path('keys'));
  for (const [name, args] of Object.entries(KEYS)) {
    openssl(...args, '-out', keyFile(name as KeyName));
    openssl('pkey', '-in', keyFile(name as KeyName), '-pubout', '-out', pubFile(name as KeyName));
  }
  mkdirSync(path('model'));
  for (const [name, bytes] of Object.entries(MODEL)) writeFileSync(path('model', name), bytes);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function decodePayload(bundle: ModelSignatureBundle): any {
  return JSON.parse(Buffer.from(bundle.dsseEnvelope.payload, 'base64').toString('utf8'));
}

/** The reason a verification failed with, or 'verified'. */
function reason(run: () => unknown): string {
  try {
    run();
    return 'verified';
  } catch (error) {
    if (!(error instanceof MaasError)) throw error;
    expect(error.code).toBe('MAAS_VERIFY_FAILED');
    return String(error.details?.reason);
  }
}

/** The DSSE PAE, rebuilt here from the DSSE protocol text, not by the code under test. */
const pae = (type: string, payload: Buffer) => Buffer.concat([Buffer.from(`DSSEv1 ${Buffer.byteLength(type)} ${type} ${payload.length} `), payload]);

describe('sign → verify with keys openssl makes', () => {
  it.each([
    ['p256-sec1', 'P-256'],
    ['p256-sec1-params', 'P-256'],
    ['p256-pkcs8', 'P-256'],
    ['p384-sec1', 'P-384'],
    ['p384-pkcs8', 'P-384'],
  ] as const)('%s (%s)', (name, curve) => {
    const signer = key(name);
    expect(signer.curve).toBe(curve);
    const bundle = signModelFiles(FILES, signer, { name: 'mlp-2' });
    // the hint is SHA-256 of the public key PEM exactly as openssl writes it
    expect(bundle.verificationMaterial).toEqual({ publicKey: { hint: sha256(readFileSync(pubFile(name))) }, tlogEntries: [] });
    const result = verifyModelSignature(JSON.parse(JSON.stringify(bundle)), FILES, trustKeys(name));
    expect(result).toMatchObject({ ok: true, method: 'key', curve, keyHint: signer.hint, subject: { name: 'mlp-2' }, warnings: [] });
    expect(result.files).toEqual(FILES);

    // openssl, not our code, checks the DSSE signature over PAE bytes rebuilt here
    const payload = Buffer.from(bundle.dsseEnvelope.payload, 'base64');
    writeFileSync(path(`${name}.pae`), pae(IN_TOTO_PAYLOAD_TYPE, payload));
    writeFileSync(path(`${name}.sig`), Buffer.from(bundle.dsseEnvelope.signatures[0]!.sig, 'base64'));
    const digest = curve === 'P-256' ? '-sha256' : '-sha384';
    expect(openssl('dgst', digest, '-verify', pubFile(name), '-signature', `${name}.sig`, `${name}.pae`)).toContain('Verified OK');
    writeFileSync(path(`${name}.pae`), pae(IN_TOTO_PAYLOAD_TYPE, Buffer.concat([payload, Buffer.from(' ')])));
    expect(() => openssl('dgst', digest, '-verify', pubFile(name), '-signature', `${name}.sig`, `${name}.pae`)).toThrow();
  });

  it('writes the bundle and statement the specification describes', () => {
    const bundle = signModelFiles([...FILES].reverse(), key('p256-sec1'), { name: 'mlp-2' });
    expect(Object.keys(bundle)).toEqual(['mediaType', 'verificationMaterial', 'dsseEnvelope']);
    expect(bundle.mediaType).toBe('application/vnd.dev.sigstore.bundle.v0.3+json');
    expect(bundle.dsseEnvelope.payloadType).toBe('application/vnd.in-toto+json');
    expect(bundle.dsseEnvelope.signatures).toHaveLength(1);
    expect(bundle.dsseEnvelope.signatures[0]!.keyid).toBe('');
    const statement = decodePayload(bundle);
    const digests = FILES.map((f) => f.sha256);
    expect(statement).toEqual({
      _type: 'https://in-toto.io/Statement/v1',
      // SHA-256 over the raw 32-byte digests, in the resources' order
      subject: [{ name: 'mlp-2', digest: { sha256: sha256(Buffer.concat(digests.map((d) => Buffer.from(d, 'hex')))) } }],
      predicateType: 'https://model_signing/signature/v1.0',
      predicate: {
        serialization: { method: 'files', hash_type: 'sha256', allow_symlinks: false },
        resources: FILES.map((f) => ({ name: f.name, algorithm: 'sha256', digest: f.sha256 })),
      },
    });
    expect(Object.keys(statement)).toEqual(['_type', 'subject', 'predicateType', 'predicate']);
    // ignore_paths, when given, is recorded sorted
    expect(buildStatement(FILES, { name: 'm', ignorePaths: ['model.sig', '.git'] }).predicate.serialization.ignore_paths).toEqual(['.git', 'model.sig']);
  });

  it('sorts resources as Python sorts PurePosixPath: part by part, by code point', () => {
    const names = ['model.onnx.data', 'a.b', 'a/b', 'B', 'model.onnx', 'a/b/c', 'z', '\u{1F600}', '\uFF21'];
    expect([...names].sort(compareResourceNames)).toEqual(['B', 'a/b', 'a/b/c', 'a.b', 'model.onnx', 'model.onnx.data', 'z', '\uFF21', '\u{1F600}']);
  });

  it('takes OCI layer digests (sha256:<hex>) as they are, so a manifest verifies without its blobs', () => {
    const layers = FILES.map((f) => ({ name: f.name, sha256: `sha256:${f.sha256}` }));
    const bundle = signModelFiles(layers, key('p256-pkcs8'), { name: 'mlp-2' });
    expect(verifyModelSignature(bundle, FILES, trustKeys('p256-pkcs8')).ok).toBe(true);
    expect(verifyModelSignature(bundle, layers, trustKeys('p256-pkcs8')).files).toEqual(FILES);
  });

  it('finds the signer among several trusted keys by the hint, and reads a bundle without verifying', () => {
    const bundle = signModelFiles(FILES, key('p384-pkcs8'), { name: 'mlp-2' });
    expect(verifyModelSignature(bundle, FILES, trustKeys('other', 'p256-sec1', 'p384-pkcs8')).keyHint).toBe(key('p384-pkcs8').hint);
    const parsed = parseStatement(JSON.stringify(bundle));
    expect(parsed).toMatchObject({ method: 'key', keyHint: key('p384-pkcs8').hint, predicateType: MODEL_SIGNING_PREDICATE_TYPE, subjectMatches: true, subject: { name: 'mlp-2' } });
    expect(parsed.resources.map((r) => r.name)).toEqual(['model.onnx', 'model.onnx.data']);
  });

  it('refuses file lists it cannot sign', () => {
    const signer = key('p256-sec1');
    for (const files of [[], [{ name: '../x', sha256: FILES[0]!.sha256 }], [{ name: '/abs', sha256: FILES[0]!.sha256 }], [{ name: 'a', sha256: 'abc' }], [FILES[0]!, FILES[0]!]]) {
      expect(() => signModelFiles(files, signer, { name: 'm' })).toThrow(expect.objectContaining({ code: 'MAAS_USAGE' }));
    }
  });
});

describe('every tampering case fails with its own reason', () => {
  let signer: SigningKey;
  let bundle: ModelSignatureBundle;
  const trust = () => trustKeys('p256-sec1');
  const clone = (): ModelSignatureBundle => JSON.parse(JSON.stringify(bundle));
  /** A statement edited and then signed again by the trusted key: a buggy or hostile signer. */
  const resigned = (edit: (statement: any) => void) => {
    const statement = decodePayload(bundle);
    edit(statement);
    return signStatement(statement, signer);
  };

  beforeAll(() => {
    signer = key('p256-sec1');
    bundle = signModelFiles(FILES, signer, { name: 'mlp-2' });
  });

  it('verifies untouched', () => expect(reason(() => verifyModelSignature(bundle, FILES, trust()))).toBe('verified'));

  it('a changed byte in a file', () => {
    const data = Buffer.from(MODEL['model.onnx.data']!);
    data[100] = data[100]! ^ 1;
    const files = filesOf({ ...MODEL, 'model.onnx.data': data });
    expect(reason(() => verifyModelSignature(bundle, files, trust()))).toBe('digest-mismatch');
    try {
      verifyModelSignature(bundle, files, trust());
    } catch (error) {
      expect((error as MaasError).message).toContain(`model.onnx.data differs from the signed file (signed sha256:${FILES[1]!.sha256}, found sha256:${files[1]!.sha256})`);
      expect((error as MaasError).exitCode).toBe(8);
    }
  });

  it('an added file', () => expect(reason(() => verifyModelSignature(bundle, [...FILES, { name: 'extra.bin', sha256: sha256('x') }], trust()))).toBe('file-added'));
  it('a removed file', () => expect(reason(() => verifyModelSignature(bundle, FILES.slice(0, 1), trust()))).toBe('file-missing'));
  it('a file renamed (removed + added)', () => expect(reason(() => verifyModelSignature(bundle, [FILES[0]!, { ...FILES[1]!, name: 'weights.data' }], trust()))).toBe('files-differ'));

  it('a changed statement (payload edited, signature kept)', () => {
    for (const edit of [
      (s: any) => (s.predicate.resources[1].digest = sha256('other weights')),
      (s: any) => s.predicate.resources.pop(),
      (s: any) => (s.subject[0].name = 'other-model'),
      (s: any) => (s.subject[0].digest.sha256 = sha256('swapped')),
    ]) {
      const tampered = clone();
      const statement = decodePayload(tampered);
      edit(statement);
      tampered.dsseEnvelope.payload = Buffer.from(JSON.stringify(statement, null, 2)).toString('base64');
      expect(reason(() => verifyModelSignature(tampered, FILES, trust()))).toBe('signature-invalid');
    }
    const retyped = clone();
    retyped.dsseEnvelope.payloadType = 'application/json';
    expect(reason(() => verifyModelSignature(retyped, FILES, trust()))).toBe('signature-invalid');
  });

  it('a signature from another key', () => {
    const impostor = signModelFiles(FILES, key('other'), { name: 'mlp-2' });
    expect(reason(() => verifyModelSignature(impostor, FILES, trust()))).toBe('key-not-trusted');
    // ... even when it claims the trusted key's hint
    const claimed = JSON.parse(JSON.stringify(impostor));
    claimed.verificationMaterial.publicKey.hint = signer.hint;
    expect(reason(() => verifyModelSignature(claimed, FILES, trust()))).toBe('signature-invalid');
    // ... or names no key at all
    delete claimed.verificationMaterial.publicKey.hint;
    expect(reason(() => verifyModelSignature(claimed, FILES, trust()))).toBe('signature-invalid');
  });

  it('a swapped subject', () => {
    // signed, but the subject's digest is not the digest of the resources
    const swapped = resigned((s) => (s.subject[0].digest.sha256 = sha256('another model')));
    expect(reason(() => verifyModelSignature(swapped, FILES, trust()))).toBe('subject-digest-mismatch');
    // the signature of another model by the same key
    const other = signModelFiles(filesOf({ 'model.onnx': Buffer.from('other') }), signer, { name: 'other-1' });
    expect(reason(() => verifyModelSignature(other, FILES, trust()))).toBe('files-differ');
    // the subject name is informative, but a caller may require it
    expect(reason(() => verifyModelSignature(bundle, FILES, trust(), { name: 'mlp-3' }))).toBe('subject-name-mismatch');
    expect(reason(() => verifyModelSignature(bundle, FILES, trust(), { name: 'mlp-2' }))).toBe('verified');
  });

  it('a wrong predicateType, statement type or payload type', () => {
    expect(reason(() => verifyModelSignature(resigned((s) => (s.predicateType = 'https://model_signing/Digests/v0.1')), FILES, trust()))).toBe('predicate-type');
    expect(reason(() => verifyModelSignature(resigned((s) => (s._type = 'https://in-toto.io/Statement/v0.1')), FILES, trust()))).toBe('statement-type');
    expect(reason(() => verifyModelSignature(resigned((s) => (s.predicate.serialization.hash_type = 'blake2b')), FILES, trust()))).toBe('serialization-unsupported');
    expect(reason(() => verifyModelSignature(resigned((s) => (s.predicate.serialization.method = 'shards')), FILES, trust()))).toBe('serialization-unsupported');
    expect(reason(() => verifyModelSignature(resigned((s) => s.subject.push(s.subject[0])), FILES, trust()))).toBe('statement-malformed');
    // a DSSE envelope of another payload type, properly signed
    const payload = Buffer.from(JSON.stringify(decodePayload(bundle)));
    const typed = clone();
    typed.dsseEnvelope.payload = payload.toString('base64');
    typed.dsseEnvelope.payloadType = 'application/json';
    typed.dsseEnvelope.signatures[0]!.sig = nodeSign('sha256', pae('application/json', payload), signer.privateKey).toString('base64');
    expect(reason(() => verifyModelSignature(typed, FILES, trust()))).toBe('payload-type');
  });

  it('a malformed bundle', () => {
    const cases: [unknown, string][] = [
      ['{not json', 'bundle-malformed'],
      [[], 'bundle-malformed'],
      [{ ...clone(), mediaType: 'application/vnd.dev.sigstore.bundle+json;version=0.2' }, 'media-type'],
      [{ ...clone(), mediaType: undefined }, 'bundle-malformed'],
      [{ ...clone(), verificationMaterial: undefined }, 'bundle-malformed'],
      [{ ...clone(), verificationMaterial: { tlogEntries: [] } }, 'bundle-malformed'],
      [{ ...clone(), dsseEnvelope: undefined }, 'bundle-malformed'],
      [{ ...clone(), dsseEnvelope: { ...clone().dsseEnvelope, payload: '***' } }, 'bundle-malformed'],
      [{ ...clone(), dsseEnvelope: { ...clone().dsseEnvelope, signatures: [] } }, 'bundle-malformed'],
      [{ ...clone(), dsseEnvelope: { ...clone().dsseEnvelope, signatures: [...clone().dsseEnvelope.signatures, ...clone().dsseEnvelope.signatures] } }, 'bundle-malformed'],
      [{ ...clone(), verificationMaterial: { x509CertificateChain: { certificates: [{ rawBytes: 'AAAA' }] }, tlogEntries: [] } }, 'bundle-malformed'],
    ];
    for (const [input, expected] of cases) expect([reason(() => verifyModelSignature(input, FILES, trust())), input]).toEqual([expected, input]);
    expect(() => parseStatement('{}')).toThrow(expect.objectContaining({ code: 'MAAS_VERIFY_FAILED' }));
  });

  it('trust of the wrong kind', () => {
    expect(reason(() => verifyModelSignature(bundle, FILES, { certificates: loadCertificates(readFileSync(makeCa('trust-kind').cert)) }))).toBe('trust-mismatch');
  });
});

describe('keys', () => {
  it('generates P-256 and P-384 pairs that openssl reads and that sign', () => {
    for (const curve of ['P-256', 'P-384'] as const) {
      const pair = generateKeyPair(curve);
      expect(pair.privateKeyPem).toMatch(/^-----BEGIN PRIVATE KEY-----\n/);
      expect(pair.publicKeyPem).toMatch(/^-----BEGIN PUBLIC KEY-----\n/);
      writeFileSync(path(`gen-${curve}.pem`), pair.privateKeyPem);
      expect(openssl('pkey', '-in', `gen-${curve}.pem`, '-noout', '-text')).toContain(curve === 'P-256' ? 'prime256v1' : 'secp384r1');
      expect(openssl('pkey', '-in', `gen-${curve}.pem`, '-pubout')).toBe(pair.publicKeyPem);
      expect(pair.hint).toBe(sha256(pair.publicKeyPem));
      const signer = loadPrivateKey(pair.privateKeyPem);
      const bundle = signModelFiles(FILES, signer, { name: 'm' });
      expect(verifyModelSignature(bundle, FILES, { keys: [createPublicKey(pair.publicKeyPem)] }).curve).toBe(curve);
    }
  });

  it('refuses other curves and algorithms, encrypted keys without their passphrase, and non-keys', () => {
    openssl('ecparam', '-genkey', '-name', 'secp256k1', '-noout', '-out', 'k1.pem');
    openssl('genpkey', '-algorithm', 'ed25519', '-out', 'ed.pem');
    openssl('genrsa', '-traditional', '-out', 'rsa.pem', '2048');
    openssl('genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-aes256', '-pass', 'pass:s3cret', '-out', 'enc.pem');
    const refused = (file: string, options = {}) => {
      try {
        loadPrivateKey(readFileSync(path(file)), { source: file, ...options });
        return 'loaded';
      } catch (error) {
        expect((error as MaasError).code).toBe('MAAS_USAGE');
        return (error as MaasError).message;
      }
    };
    expect(refused('k1.pem')).toContain('an EC key on secp256k1: model signing keys are ECDSA P-256 or P-384');
    expect(refused('ed.pem')).toContain('an ed25519 key');
    expect(refused('rsa.pem')).toContain('RSA PRIVATE KEY');
    expect(refused('enc.pem')).toContain('encrypted and no passphrase was given');
    expect(refused('enc.pem', { passphrase: 'wrong' })).toContain('wrong passphrase');
    expect(loadPrivateKey(readFileSync(path('enc.pem')), { passphrase: 's3cret' }).curve).toBe('P-256');
    expect(refused(join('keys', 'p256-sec1.pub.pem'))).toContain('holds a PUBLIC KEY, not a private key');
    expect(() => loadPublicKeys(readFileSync(keyFile('p256-sec1')))).toThrow(/holds a private key/);
    expect(() => generateKeyPair('P-521' as never)).toThrow(MaasError);
    openssl('ecparam', '-genkey', '-name', 'secp521r1', '-noout', '-out', 'p521.pem');
    expect(refused('p521.pem')).toContain('an EC key on secp521r1');
  });

  it('reads trusted keys from a file or from every .pem of a folder', async () => {
    mkdirSync(path('trusted'));
    for (const name of ['p256-sec1', 'p384-pkcs8'] as const) writeFileSync(path('trusted', `${name}.pem`), readFileSync(pubFile(name)));
    writeFileSync(path('trusted', 'README.txt'), 'not a key');
    const keys = await readTrustedKeys(path('trusted'));
    expect(keys.map((k) => [k.curve, k.hint])).toEqual([
      ['P-256', key('p256-sec1').hint],
      ['P-384', key('p384-pkcs8').hint],
    ]);
    expect((await readTrustedKeys(pubFile('other')))[0]!.hint).toBe(key('other').hint);
    mkdirSync(path('empty'));
    await expect(readTrustedKeys(path('empty'))).rejects.toMatchObject({ code: 'MAAS_USAGE' });
    await expect(readTrustedKeys(path('nope'))).rejects.toMatchObject({ code: 'MAAS_FILE_NOT_FOUND' });
    await expect(readPrivateKey(path('nope.pem'))).rejects.toMatchObject({ code: 'MAAS_FILE_NOT_FOUND' });
    expect((await readPrivateKey(keyFile('p384-sec1'))).curve).toBe('P-384');
  });
});

interface Pki {
  cert: string;
  key: string;
}

/** A self-signed CA made by openssl, with the extensions a CA has. */
function makeCa(name: string): Pki {
  const pki = { cert: path(`${name}.pem`), key: path(`${name}.key`) };
  writeFileSync(path(`${name}.ext`), 'basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\n');
  openssl('genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', pki.key);
  openssl('req', '-new', '-key', pki.key, '-subj', `/CN=${name}`, '-out', path(`${name}.csr`));
  openssl('x509', '-req', '-in', path(`${name}.csr`), '-signkey', pki.key, '-days', '30', '-extfile', path(`${name}.ext`), '-out', pki.cert);
  return pki;
}

/** A certificate signed by `issuer`, with the given extensions. */
function makeCert(name: string, issuer: Pki, extensions: string, curve = 'P-384'): Pki {
  const pki = { cert: path(`${name}.pem`), key: path(`${name}.key`) };
  writeFileSync(path(`${name}.ext`), `${extensions}\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid:always\n`);
  openssl('genpkey', '-algorithm', 'EC', '-pkeyopt', `ec_paramgen_curve:${curve}`, '-out', pki.key);
  openssl('req', '-new', '-key', pki.key, '-subj', `/CN=${name}`, '-out', path(`${name}.csr`));
  openssl('x509', '-req', '-in', path(`${name}.csr`), '-CA', issuer.cert, '-CAkey', issuer.key, '-set_serial', String(Date.now()), '-days', '10', '-extfile', path(`${name}.ext`), '-out', pki.cert);
  return pki;
}

describe('certificate-chain signing', () => {
  let root: Pki;
  let intermediate: Pki;
  let leaf: Pki;
  const certs = (pki: Pki) => loadCertificates(readFileSync(pki.cert), pki.cert);

  beforeAll(() => {
    root = makeCa('maas-test-root');
    intermediate = makeCert('maas-test-intermediate', root, 'basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign', 'P-256');
    leaf = makeCert('maas-test-signer', intermediate, 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=codeSigning');
    // openssl agrees the chain is good
    expect(openssl('verify', '-CAfile', root.cert, '-untrusted', intermediate.cert, leaf.cert)).toContain('OK');
  });

  it('signs with the chain in the bundle and verifies against the root CA', async () => {
    const signer = await readCertificateSigner({ key: leaf.key, certificate: leaf.cert, chain: [intermediate.cert] });
    const bundle = signModelFiles(FILES, signer, { name: 'mlp-2' });
    const der = (pki: Pki) => new X509Certificate(readFileSync(pki.cert)).raw.toString('base64');
    expect(bundle.verificationMaterial).toEqual({ x509CertificateChain: { certificates: [{ rawBytes: der(leaf) }, { rawBytes: der(intermediate) }] }, tlogEntries: [] });
    const result = verifyModelSignature(bundle, FILES, { certificates: certs(root) });
    expect(result).toMatchObject({ ok: true, method: 'certificate', curve: 'P-384', certificate: { subject: 'CN=maas-test-signer', issuer: 'CN=maas-test-intermediate' } });
    expect(result.chain!.map((c) => c.subject)).toEqual(['CN=maas-test-signer', 'CN=maas-test-intermediate', 'CN=maas-test-root']);
    expect(parseStatement(bundle)).toMatchObject({ method: 'certificate', certificates: [{ subject: 'CN=maas-test-signer' }, { subject: 'CN=maas-test-intermediate' }] });
    // the intermediate may also be trusted beside the root
    expect(verifyModelSignature(bundle, FILES, { certificates: [...certs(intermediate), ...certs(root)] }).ok).toBe(true);
    // and tampering still shows
    expect(reason(() => verifyModelSignature(bundle, FILES.slice(1), { certificates: certs(root) }))).toBe('file-missing');
  });

  it('refuses another CA, an intermediate alone, a missing intermediate, and a certificate not for signing', async () => {
    const bundle = signModelFiles(FILES, await readCertificateSigner({ key: leaf.key, certificate: leaf.cert, chain: [intermediate.cert] }), { name: 'mlp-2' });
    const otherRoot = makeCa('maas-test-other-root');
    expect(reason(() => verifyModelSignature(bundle, FILES, { certificates: certs(otherRoot) }))).toBe('certificate-untrusted');
    // as OpenSSL decides by default: a trusted intermediate is no anchor without its root
    expect(reason(() => verifyModelSignature(bundle, FILES, { certificates: certs(intermediate) }))).toBe('certificate-untrusted');
    const noChain = signModelFiles(FILES, await readCertificateSigner({ key: leaf.key, certificate: leaf.cert }), { name: 'mlp-2' });
    expect(reason(() => verifyModelSignature(noChain, FILES, { certificates: certs(root) }))).toBe('certificate-untrusted');
    expect(verifyModelSignature(noChain, FILES, { certificates: [...certs(intermediate), ...certs(root)] }).ok).toBe(true);

    // a TLS server certificate of the same CA is not for signing
    const server = makeCert('maas-test-server', intermediate, 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,keyAgreement\nextendedKeyUsage=serverAuth');
    // maas refuses to sign with it; a bundle another tool made with it is refused by the verifier
    await expect(readCertificateSigner({ key: server.key, certificate: server.cert, chain: [intermediate.cert] })).rejects.toMatchObject({ details: { reason: 'certificate-usage' } });
    const serverSigner = { key: await readPrivateKey(server.key), certificate: certs(server)[0]!, chain: certs(intermediate) };
    const serverBundle = signModelFiles(FILES, serverSigner, { name: 'mlp-2' });
    expect(reason(() => verifyModelSignature(serverBundle, FILES, { certificates: certs(root) }))).toBe('certificate-usage');

    // another signer's certificate put in the bundle: the chain is good, the signature is not theirs
    const second = makeCert('maas-test-signer-2', intermediate, 'keyUsage=critical,digitalSignature');
    const swapped = JSON.parse(JSON.stringify(bundle));
    swapped.verificationMaterial.x509CertificateChain.certificates[0].rawBytes = certs(second)[0]!.raw.toString('base64');
    expect(reason(() => verifyModelSignature(swapped, FILES, { certificates: certs(root) }))).toBe('signature-invalid');

    // an issuer that is not a CA, and a path longer than the intermediate's pathlen:0 allows
    const notCa = makeCert('maas-test-not-ca', root, 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyCertSign');
    const belowNotCa = makeCert('maas-test-below-not-ca', notCa, 'keyUsage=critical,digitalSignature');
    const b1 = signModelFiles(FILES, await readCertificateSigner({ key: belowNotCa.key, certificate: belowNotCa.cert, chain: [notCa.cert] }), { name: 'm' });
    expect(reason(() => verifyModelSignature(b1, FILES, { certificates: certs(root) }))).toBe('certificate-untrusted');
    const sub = makeCert('maas-test-sub', intermediate, 'basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign');
    const deep = makeCert('maas-test-deep', sub, 'keyUsage=critical,digitalSignature');
    const b2 = signModelFiles(FILES, await readCertificateSigner({ key: deep.key, certificate: deep.cert, chain: [sub.cert, intermediate.cert] }), { name: 'm' });
    expect(() => verifyModelSignature(b2, FILES, { certificates: certs(root) })).toThrow(/allows 0 intermediate/);

    // a certificate not issued for the signing key
    expect(() => certificateSigner(key('p256-sec1'), certs(leaf)[0]!)).toThrow(expect.objectContaining({ code: 'MAAS_USAGE' }));
  });
});

/**
 * What the reference verifier does, written here on Python's cryptography and pyOpenSSL: the key
 * hint from the PEM, ECDSA over the DSSE PAE with the curve's digest, the statement checks, the
 * chain with an OpenSSL store at the leaf's notBefore, and the model folder hashed and compared.
 * And what its key signer does, for ours to verify.
 */
const PY_REFERENCE = String.raw`
import base64, hashlib, json, pathlib, sys
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

PAYLOAD_TYPE = "application/vnd.in-toto+json"
HASHES = {256: hashes.SHA256, 384: hashes.SHA384, 521: hashes.SHA512}

def pae(payload_type, payload):
    t = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(t), t, len(payload), payload)

def hint(public_key):
    return hashlib.sha256(public_key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)).hexdigest()

def pem_certs(data):
    marker = b"-----END CERTIFICATE-----"
    return [x509.load_pem_x509_certificate(part + marker) for part in data.split(marker) if b"BEGIN CERTIFICATE" in part]

def model_manifest(root):
    root = pathlib.Path(root)
    return {pathlib.PurePosixPath(p.relative_to(root).as_posix()): hashlib.sha256(p.read_bytes()).hexdigest() for p in root.rglob("*") if p.is_file()}

def verify(bundle_path, model_dir, mode, trust_path):
    bundle = json.loads(pathlib.Path(bundle_path).read_text())
    assert bundle["mediaType"] == "application/vnd.dev.sigstore.bundle.v0.3+json", "media type"
    material = bundle["verificationMaterial"]
    envelope = bundle["dsseEnvelope"]
    if mode == "key":
        key = serialization.load_pem_public_key(pathlib.Path(trust_path).read_bytes())
        assert material["publicKey"]["hint"] == hint(key), "key hint"
    else:
        from OpenSSL import crypto
        chain = [x509.load_der_x509_certificate(base64.b64decode(c["rawBytes"])) for c in material["x509CertificateChain"]["certificates"]]
        store = crypto.X509Store()
        for cert in pem_certs(pathlib.Path(trust_path).read_bytes()):
            store.add_cert(crypto.X509.from_cryptography(cert))
        store.set_time(chain[0].not_valid_before)
        crypto.X509StoreContext(store, crypto.X509.from_cryptography(chain[0]), [crypto.X509.from_cryptography(c) for c in chain[1:]]).verify_certificate()
        usage = chain[0].extensions.get_extension_for_class(x509.KeyUsage).value
        assert usage.digital_signature, "key usage"
        key = chain[0].public_key()
    payload = base64.b64decode(envelope["payload"])
    signature = base64.b64decode(envelope["signatures"][0]["sig"])
    key.verify(signature, pae(envelope["payloadType"], payload), ec.ECDSA(HASHES[key.curve.key_size]()))
    assert envelope["payloadType"] == PAYLOAD_TYPE, "payload type"
    statement = json.loads(payload)
    assert statement["_type"] == "https://in-toto.io/Statement/v1", "statement type"
    assert statement["predicateType"] == "https://model_signing/signature/v1.0", "predicate type"
    assert len(statement["subject"]) == 1, "one subject"
    serialization_args = statement["predicate"]["serialization"]
    assert (serialization_args["method"], serialization_args["hash_type"], serialization_args["allow_symlinks"]) == ("files", "sha256", False), "serialization"
    resources = statement["predicate"]["resources"]
    root = hashlib.sha256()
    for r in resources:
        root.update(bytes.fromhex(r["digest"]))
    assert statement["subject"][0]["digest"]["sha256"] == root.hexdigest(), "subject digest"
    signed = {pathlib.PurePosixPath(r["name"]): r["digest"] for r in resources}
    assert all(r["algorithm"] == "sha256" for r in resources), "algorithm"
    assert [r["name"] for r in resources] == [str(p) for p in sorted(signed)], "resource order"
    assert model_manifest(model_dir) == signed, "model files"
    print("OK")

def sign(model_dir, key_path, out_path):
    key = serialization.load_pem_private_key(pathlib.Path(key_path).read_bytes(), None)
    manifest = model_manifest(model_dir)
    resources = [{"name": str(p), "algorithm": "sha256", "digest": manifest[p]} for p in sorted(manifest)]
    root = hashlib.sha256()
    for r in resources:
        root.update(bytes.fromhex(r["digest"]))
    statement = {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": pathlib.Path(model_dir).name, "digest": {"sha256": root.hexdigest()}}],
        "predicateType": "https://model_signing/signature/v1.0",
        "predicate": {"serialization": {"method": "files", "hash_type": "sha256", "allow_symlinks": False, "ignore_paths": ["model.sig"]}, "resources": resources},
    }
    payload = json.dumps(statement, indent=2).encode()
    signature = key.sign(pae(PAYLOAD_TYPE, payload), ec.ECDSA(HASHES[key.curve.key_size]()))
    bundle = {
        "mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
        "verificationMaterial": {"publicKey": {"hint": hint(key.public_key())}, "tlogEntries": []},
        "dsseEnvelope": {"payload": base64.b64encode(payload).decode(), "payloadType": PAYLOAD_TYPE, "signatures": [{"sig": base64.b64encode(signature).decode(), "keyid": ""}]},
    }
    pathlib.Path(out_path).write_text(json.dumps(bundle, separators=(",", ":")))

def order(*names):
    print(json.dumps([str(p) for p in sorted(pathlib.PurePosixPath(n) for n in names)]))

{"verify": verify, "sign": sign, "order": order}[sys.argv[1]](*sys.argv[2:])
`;

describe.skipIf(SKIP_PYTHON)('against an implementation that is not ours (Python cryptography + pyOpenSSL, as the reference verifies)', () => {
  const python = (...args: string[]) => {
    const run = spawnSync(PYTHON, [path('reference.py'), ...args], { cwd: dir, encoding: 'utf8' });
    return { ok: run.status === 0, out: `${run.stdout}${run.stderr}`.trim() };
  };
  beforeAll(() => writeFileSync(path('reference.py'), PY_REFERENCE));

  it.each(['p256-sec1', 'p384-pkcs8'] as const)('verifies what maas signs with %s', (name) => {
    writeFileSync(path(`${name}.sig.json`), JSON.stringify(signModelFiles(FILES, key(name), { name: 'model' })));
    expect(python('verify', `${name}.sig.json`, 'model', 'key', pubFile(name))).toEqual({ ok: true, out: 'OK' });
    // and refuses it for another key, or for a changed model folder
    expect(python('verify', `${name}.sig.json`, 'model', 'key', pubFile('other')).ok).toBe(false);
    writeFileSync(path('model', 'model.onnx.data'), Buffer.alloc(4096, 8));
    try {
      expect(python('verify', `${name}.sig.json`, 'model', 'key', pubFile(name))).toMatchObject({ ok: false, out: expect.stringContaining('model files') });
    } finally {
      writeFileSync(path('model', 'model.onnx.data'), MODEL['model.onnx.data']!);
    }
  });

  it('verifies a certificate-chain signature against the root, and refuses another root', async () => {
    const root = makeCa('py-root');
    const intermediate = makeCert('py-intermediate', root, 'basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign', 'P-256');
    const leaf = makeCert('py-signer', intermediate, 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature');
    const signer = await readCertificateSigner({ key: leaf.key, certificate: leaf.cert, chain: [intermediate.cert] });
    writeFileSync(path('cert.sig.json'), JSON.stringify(signModelFiles(FILES, signer, { name: 'model' })));
    expect(python('verify', 'cert.sig.json', 'model', 'certificate', root.cert)).toEqual({ ok: true, out: 'OK' });
    const other = makeCa('py-other-root');
    expect(python('verify', 'cert.sig.json', 'model', 'certificate', other.cert)).toMatchObject({ ok: false, out: expect.stringContaining('unable to get local issuer certificate') });
  });

  it.each(['p256-pkcs8', 'p384-sec1'] as const)('accepts what the reference-style signer writes with %s', (name) => {
    expect(python('sign', 'model', keyFile(name), `${name}.py.sig.json`).ok).toBe(true);
    const bundle: unknown = JSON.parse(readFileSync(path(`${name}.py.sig.json`), 'utf8'));
    const result = verifyModelSignature(bundle, FILES, trustKeys(name));
    expect(result).toMatchObject({ ok: true, subject: { name: 'model' }, serialization: { ignore_paths: ['model.sig'] } });
    // the signature file among the files is left out, as the signature's ignore_paths says
    expect(verifyModelSignature(bundle, [...FILES, { name: 'model.sig', sha256: sha256('sig') }], trustKeys(name)).ok).toBe(true);
    expect(reason(() => verifyModelSignature(bundle, FILES.slice(1), trustKeys(name)))).toBe('file-missing');
  });

  it('verifies a P-521 signature (SHA-512), which the reference can make though maas does not', () => {
    openssl('ecparam', '-genkey', '-name', 'secp521r1', '-noout', '-out', 'py-p521.pem');
    openssl('pkey', '-in', 'py-p521.pem', '-pubout', '-out', 'py-p521.pub.pem');
    expect(python('sign', 'model', 'py-p521.pem', 'p521.py.sig.json').ok).toBe(true);
    const bundle: unknown = JSON.parse(readFileSync(path('p521.py.sig.json'), 'utf8'));
    const trust = { keys: loadPublicKeys(readFileSync(path('py-p521.pub.pem'))).map((k) => k.publicKey) };
    expect(verifyModelSignature(bundle, FILES, trust)).toMatchObject({ ok: true, curve: 'P-521' });
  });

  it('sorts names as Python sorts PurePosixPath', () => {
    const names = ['model.onnx.data', 'a.b', 'a/b', 'B', 'model.onnx', 'a/b/c', 'z', '\u{1F600}', '\uFF21', 'a-b/c', 'a b'];
    const run = python('order', ...names);
    expect(run.ok).toBe(true);
    expect([...names].sort(compareResourceNames)).toEqual(JSON.parse(run.out));
  });
});
