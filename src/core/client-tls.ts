/** What a client presents to a TLS server: the CA it trusts, and for mTLS its certificate and key. */
import { resolve } from 'node:path';
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

export function readClientTls(files: ClientTlsFiles, cwd: string): ClientTls {
  const read = (path: string | undefined, flag: string) => (path === undefined ? undefined : readUserFile(resolve(cwd, path), flag));
  const ca = read(files.ca, '--tls-ca');
  const cert = read(files.cert, '--tls-cert');
  const key = read(files.key, '--tls-key');
  return { ...(ca ? { ca } : {}), ...(cert ? { cert } : {}), ...(key ? { key } : {}) };
}
