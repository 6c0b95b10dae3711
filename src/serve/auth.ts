/** Bearer-token auth, the same for every transport: REST's Authorization header, gRPC's authorization metadata. */
import { createHash, timingSafeEqual } from 'node:crypto';
import { MaasError } from '../core/errors.js';

/**
 * The credential an Authorization header carries: `Bearer <token>`, or HTTP Basic with the token as
 * the password (any user name), which is how a browser opening the status page sends it.
 */
function presented(header: string | undefined): string {
  const bearer = /^Bearer (.+)$/i.exec(header ?? '')?.[1];
  if (bearer !== undefined) return bearer;
  const basic = /^Basic ([A-Za-z0-9+/=]+)$/i.exec(header ?? '')?.[1];
  if (basic === undefined) return '';
  const decoded = Buffer.from(basic, 'base64').toString('utf8');
  return decoded.slice(decoded.indexOf(':') + 1);
}

/** Compares digests, always of equal length, so the time taken tells neither the token's bytes nor its length. */
export function tokenMatches(header: string | undefined, token: string): boolean {
  const digest = (text: string) => createHash('sha256').update(text).digest();
  return timingSafeEqual(digest(presented(header)), digest(token));
}

/** Throws MAAS_UNAUTHORIZED unless `header` carries the token (no token set: everyone is let in). */
export function checkToken(header: string | undefined, token: string | undefined): void {
  if (token !== undefined && !tokenMatches(header, token)) throw new MaasError('MAAS_UNAUTHORIZED', 'missing or wrong bearer token');
}
