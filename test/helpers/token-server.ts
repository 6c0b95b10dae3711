/**
 * A token server for the registry's token-auth mode (distribution's token spec): checks Basic
 * credentials and answers an RS256 JWT whose x5c names a self-signed certificate the registry
 * trusts (`rootcertbundle`). Only what a real deployment's auth service would do.
 */
import { execFileSync } from 'node:child_process';
import { X509Certificate, createSign, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { join } from 'node:path';
import { onTestFinished } from 'vitest';

const b64url = (data: Buffer | string) => Buffer.from(data).toString('base64url');

export interface TokenServer {
  realm: string;
  service: string;
  issuer: string;
  certPath: string;
  /** scopes asked for, one entry per token request. */
  requests: string[][];
}

export async function startTokenServer(dir: string, username: string, password: string): Promise<TokenServer> {
  const certPath = join(dir, 'token-cert.pem');
  const keyPath = join(dir, 'token-key.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', keyPath, '-out', certPath, '-days', '1', '-subj', '/CN=maas-test-issuer'], { stdio: 'ignore' });
  const key = readFileSync(keyPath);
  const x5c = [new X509Certificate(readFileSync(certPath)).raw.toString('base64')];
  const service = 'maas-test-registry';
  const issuer = 'maas-test-issuer';
  const requests: string[][] = [];
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://token');
    const given = Buffer.from((req.headers.authorization ?? '').replace(/^Basic /, ''), 'base64').toString();
    if (given !== `${username}:${password}`) {
      res.writeHead(401, { 'content-type': 'application/json' }).end('{"details":"invalid credentials"}');
      return;
    }
    const scopes = url.searchParams.getAll('scope');
    requests.push(scopes);
    const access = scopes.map((scope) => {
      const type = scope.slice(0, scope.indexOf(':'));
      const actions = scope.slice(scope.lastIndexOf(':') + 1).split(',');
      return { type, name: scope.slice(type.length + 1, scope.lastIndexOf(':')), actions };
    });
    const now = Math.floor(Date.now() / 1000);
    const header = b64url(JSON.stringify({ typ: 'JWT', alg: 'RS256', x5c }));
    const claims = b64url(JSON.stringify({ iss: issuer, sub: username, aud: service, exp: now + 300, nbf: now - 10, iat: now, jti: randomUUID(), access }));
    const signature = createSign('RSA-SHA256').update(`${header}.${claims}`).sign(key).toString('base64url');
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ token: `${header}.${claims}.${signature}`, expires_in: 300 }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  onTestFinished(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return { realm: `http://127.0.0.1:${(server.address() as { port: number }).port}/token`, service, issuer, certPath, requests };
}
