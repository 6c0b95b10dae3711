/**
 * TLS for both transports: a certificate and key (PEM), and with a CA the client certificates
 * it must have signed (mTLS). The files are watched: a rotated certificate is checked, then
 * used for the next handshakes, without a restart; a half-written or mismatched pair is not
 * used and the last good one stays.
 */
import { readFileSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { createSecureContext } from 'node:tls';
import { checkPemCertificates } from '../core/client-tls.js';
import { MaasError, errnoCode, messageOf } from '../core/errors.js';

export interface TlsFiles {
  cert: string;
  key: string;
  /** require client certificates signed by this CA. */
  ca?: string | undefined;
}

export interface TlsPems {
  cert: Buffer;
  key: Buffer;
  ca?: Buffer | undefined;
}

export interface TlsMaterial {
  readonly mutual: boolean;
  current(): TlsPems;
  /** node:https options for the current files. */
  secureContextOptions(): { cert: Buffer; key: Buffer; ca?: Buffer; requestCert: boolean; rejectUnauthorized: boolean };
  /** called with the new options after each change that checked out. */
  onChange(listener: (options: ReturnType<TlsMaterial['secureContextOptions']>) => void): void;
  close(): void;
}

/** How often the files are looked at for a rotation. */
export const TLS_POLL_MS = 1000;

function read(files: TlsFiles): TlsPems {
  const one = (path: string, flag: string) => {
    try {
      return readFileSync(path);
    } catch (error) {
      const why = errnoCode(error) === 'ENOENT' ? 'does not exist' : messageOf(error);
      throw new MaasError('MAAS_CONFIG_INVALID', `${flag} ${path} ${why}`, { hint: `Point ${flag} at a PEM file (openssl writes them).` });
    }
  };
  return { cert: one(files.cert, '--tls-cert'), key: one(files.key, '--tls-key'), ...(files.ca ? { ca: one(files.ca, '--tls-ca') } : {}) };
}

/**
 * Throws when the PEMs do not make a usable context: not PEM, or a key that is not the
 * certificate's. A CA file is parsed here: OpenSSL takes one with no certificate in it without a
 * word, and every client would then be refused at the handshake, with nothing logged.
 */
function check(pems: TlsPems): void {
  try {
    if (pems.ca) checkPemCertificates(pems.ca, '--tls-ca');
    createSecureContext({ cert: pems.cert, key: pems.key, ...(pems.ca ? { ca: pems.ca } : {}) });
  } catch (error) {
    throw new MaasError('MAAS_CONFIG_INVALID', `the TLS files do not work together: ${messageOf(error)}`, {
      hint: '--tls-cert must be the PEM certificate (chain) of the PEM private key in --tls-key; --tls-ca a PEM CA certificate.',
    });
  }
}

function stamp(files: TlsFiles): string {
  return [files.cert, files.key, files.ca].filter((f): f is string => f !== undefined).map((f) => {
    const s = statSync(f, { throwIfNoEntry: false });
    return s ? `${s.ino}:${s.size}:${s.mtimeMs}` : 'missing';
  }).join('|');
}

export function loadTls(given: TlsFiles, cwd: string, options: { pollMs?: number; log: (line: string) => void }): TlsMaterial {
  const files: TlsFiles = { cert: resolve(cwd, given.cert), key: resolve(cwd, given.key), ...(given.ca ? { ca: resolve(cwd, given.ca) } : {}) };
  let pems = read(files);
  check(pems);
  let seen = stamp(files);
  let refused: string | undefined;
  const listeners: ((o: ReturnType<TlsMaterial['secureContextOptions']>) => void)[] = [];
  const mutual = files.ca !== undefined;
  const contextOptions = () => ({ cert: pems.cert, key: pems.key, ...(pems.ca ? { ca: pems.ca } : {}), requestCert: mutual, rejectUnauthorized: mutual });
  const timer = setInterval(() => {
    const now = stamp(files);
    if (now === seen) return;
    try {
      const next = read(files);
      check(next);
      pems = next;
      seen = now;
      refused = undefined;
      options.log('TLS: the certificate files changed; new handshakes use them');
      for (const listener of listeners) listener(contextOptions());
    } catch (error) {
      // Often a rotation half done (the certificate written, the key not yet): tried again next tick.
      const why = messageOf(error);
      if (why !== refused) options.log(`TLS: the changed certificate files are not used yet: ${why}`);
      refused = why;
    }
  }, options.pollMs ?? TLS_POLL_MS);
  timer.unref();
  return {
    mutual,
    current: () => pems,
    secureContextOptions: contextOptions,
    onChange: (listener) => listeners.push(listener),
    close: () => clearInterval(timer),
  };
}
