/** What a client presents to a TLS server: the CA it trusts, and for mTLS its certificate and key. */
import { X509Certificate } from 'node:crypto';
import { resolve } from 'node:path';
import { createSecureContext } from 'node:tls';
import { MaasError, messageOf } from './errors.js';
import { readUserFile } from './fs.js';

/** PEM file paths, as the flags name them. */
export interface ClientTlsFiles {
  ca?: string | undefined;
  cert?: string | undefined;
  key?: string | undefined;
}

/** The files' bytes, as node:https and node:tls take them. */
export interface ClientTls {
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
}

/**
 * Throws unless `pem` holds PEM certificates that parse. OpenSSL takes a CA file with none in it
 * without a word, and the handshake then fails with a message that points elsewhere.
 */
export function checkPemCertificates(pem: Buffer, flag: string): void {
  const certificates = pem.toString('latin1').match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  if (certificates.length === 0) throw new Error(`${flag} holds no PEM certificate`);
  for (const certificate of certificates) new X509Certificate(certificate);
}

/** Reads the files and checks they make a TLS context (a key that is not the certificate's, a CA that is not PEM): MAAS_CONFIG_INVALID, exit 3. */
export function readClientTls(files: ClientTlsFiles, cwd: string): ClientTls {
  const read = (path: string | undefined, flag: string) => (path === undefined ? undefined : readUserFile(resolve(cwd, path), flag));
  const ca = read(files.ca, '--tls-ca');
  const cert = read(files.cert, '--tls-cert');
  const key = read(files.key, '--tls-key');
  const tls = { ...(ca ? { ca } : {}), ...(cert ? { cert } : {}), ...(key ? { key } : {}) };
  try {
    if (ca) checkPemCertificates(ca, '--tls-ca');
    createSecureContext(tls);
  } catch (error) {
    throw new MaasError('MAAS_CONFIG_INVALID', `the TLS files do not work together: ${messageOf(error)}`, {
      hint: "--tls-ca must be the PEM CA that signed the server's certificate; --tls-cert a PEM client certificate and --tls-key its PEM private key.",
    });
  }
  return tls;
}

/**
 * A connection to a maas server that failed, as the user should read it. A server started with
 * --tls-ca that got no client certificate its CA signed ends the handshake with OpenSSL's alert
 * ("tlsv13 alert certificate required"), which names neither the flags nor the fix; anything
 * else is MAAS_REMOTE_UNREACHABLE with `hint`.
 */
export function connectionFailure(origin: string, error: unknown, sentCertificate: boolean, hint: string): MaasError {
  const text = messageOf(error);
  if (/alert certificate required/.test(text)) {
    return new MaasError('MAAS_REMOTE_UNAUTHORIZED', `${origin} asks for a client certificate (it runs with --tls-ca), and ${sentCertificate ? 'refused the one sent' : 'none was sent'}`, {
      hint: "Pass --tls-cert and --tls-key: a client certificate and key that the server's --tls-ca signed.",
    });
  }
  // A client certificate the server's CA did not sign ends in a reset, with no alert to name it.
  const dropped = sentCertificate && /socket hang up|ECONNRESET|Failed to connect/.test(text);
  return new MaasError('MAAS_REMOTE_UNREACHABLE', `cannot reach ${origin}: ${text}`, {
    hint: dropped
      ? "The connection was dropped after the TLS handshake: a server with --tls-ca does that to a client certificate its CA did not sign. Check that --tls-cert was signed by the server's --tls-ca."
      : hint,
  });
}
