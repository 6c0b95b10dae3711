/**
 * An OCI image layout directory (image-spec "oci-layout"): the embedded remote that needs no
 * server, readable by standard tools (`skopeo copy oci:PATH:TAG ...`).
 */
import { createReadStream, existsSync, mkdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { copyFile } from 'node:fs/promises';
import { join } from 'node:path';
import { MaasError } from '../core/errors.js';
import { tempName, writeFileAtomic, writeJsonAtomic } from '../core/fs.js';
import type { Descriptor } from '../registry/manifest.js';
import { MANIFEST_MEDIA_TYPE } from './artifact.js';

const INDEX_MEDIA_TYPE = 'application/vnd.oci.image.index.v1+json';
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

  blobPath(digest: string): string {
    const [algorithm, hex] = digest.split(':');
    return join(this.root, 'blobs', algorithm!, hex!);
  }

  exists(): boolean {
    return existsSync(join(this.root, 'oci-layout'));
  }

  /** Creates the layout if needed. */
  ensure(): void {
    if (this.exists()) return;
    mkdirSync(join(this.root, 'blobs', 'sha256'), { recursive: true });
    writeJsonAtomic(join(this.root, 'oci-layout'), { imageLayoutVersion: '1.0.0' });
    if (!existsSync(this.indexPath)) writeJsonAtomic(this.indexPath, { schemaVersion: 2, mediaType: INDEX_MEDIA_TYPE, manifests: [] });
  }

  index(): Index {
    if (!this.exists()) {
      throw new MaasError('MAAS_REMOTE_NOT_FOUND', `${this.root} is not an OCI image layout (no oci-layout file)`, { hint: 'Push to it first: maas push NAME@VERSION oci-layout:PATH.' });
    }
    return JSON.parse(readFileSync(this.indexPath, 'utf8')) as Index;
  }

  hasBlob(descriptor: { digest: string; size: number }): boolean {
    return existsSync(this.blobPath(descriptor.digest));
  }

  async putBlobFile(source: string, descriptor: Descriptor): Promise<boolean> {
    if (this.hasBlob(descriptor)) return false;
    const temp = tempName(join(this.root, 'blobs', 'sha256'));
    try {
      await copyFile(source, temp);
      renameSync(temp, this.blobPath(descriptor.digest));
    } catch (error) {
      rmSync(temp, { force: true });
      throw error;
    }
    return true;
  }

  putBlobBytes(bytes: Buffer, digest: string): boolean {
    if (existsSync(this.blobPath(digest))) return false;
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

  resolve(tag: string): Descriptor {
    const entry = this.index().manifests.find((m) => m.annotations?.[REF_NAME] === tag);
    if (!entry) {
      const tags = this.index().manifests.map((m) => m.annotations?.[REF_NAME]).filter(Boolean);
      throw new MaasError('MAAS_REMOTE_NOT_FOUND', `${this.root} has no tag '${tag}'`, { hint: tags.length ? `Its tags: ${tags.join(', ')}.` : 'The layout is empty.' });
    }
    if (entry.mediaType !== MANIFEST_MEDIA_TYPE) throw new MaasError('MAAS_REMOTE_REJECTED', `tag '${tag}' names a ${entry.mediaType}, not an image manifest`);
    return entry;
  }

  readBlob(descriptor: Descriptor): AsyncIterable<Uint8Array> {
    if (!this.hasBlob(descriptor)) throw new MaasError('MAAS_REMOTE_NOT_FOUND', `blob ${descriptor.digest} is missing from ${this.root}`, { hint: 'Push the version to the layout again.' });
    return createReadStream(this.blobPath(descriptor.digest), { highWaterMark: 4 << 20 });
  }
}
