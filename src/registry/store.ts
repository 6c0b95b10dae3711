/** Content-addressed blob store: blobs/sha256/<hex>, written via staging + rename. */
import { createHash } from 'node:crypto';
import { chmodSync, existsSync, lstatSync, readdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { MaasError } from '../core/errors.js';
import { forgetStagedFile, makeFolders, processAlive, tempName, tempWriter, trackStagedFile } from '../core/fs.js';
import type { Layout } from './layout.js';

/** 4 MiB reads into one reused buffer: Node's SHA-256 runs at ~1.6 GB/s this way (notes/perf.md §3.3). */
const CHUNK_BYTES = 4 << 20;

export interface BlobRef {
  digest: string;
  size: number;
}

/** A staged file whose writer cannot be told dead (a name without a pid) may be in flight until this age. */
export const STAGING_GRACE_MS = 60 * 60_000;

export interface StagedFile {
  path: string;
  size: number;
  /** its writer is gone: nothing will ever finish or remove it. */
  abandoned: boolean;
}

export type OnBytes = (doneBytes: number) => void;

/** A stored blob as its bytes are: missing, or its real size and whether it hashes to its digest. */
export type BlobState = { state: 'missing' } | { state: 'ok' | 'corrupt'; size: number };

/** Streams a file through SHA-256, optionally copying it to `copyTo`; memory stays at one chunk. */
export async function hashFile(path: string, onBytes: OnBytes = () => {}, copyTo?: string): Promise<BlobRef> {
  const hash = createHash('sha256');
  const input = await open(path, 'r');
  const output = copyTo ? await open(copyTo, 'wx', 0o644) : undefined;
  const buffer = Buffer.allocUnsafe(CHUNK_BYTES);
  let size = 0;
  try {
    for (;;) {
      const { bytesRead } = await input.read(buffer, 0, CHUNK_BYTES, size);
      if (bytesRead === 0) break;
      const chunk = buffer.subarray(0, bytesRead);
      hash.update(chunk);
      if (output) {
        let written = 0;
        while (written < bytesRead) written += (await output.write(chunk, written, bytesRead - written)).bytesWritten;
      }
      size += bytesRead;
      onBytes(size);
    }
    await output?.sync();
  } finally {
    await input.close();
    await output?.close();
  }
  return { digest: `sha256:${hash.digest('hex')}`, size };
}

export class BlobStore {
  constructor(private readonly layout: Layout) {}

  path(digest: string): string {
    return this.layout.blob(digest);
  }

  has(blob: BlobRef): boolean {
    const path = this.path(blob.digest); // a malformed digest throws: it never reads as present
    try {
      return statSync(path).size === blob.size;
    } catch {
      return false;
    }
  }

  /**
   * Copies a file in, hashing as it copies. The copy replaces a stored blob of the same digest:
   * its bytes are the ones just hashed, so a stored copy damaged on disk is repaired for free.
   * `previous`: what the store held under the digest before (hashed only when it held a file).
   */
  async ingest(source: string, onBytes?: OnBytes): Promise<{ blob: BlobRef; previous: 'absent' | 'intact' | 'damaged' }> {
    makeFolders(this.layout.staging);
    makeFolders(this.layout.blobs);
    const staged = tempName(this.layout.staging, 'blob');
    trackStagedFile(staged);
    try {
      const blob = await hashFile(source, onBytes, staged);
      // An unreadable stored copy is replaced like a damaged one.
      const before = await this.inspect(blob.digest).then((found) => found.state, () => 'corrupt' as const);
      const previous = before === 'missing' ? 'absent' : before === 'ok' ? 'intact' : 'damaged';
      chmodSync(staged, 0o444); // blobs are immutable; a stray edit should fail loudly
      renameSync(staged, this.path(blob.digest));
      return { blob, previous };
    } catch (error) {
      rmSync(staged, { force: true });
      throw error;
    } finally {
      forgetStagedFile(staged);
    }
  }

  /**
   * Stores a blob arriving as a stream (a pull), verifying digest and size as it is written;
   * a mismatch leaves nothing in the store. It replaces a stored blob of the digest, as ingest does.
   */
  async ingestStream(chunks: AsyncIterable<Uint8Array> | Iterable<Uint8Array>, expected: BlobRef, onBytes: OnBytes = () => {}): Promise<void> {
    makeFolders(this.layout.staging);
    makeFolders(this.layout.blobs);
    const staged = tempName(this.layout.staging, 'blob');
    trackStagedFile(staged);
    const hash = createHash('sha256');
    const output = await open(staged, 'wx', 0o644).catch((error: unknown) => {
      forgetStagedFile(staged);
      throw error;
    });
    let size = 0;
    try {
      for await (const chunk of chunks) {
        hash.update(chunk);
        let written = 0;
        while (written < chunk.length) written += (await output.write(chunk, written, chunk.length - written)).bytesWritten;
        size += chunk.length;
        if (size > expected.size) break;
        onBytes(size);
      }
      await output.sync();
      await output.close();
      const digest = `sha256:${hash.digest('hex')}`;
      if (digest !== expected.digest || size !== expected.size) {
        throw new MaasError('MAAS_DIGEST_MISMATCH', `blob ${expected.digest} arrived as ${size} bytes with digest ${digest}`, {
          hint: 'The remote holds corrupted or tampered data; nothing was written. Push the version again from a good copy.',
          details: { expected: expected.digest, actual: digest, expectedSize: expected.size, size },
        });
      }
      chmodSync(staged, 0o444);
      renameSync(staged, this.path(expected.digest));
    } catch (error) {
      await output.close().catch(() => undefined);
      rmSync(staged, { force: true });
      throw error;
    } finally {
      forgetStagedFile(staged);
    }
  }

  /** Re-hashes a stored blob by its digest alone, whatever size a manifest claims for it. */
  async inspect(digest: string, onBytes?: OnBytes): Promise<BlobState> {
    const path = this.path(digest);
    if (!existsSync(path)) return { state: 'missing' };
    const actual = await hashFile(path, onBytes);
    return { state: actual.digest === digest ? 'ok' : 'corrupt', size: actual.size };
  }

  /**
   * Re-hashes a stored blob against a descriptor. 'corrupt' means its bytes do not hash to the
   * digest; 'wrong-size' means they do but the descriptor claims another size: the descriptor
   * lies, not the blob, so the blob must not be blamed (it may be shared by other versions).
   */
  async check(blob: BlobRef, onBytes?: OnBytes): Promise<'ok' | 'missing' | 'corrupt' | 'wrong-size'> {
    const found = await this.inspect(blob.digest, onBytes);
    if (found.state !== 'ok') return found.state;
    return found.size === blob.size ? 'ok' : 'wrong-size';
  }

  /** Every stored blob's digest. */
  list(): string[] {
    if (!existsSync(this.layout.blobs)) return [];
    return readdirSync(this.layout.blobs).filter((f) => /^[0-9a-f]{64}$/.test(f)).map((hex) => `sha256:${hex}`);
  }

  sizeOf(digest: string): number {
    return statSync(this.path(digest)).size;
  }

  remove(digest: string): void {
    rmSync(this.path(digest), { force: true });
  }

  /**
   * Leftovers of interrupted ingests in the staging folder: a file is abandoned when the
   * process that wrote it (its name carries the pid) is gone, or when it is older than
   * `graceMs` (a writer on another host, or a name without a pid).
   */
  staging(graceMs: number): StagedFile[] {
    if (!existsSync(this.layout.staging)) return [];
    const files: StagedFile[] = [];
    for (const name of readdirSync(this.layout.staging)) {
      const path = join(this.layout.staging, name);
      let stat;
      try {
        stat = statSync(path);
      } catch {
        continue; // its writer finished meanwhile
      }
      const writer = tempWriter(name);
      const abandoned = (writer !== undefined && !processAlive(writer)) || Date.now() - stat.mtimeMs >= graceMs;
      files.push({ path, size: stat.isDirectory() ? folderBytes(path) : stat.size, abandoned });
    }
    return files;
  }

  /** Drops abandoned staging files; those of a writer still running stay. */
  clearStaging(graceMs: number): StagedFile[] {
    const abandoned = this.staging(graceMs).filter((f) => f.abandoned);
    for (const f of abandoned) rmSync(f.path, { force: true, recursive: true });
    return abandoned;
  }
}

/** The bytes of the files under a staging folder (an import's extracted archive). */
function folderBytes(dir: string): number {
  let bytes = 0;
  for (const name of readdirSync(dir, { recursive: true })) {
    try {
      const stat = lstatSync(join(dir, String(name)));
      if (stat.isFile()) bytes += stat.size;
    } catch {
      // removed meanwhile
    }
  }
  return bytes;
}
