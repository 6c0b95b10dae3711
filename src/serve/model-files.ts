/** Turns a registered version into the file path onnxruntime loads. */
import { copyFileSync, existsSync, linkSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { MaasError } from '../core/errors.js';
import { ANNOTATIONS } from '../registry/manifest.js';
import type { Registry, VersionRecord } from '../registry/registry.js';

/**
 * A single-file model is its blob. A model with external data gets a folder of hard links
 * (copies across filesystems) named as the model refers to them, under .maas/serve/.
 */
export function modelPath(registry: Registry, record: VersionRecord): string {
  const { store } = registry;
  for (const layer of record.manifest.layers) {
    if (!store.has(layer)) {
      throw new MaasError('MAAS_FILE_NOT_FOUND', `${record.name}@${record.version}: blob ${layer.digest} is not in this registry's store`, {
        hint: 'Fetch the weights with `maas pull`, or register the file again; `maas verify` lists what is missing.',
      });
    }
  }
  if (record.manifest.layers.length === 1) return store.path(record.manifest.layers[0]!.digest);
  const dir = join(registry.layout.state, 'serve', record.manifestDigest.slice('sha256:'.length));
  for (const layer of record.manifest.layers) {
    const target = join(dir, layer.annotations?.[ANNOTATIONS.filepath] ?? layer.digest);
    if (existsSync(target)) continue;
    mkdirSync(dirname(target), { recursive: true });
    try {
      linkSync(store.path(layer.digest), target);
    } catch {
      copyFileSync(store.path(layer.digest), target);
    }
  }
  return join(dir, record.onnx.modelFile);
}
