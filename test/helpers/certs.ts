/** Test certificates made at test time with Debian's openssl: a CA, and server and client certificates it signs. */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface Pems {
  cert: string;
  key: string;
}

const openssl = (cwd: string, ...args: string[]) => execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });

/** A self-signed CA in `dir`. */
export function makeCa(dir: string, name: string): Pems {
  mkdirSync(dir, { recursive: true });
  const pems = { cert: join(dir, `${name}.pem`), key: join(dir, `${name}.key`) };
  openssl(dir, 'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', pems.key, '-out', pems.cert, '-days', '2', '-subj', `/CN=${name}`);
  return pems;
}

/** A certificate for 127.0.0.1 / localhost (server) or a client, signed by `ca`. */
export function makeCert(dir: string, name: string, ca: Pems, usage: 'server' | 'client' = 'server'): Pems {
  const pems = { cert: join(dir, `${name}.pem`), key: join(dir, `${name}.key`) };
  const ext = join(dir, `${name}.ext`);
  writeFileSync(ext, usage === 'server' ? 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n' : 'extendedKeyUsage=clientAuth\n');
  openssl(dir, 'req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', pems.key, '-out', join(dir, `${name}.csr`), '-subj', `/CN=${name}`);
  openssl(dir, 'x509', '-req', '-in', join(dir, `${name}.csr`), '-CA', ca.cert, '-CAkey', ca.key, '-CAcreateserial', '-out', pems.cert, '-days', '2', '-extfile', ext);
  return pems;
}

export const read = (path: string) => readFileSync(path);
