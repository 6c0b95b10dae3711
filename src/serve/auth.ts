/** Bearer-token auth, the same for every transport: REST's Authorization header, gRPC's authorization metadata. */
import { createHash, timingSafeEqual } from 'node:crypto';
import { MaasError } from '../core/errors.js';

/** Compares digests, always of equal length, so the time taken tells neither the token's bytes nor its length. */
export function tokenMatches(header: string | undefined, token: string): boolean {
  const digest = (text: string) => createHash('sha256').update(text).digest();
  return timingSafeEqual(digest(/^Bearer (.+)$/i.exec(header ?? '')?.[1] ?? ''), digest(token));
}

/** Throws MAAS_UNAUTHORIZED unless `header` carries the token (no token set: everyone is let in). */
export function checkToken(header: string | undefined, token: string | undefined): void {
  if (token !== undefined && !tokenMatches(header, token)) throw new MaasError('MAAS_UNAUTHORIZED', 'missing or wrong bearer token');
}
