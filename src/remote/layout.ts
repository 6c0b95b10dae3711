/**
 * An OCI image layout directory (image-spec "oci-layout"): the embedded remote that needs no
 * server, readable by standard tools (`skopeo copy oci:PATH:TAG ...`).
 */
import { createReadStream, existsSync, lstatSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { MaasError } from '../core/errors.js';
import { makeFolders, removeDeadTemps, tempName, writeFileAtomic, writeJsonAtomic } from '../core/fs.js';
import { isDigest } from '../registry/layout.js';
import { hashFile } from '../registry/store.js';
import { type Descriptor, MAX_MANIFEST_BYTES } from '../registry/manifest.js';
import { INDEX_MEDIA_TYPE, MANIFEST_MEDIA_TYPE } from './artifact.js';
const REF_NAME = 'org.opencontainers.image.ref.name';

interface Index {
  schemaVersion: 2;
  mediaType?: string;
  manifests: (Descriptor & { artifactType?: string })[];
}

export class OciLayout {
  constructor(readonly root: string) {}

  private get indexPath(): string {
    return join(this.root, 'index.json');
  }

  /** Only a well-formed digest names a file, so no digest can climb out of blobs/. */
  blobPath(digest: string): string {
    if (!isDigest(digest)) throw this.rejected(`the digest '${String(digest).slice(0, 100)}' is not sha256: and 64 lowercase hex digits`);
    return join(this.root, 'blobs', 'sha256', digest.slice('sha256:'.length));
  }

  private rejected(why: string): MaasError {
    return new MaasError('MAAS_REMOTE_REJECTED', `${this.root} is not a valid OCI image layout: ${why}`, { hint: 'Push the version to the layout again (or make the archive again with `maas pack`).' });
  }

  exists(): boolean {
    return existsSync(join(this.root, 'oci-layout'));
  }

  /**
   * Creates the layout if needed, and mends what a killed push left: half-copied blobs (a blob's
   * name is its digest, so they are no blobs) and a layout whose index was never written.
   * The `oci-layout` marker is written last, so a layout that has it has its index too.
   */
  ensure(): void {
    const blobs = join(this.root, 'blobs', 'sha256');
    makeFolders(blobs);
    removeDeadTemps(blobs);
    removeDeadTemps(this.root);
    if (!lstatSync(this.indexPath, { throwIfNoEntry: false })) writeJsonAtomic(this.indexPath, { schemaVersion: 2, mediaType: INDEX_MEDIA_TYPE, manifests: [] });
    if (!this.exists()) writeJsonAtomic(join(this.root, 'oci-layout'), { imageLayoutVersion: '1.0.0' });
  }

  index(): Index {
    if (!this.exists()) {
      throw new MaasError('MAAS_REMOTE_NOT_FOUND', `${this.root} is not an OCI image layout (no oci-layout file)`, { hint: 'Push to it first: maas push NAME@VERSION oci-layout:PATH.' });
    }
    const stat = lstatSync(this.indexPath, { throwIfNoEntry: false });
    if (!stat?.isFile()) throw this.rejected('index.json is missing or not a file');
    if (stat.size > MAX_MANIFEST_BYTES) throw this.rejected(`index.json holds ${stat.size} bytes (at most ${MAX_MANIFEST_BYTES})`);
    let index: Index;
    try {
      index = JSON.parse(readFileSync(this.indexPath, 'utf8')) as Index;
    } catch (error) {
      throw this.rejected(`index.json: ${(error as Error).message}`);
    }
    if (index?.schemaVersion !== 2 || !Array.isArray(index.manifests)) throw this.rejected('index.json is not an image index');
    for (const entry of index.manifests) {
      if (!isDigest(entry?.digest) || !Number.isSafeInteger(entry.size) || entry.size < 0) throw this.rejected(`index.json names a manifest with digest '${String(entry?.digest).slice(0, 100)}' and size '${String(entry?.size)}'`);
    }
    return index;
  }

  /** A regular file of the descriptor's size (a link, FIFO or folder is not a blob). */
  hasBlob(descriptor: { digest: string; size: number }): boolean {
    const stat = lstatSync(this.blobPath(descriptor.digest), { throwIfNoEntry: false });
    return Boolean(stat?.isFile() && stat.size === descriptor.size);
  }

  /** Copies a file in as the descriptor's blob, hashing as it copies: bytes that do not match are refused. */
  async putBlobFile(source: string, descriptor: Descriptor): Promise<boolean> {
    if (this.hasBlob(descriptor)) return false;
    const temp = tempName(join(this.root, 'blobs', 'sha256'));
    try {
      const copied = await hashFile(source, undefined, temp);
      if (copied.digest !== descriptor.digest || copied.size !== descriptor.size) {
        throw new MaasError('MAAS_DIGEST_MISMATCH', `${source} holds ${copied.size} bytes with digest ${copied.digest}, not the ${descriptor.digest} it should`);
      }
      renameSync(temp, this.blobPath(descriptor.digest));
    } catch (error) {
      rmSync(temp, { force: true });
      throw error;
    }
    return true;
  }

  putBlobBytes(bytes: Buffer, digest: string): boolean {
    if (this.hasBlob({ digest, size: bytes.length })) return false;
    writeFileAtomic(this.blobPath(digest), bytes);
    return true;
  }

  /** Points each tag at the manifest, replacing what the tag named before. */
  tag(manifest: Descriptor & { artifactType?: string }, tags: string[]): void {
    const index = this.index();
    const kept = index.manifests.filter((m) => !tags.includes(m.annotations?.[REF_NAME] ?? ''));
    const added = tags.map((tag) => ({ ...manifest, annotations: { [REF_NAME]: tag } }));
    writeJsonAtomic(this.indexPath, { ...index, manifests: [...kept, ...added] });
  }

  /** Lists an untagged manifest (a referrer) in index.json; false when it is listed already. */
  addManifest(descriptor: Descriptor & { artifactType?: string }): boolean {
    const index = this.index();
    if (index.manifests.some((m) => m.digest === descriptor.digest)) return false;
    writeJsonAtomic(this.indexPath, { ...index, manifests: [...index.manifests, descriptor] });
    return true;
  }

  /** The digest a tag names now, or undefined. */
  taggedDigest(tag: string): string | undefined {
    return this.exists() ? this.index().manifests.find((m) => m.annotations?.[REF_NAME] === tag)?.digest : undefined;
  }

  /** The manifest a tag names, or one the index lists by its digest. */
  resolve(reference: string): Descriptor {
    const byDigest = isDigest(reference);
    const entry = this.index().manifests.find((m) => (byDigest ? m.digest : m.annotations?.[REF_NAME]) === reference);
    if (!entry) {
      const tags = this.index().manifests.map((m) => m.annotations?.[REF_NAME]).filter(Boolean);
      throw new MaasError('MAAS_REMOTE_NOT_FOUND', `${this.root} has no ${byDigest ? 'manifest' : 'tag'} '${reference}'`, { hint: tags.length ? `Its tags: ${tags.join(', ')}.` : 'The layout is empty.' });
    }
    if (entry.mediaType !== MANIFEST_MEDIA_TYPE) throw new MaasError('MAAS_REMOTE_REJECTED', `'${reference}' names a ${entry.mediaType}, not an image manifest`);
    return entry;
  }

  readBlob(descriptor: Descriptor): AsyncIterable<Uint8Array> {
    if (!this.hasBlob(descriptor)) throw new MaasError('MAAS_REMOTE_NOT_FOUND', `blob ${descriptor.digest} is missing from ${this.root}`, { hint: 'Push the version to the layout again.' });
    return createReadStream(this.blobPath(descriptor.digest), { highWaterMark: 4 << 20 });
  }
}
