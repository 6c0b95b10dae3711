/**
 * Certificate-chain trust for model signatures, as the reference verifier
 * (sigstore/model-transparency `sign_certificate.py`) decides it with an OpenSSL store:
 *
 * - the trusted certificates are the store; the bundle's certificates after the first are
 *   untrusted intermediates; the first is the signing (leaf) certificate;
 * - the path must end at a trusted self-signed certificate (OpenSSL's default: a trusted
 *   intermediate alone is not an anchor);
 * - every certificate is checked at the leaf's notBefore, not now: a signature stays valid after
 *   its short-lived certificate expires (there is no timestamp in these bundles to do better);
 * - issuers must be CAs (basicConstraints cA, keyCertSign when keyUsage is present, pathLen);
 * - the leaf must be for signing: keyUsage digitalSignature, or extendedKeyUsage codeSigning.
 *
 * Node's X509Certificate checks issuance and signatures; @sigstore/core reads the keyUsage and
 * basicConstraints extensions, which Node does not expose.
 */
import { type X509Certificate } from 'node:crypto';
import { X509Certificate as SigstoreX509 } from '@sigstore/core';
import { MaasError } from '../core/errors.js';

const CODE_SIGNING = '1.3.6.1.5.5.7.3.3';
const MAX_DEPTH = 10;

export interface CertificateSummary {
  subject: string;
  issuer: string;
  serialNumber: string;
  /** SHA-256 fingerprint, colon-separated hex, as openssl prints it. */
  fingerprint256: string;
  notBefore: string;
  notAfter: string;
}

export function summarizeCertificate(cert: X509Certificate): CertificateSummary {
  const parsed = SigstoreX509.parse(cert.raw);
  return {
    subject: oneLine(cert.subject),
    issuer: oneLine(cert.issuer),
    serialNumber: cert.serialNumber,
    fingerprint256: cert.fingerprint256,
    notBefore: parsed.notBefore.toISOString(),
    notAfter: parsed.notAfter.toISOString(),
  };
}

const oneLine = (name: string) => name.split('\n').filter(Boolean).join(', ');

function fail(message: string, reason: 'certificate-untrusted' | 'certificate-usage', details: Record<string, unknown> = {}): never {
  throw new MaasError('MAAS_VERIFY_FAILED', message, {
    details: { reason, ...details },
    hint: reason === 'certificate-untrusted' ? 'Pass the root CA that issued the signer’s chain as a trusted certificate.' : 'Sign with a certificate issued for signing (keyUsage digitalSignature, or extendedKeyUsage codeSigning).',
  });
}

const sameCert = (a: X509Certificate, b: X509Certificate) => a.raw.equals(b.raw);

/** Whether `issuer` issued `child`: names and key identifiers match, and its key verifies the signature. */
function issued(child: X509Certificate, issuer: X509Certificate): boolean {
  try {
    return child.checkIssued(issuer) && child.verify(issuer.publicKey);
  } catch {
    return false;
  }
}

/**
 * Verifies that `leaf` (with the bundle's `intermediates`) chains to a trusted self-signed
 * certificate, and that the leaf may sign. Returns the path, leaf first, anchor last.
 * Throws MAAS_VERIFY_FAILED (details.reason certificate-untrusted or certificate-usage).
 */
export function verifyCertificateChain(leaf: X509Certificate, intermediates: X509Certificate[], trusted: X509Certificate[]): X509Certificate[] {
  if (trusted.length === 0) fail('no trusted certificate was given to verify the signing certificate against', 'certificate-untrusted');
  const leafParsed = SigstoreX509.parse(leaf.raw);
  const at = leafParsed.notBefore;
  const isTrusted = (cert: X509Certificate) => trusted.some((t) => sameCert(t, cert));
  const path: X509Certificate[] = [leaf];
  let current = leaf;
  for (let depth = 0; depth <= MAX_DEPTH; depth++) {
    if (isTrusted(current) && issued(current, current)) {
      checkLeafUsage(leaf, leafParsed);
      return path;
    }
    // trusted issuers first, as OpenSSL looks them up before the untrusted chain
    const issuer = [...trusted, ...intermediates].find((candidate) => !sameCert(candidate, current) && issued(current, candidate));
    if (issuer === undefined) {
      const anchorless = isTrusted(current) ? ` (${oneLine(current.subject)} is trusted, but is not self-signed and its issuer was not given)` : '';
      fail(`the signing certificate ${oneLine(leaf.subject)} does not chain to a trusted certificate: no issuer found for ${oneLine(current.subject)}${anchorless}`, 'certificate-untrusted', {
        certificate: summarizeCertificate(leaf),
      });
    }
    const parsed = SigstoreX509.parse(issuer.raw);
    const name = oneLine(issuer.subject);
    if (!parsed.isCA) fail(`${name} issued ${oneLine(current.subject)} but is not a CA (basicConstraints cA is not set)`, 'certificate-untrusted');
    const usage = parsed.extKeyUsage;
    if (usage !== undefined && !usage.keyCertSign) fail(`${name} is not allowed to sign certificates (keyUsage lacks keyCertSign)`, 'certificate-untrusted');
    const pathLen = parsed.extBasicConstraints?.pathLenConstraint;
    // certificates below this issuer, not counting the leaf nor self-issued ones
    const below = path.length - 1;
    if (pathLen !== undefined && BigInt(below) > pathLen) fail(`${name} allows ${pathLen} intermediate certificate(s) below it; the chain has ${below}`, 'certificate-untrusted');
    if (!parsed.validForDate(at)) {
      fail(`${name} was not valid when the signing certificate was issued (${at.toISOString()}; it is valid ${parsed.notBefore.toISOString()} to ${parsed.notAfter.toISOString()})`, 'certificate-untrusted');
    }
    path.push(issuer);
    current = issuer;
  }
  fail(`the certificate chain of ${oneLine(leaf.subject)} is longer than ${MAX_DEPTH}`, 'certificate-untrusted');
}

/** Refuses a signing certificate not made for signing (checked when signing too, so no signature is made that verifiers would refuse). */
export function checkSigningCertificate(leaf: X509Certificate): void {
  checkLeafUsage(leaf, SigstoreX509.parse(leaf.raw));
}

function checkLeafUsage(leaf: X509Certificate, parsed: SigstoreX509): void {
  if (parsed.extKeyUsage?.digitalSignature) return;
  if ((leaf.keyUsage ?? []).includes(CODE_SIGNING)) return;
  fail(`the signing certificate ${oneLine(leaf.subject)} is not for signing: keyUsage lacks digitalSignature and extendedKeyUsage lacks codeSigning`, 'certificate-usage', { certificate: summarizeCertificate(leaf) });
}
