/**
 * A reproducible tar written entry by entry: the caller names every entry in order, each header
 * carries a fixed mtime, mode and owner (uid/gid 0, no user or group names), and a file's bytes
 * stream from disk through SHA-256 into the output. The same entries give the same bytes on any
 * machine, so a layer's digest is a function of its content.
 */
import { createHash } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { join, relative } from 'node:path';
import * as tar from 'tar';
import { MaasError } from '../core/errors.js';
import type { BlobRef, OnBytes } from '../registry/store.js';

/** 1985-10-26T08:15:00Z, the fixed mtime npm's pacote uses for reproducible tarballs. */
export const FIXED_MTIME = new Date('1985-10-26T08:15:00.000Z');

export type TarEntry =
  | { type: 'Directory'; path: string }
  /** `source`: a file to stream, or the bytes themselves. */
  | { type: 'File'; path: string; size: number; source: string | Buffer }
  /** a hard link to an earlier entry: its bytes are in the archive once. */
  | { type: 'Link'; path: string; linkpath: string };

const BLOCK = 512;
const CHUNK_BYTES = 4 << 20;

function header(entry: TarEntry): Buffer {
  const size = entry.type === 'File' ? entry.size : 0;
  const linkpath = entry.type === 'Link' ? entry.linkpath : undefined;
  const path = entry.type === 'Directory' ? `${entry.path}/` : entry.path;
  const h = new tar.Header({
    path, linkpath, size, type: entry.type, mode: entry.type === 'Directory' ? 0o755 : 0o644, uid: 0, gid: 0, uname: '', gname: '', mtime: FIXED_MTIME,
  });
  // A path over ustar's 255 bytes or a size over 8 GiB also goes in a PAX header before it.
  const needsPax = h.encode();
  return needsPax ? Buffer.concat([new tar.Pax({ path, linkpath, size, mtime: FIXED_MTIME }).encode(), h.block!]) : h.block!;
}

/** Writes the entries as a tar to `file` (which must not exist); returns its digest and size. */
export async function writeTar(entries: TarEntry[], file: string, onBytes: OnBytes = () => {}): Promise<BlobRef> {
  const hash = createHash('sha256');
  const output = await open(file, 'wx', 0o644);
  let size = 0;
  const write = async (bytes: Buffer) => {
    hash.update(bytes);
    let written = 0;
    while (written < bytes.length) written += (await output.write(bytes, written, bytes.length - written)).bytesWritten;
    size += bytes.length;
    onBytes(size);
  };
  try {
    for (const entry of entries) {
      await write(header(entry));
      if (entry.type !== 'File') continue;
      if (Buffer.isBuffer(entry.source)) await write(entry.source);
      else await copyInto(entry.source, entry.size, write);
      if (entry.size % BLOCK) await write(Buffer.alloc(BLOCK - (entry.size % BLOCK)));
    }
    await write(Buffer.alloc(2 * BLOCK)); // the end-of-archive marker
    await output.sync();
  } finally {
    await output.close();
  }
  return { digest: `sha256:${hash.digest('hex')}`, size };
}

/** Streams exactly `size` bytes of a file: one that shrank is an error, never a short layer. */
async function copyInto(path: string, size: number, write: (bytes: Buffer) => Promise<void>): Promise<void> {
  const input = await open(path, 'r');
  const buffer = Buffer.allocUnsafe(Math.min(CHUNK_BYTES, Math.max(size, 1)));
  try {
    let offset = 0;
    while (offset < size) {
      const { bytesRead } = await input.read(buffer, 0, Math.min(buffer.length, size - offset), offset);
      if (bytesRead === 0) {
        throw new MaasError('MAAS_VERIFY_FAILED', `${path} ended after ${offset} of ${size} bytes`, { hint: 'A stored blob changed size; `maas verify` says which version it belongs to.' });
      }
      await write(buffer.subarray(0, bytesRead)); // written before the buffer is read into again
      offset += bytesRead;
    }
  } finally {
    await input.close();
  }
}

/** The files under a folder, relative to it, sorted: a tar's entries in a stable order. */
export function filesUnder(root: string, dir = root): string[] {
  return readdirSync(dir, { withFileTypes: true })
    .flatMap((e) => (e.isDirectory() ? filesUnder(root, join(dir, e.name)) : [relative(root, join(dir, e.name))]))
    .sort();
}
