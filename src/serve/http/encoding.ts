/**
 * Compressed request bodies: `Content-Encoding: gzip` or `deflate`, as Triton's clients send
 * them with request compression on. The body is read under --max-body-mb as it arrived, then
 * inflated off the HTTP thread (zlib's thread pool) under the same limit, so a small body that
 * inflates to gigabytes stops at the limit instead of filling memory.
 */
import type { IncomingMessage } from 'node:http';
import { promisify } from 'node:util';
import { gunzip, inflate, inflateRaw } from 'node:zlib';
import { MaasError } from '../../core/errors.js';
import { badInput } from '../../inference/protocol.js';
import { type Body, readBody } from './body.js';

type Coding = 'gzip' | 'deflate';

const SUPPORTED = 'gzip or deflate';
/** The codings taken, as a 415's Accept-Encoding lists them (RFC 7694). */
export const ACCEPTED_ENCODINGS = 'gzip, deflate';
const ALIASES: Record<string, Coding | 'identity'> = { gzip: 'gzip', 'x-gzip': 'gzip', deflate: 'deflate', identity: 'identity' };

/** The codings applied to the body, in the order they were applied; any we cannot undo is a 415. */
export function contentCodings(header: string | undefined): Coding[] {
  if (header === undefined) return [];
  const codings: Coding[] = [];
  for (const token of header.split(',')) {
    const name = token.trim().toLowerCase();
    if (name === '') continue;
    const coding = ALIASES[name];
    if (coding === undefined) {
      throw new MaasError('MAAS_UNSUPPORTED_ENCODING', `Content-Encoding ${JSON.stringify(token.trim().slice(0, 40))} is not supported; send the body uncompressed, or compressed with ${SUPPORTED}`);
    }
    if (coding !== 'identity') codings.push(coding);
  }
  return codings;
}

const gunzipAsync = promisify(gunzip);
const inflateAsync = promisify(inflate);
const inflateRawAsync = promisify(inflateRaw);

/**
 * HTTP's deflate is zlib-wrapped (RFC 9110), but some clients send the raw stream: a zlib header
 * is a compression method of 8 and a first two bytes that are a multiple of 31.
 */
function hasZlibHeader(data: Buffer): boolean {
  return data.length >= 2 && (data[0]! & 0x0f) === 8 && data[0]! >> 4 <= 7 && ((data[0]! << 8) | data[1]!) % 31 === 0;
}

async function decode(data: Buffer, coding: Coding, limit: number): Promise<Buffer> {
  // maxOutputLength ends the stream as soon as the output passes it, so memory stays bounded.
  const options = { maxOutputLength: Math.max(1, limit) };
  try {
    if (coding === 'gzip') return await gunzipAsync(data, options);
    return await (hasZlibHeader(data) ? inflateAsync : inflateRawAsync)(data, options);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') {
      throw new MaasError('MAAS_PAYLOAD_TOO_LARGE', `the ${coding} request body decompresses to more than the limit of ${limit} bytes (the server's --max-body-mb)`, { hint: 'Raise --max-body-mb.' });
    }
    throw badInput(`the request body is not valid ${coding} data (Content-Encoding: ${coding}): ${(error as Error).message}`);
  }
}

/** Reads a body of at most `limit` bytes, undoing its Content-Encoding; decompressed, it is held to the same limit. */
export function readDecodedBody(req: IncomingMessage, limit: number): Promise<Body> {
  // Checked before the body is read: a coding we cannot undo is refused without reading it.
  let codings: Coding[];
  try {
    codings = contentCodings(req.headers['content-encoding']);
  } catch (error) {
    return Promise.reject(error);
  }
  // Most bodies are not compressed: their read is the whole promise, with no async step around it.
  return codings.length === 0 ? readBody(req, limit) : decodedBody(req, limit, codings);
}

async function decodedBody(req: IncomingMessage, limit: number, codings: Coding[]): Promise<Body> {
  const body = await readBody(req, limit);
  let data = body.chunks.length === 1 ? body.chunks[0]! : Buffer.concat(body.chunks, body.length);
  for (const coding of codings.reverse()) data = await decode(data, coding, limit);
  return { chunks: [data], length: data.length };
}
