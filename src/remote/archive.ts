/**
 * `maas pack` / `maas import`: a version as an OCI image layout in a tarball, for offline
 * hand-over. Packing is deterministic (sorted entries, fixed mtime, portable headers).
 * Importing refuses, before writing anything, an archive with an entry that could land outside
 * the target (absolute paths, `..`) or that is a link or a device (tar-slip), a compressed
 * archive (no bombs: `maas pack` writes plain tar) and an entry that appears twice.
 */
import { closeSync, openSync, readSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import * as tar from 'tar';
import { MaasError } from '../core/errors.js';
import { makeStagingFolder, makeTempFolder, removeTempFolder } from '../core/fs.js';
import { MODEL_SIGNATURE_FILE, listAttestations } from '../registry/attestations.js';
import { parseRef } from '../registry/refs.js';
import { Registry } from '../registry/registry.js';
import type { OnBytes } from '../registry/store.js';
import type { Admission } from './artifact.js';
import { OciLayout } from './layout.js';
import { isTag } from './ref.js';
import { FIXED_MTIME, filesUnder } from './tar-layer.js';
import { type PullResult, type PushResult, type TransferContext, pull, push } from './transfer.js';

export interface PackResult extends Omit<PushResult, 'remote'> {
  archive: string;
  archiveBytes: number;
}

export async function packVersion(options: { ref: string; output: string }, ctx: TransferContext): Promise<PackResult> {
  const staging = makeTempFolder('maas-pack-');
  try {
    const pushed = await push({ ref: options.ref, remote: `oci-layout:${staging}` }, ctx);
    // The signatures travel in the layout as referrers; the newest also sits on top as model.sig,
    // for a verifier that reads the files (the reference model_signing), not the layout.
    const registry = await Registry.open(ctx);
    const { name, version } = registry.resolve(parseRef(pushed.ref));
    const signature = listAttestations(registry, name, version, 'signature').at(-1);
    if (signature) writeFileSync(join(staging, MODEL_SIGNATURE_FILE), signature.bytes);
    const archive = resolve(ctx.cwd, options.output);
    await tar.c({ cwd: staging, file: archive, portable: true, mtime: FIXED_MTIME, noDirRecurse: true }, filesUnder(staging));
    const { remote: _remote, ...rest } = pushed;
    return { ...rest, archive, archiveBytes: statSync(archive).size };
  } finally {
    removeTempFolder(staging);
  }
}

const ALLOWED = /^(oci-layout|index\.json|model\.sig|blobs\/sha256\/[0-9a-f]{64})$/;

/**
 * Whether the file starts with a ustar header whose checksum holds: a plain tar. tar would
 * otherwise inflate gzip, zstd or brotli input on the fly, bombs included.
 */
function isPlainTar(file: string): boolean {
  const header = Buffer.alloc(512);
  const fd = openSync(file, 'r');
  try {
    if (readSync(fd, header, 0, 512, 0) < 512) return false;
  } finally {
    closeSync(fd);
  }
  const stored = parseInt(header.subarray(148, 156).toString('latin1').replace(/[\0 ]+$/, '').trim(), 8);
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 0x20 : header[i]!;
  return stored === sum;
}

/** Lists every entry first: one unsafe entry refuses the whole archive. */
async function checkEntries(file: string): Promise<void> {
  const problems: string[] = [];
  const seen = new Set<string>();
  let entries = 0;
  if (!isPlainTar(file)) problems.push('it is not a plain tar archive (compressed, or not a tar)');
  else await tar.t({
    file,
    strict: true,
    onReadEntry: (entry) => {
      entries++;
      const path = entry.path.replace(/^\.\//, '').replace(/\/$/, '');
      if (seen.has(path)) problems.push(`${entry.path} appears twice`);
      seen.add(path);
      if (entry.type === 'Directory' && (path === '' || path === 'blobs' || path === 'blobs/sha256')) return;
      if (entry.type !== 'File' && entry.type !== 'OldFile') problems.push(`${entry.path} is a ${entry.type}`);
      else if (!ALLOWED.test(path)) problems.push(`${entry.path} is not part of an OCI image layout${path.split('/').includes('..') || path.startsWith('/') ? ' and points outside it' : ''}`);
    },
  });
  if (entries === 0 && problems.length === 0) problems.push('it holds no entries (is it a tar file?)');
  if (problems.length) {
    throw new MaasError('MAAS_ARCHIVE_UNSAFE', `refusing ${file}: ${problems.slice(0, 3).join('; ')}${problems.length > 3 ? ` (+${problems.length - 3} more)` : ''}`, {
      hint: 'A maas archive holds only oci-layout, index.json, model.sig and blobs/sha256/<digest>; nothing was extracted. Make the archive again with `maas pack`.',
      details: { problems },
    });
  }
}

export async function importArchive(
  options: { file: string; name?: string | undefined; version?: number | undefined; onProgress?: (label: string, total: number) => OnBytes; admit?: Admission | undefined },
  ctx: TransferContext,
): Promise<PullResult> {
  const file = resolve(ctx.cwd, options.file);
  try {
    statSync(file);
  } catch {
    throw new MaasError('MAAS_FILE_NOT_FOUND', `${options.file} does not exist`, { hint: 'Pass the .tar that `maas pack` wrote.' });
  }
  try {
    await checkEntries(file);
  } catch (error) {
    if (error instanceof MaasError) throw error;
    throw new MaasError('MAAS_ARCHIVE_UNSAFE', `${options.file} is not a readable tar archive: ${(error as Error).message}`, { hint: 'Make the archive again with `maas pack`.' });
  }
  // Extracted in the registry's staging folder, not the system's: on the registry's disk, and
  // left to `maas gc` when the import is killed.
  const staging = makeStagingFolder((await Registry.open(ctx)).layout.staging, 'import');
  try {
    await tar.x({ file, cwd: staging, strict: true, preservePaths: false, noChmod: true });
    const layout = new OciLayout(staging);
    const tags = layout.index().manifests.map((m) => m.annotations?.['org.opencontainers.image.ref.name']).filter((t): t is string => typeof t === 'string' && isTag(t));
    const tag = tags.find((t) => /^\d+$/.test(t)) ?? tags[0];
    if (!tag) throw new MaasError('MAAS_REMOTE_REJECTED', `${options.file} holds no tagged manifest`, { hint: 'Make the archive again with `maas pack`.' });
    const pulled = await pull({ remote: `oci-layout:${staging}:${tag}`, name: options.name, version: options.version, admit: options.admit, ...(options.onProgress ? { onProgress: options.onProgress } : {}) }, ctx);
    return { ...pulled, remote: file };
  } finally {
    removeTempFolder(staging);
  }
}
