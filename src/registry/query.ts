/** `maas list` and `maas show`: read-only views of the registry. */
import type { Signature } from '../onnx/inspect.js';
import { ANNOTATIONS, type OnnxMetadata } from './manifest.js';
import { parseRef, formatRef } from './refs.js';
import { Registry, type RegistryOptions, type VersionRecord } from './registry.js';
import { versionTag } from './layout.js';
import { type VersionProfile, readProfiles } from './profiles.js';

export interface VersionSummary {
  version: number;
  ref: string;
  digest: string;
  size: number;
  created: string;
  aliases: string[];
}

export interface ModelSummary {
  name: string;
  latest: number;
  aliases: Record<string, number>;
  versions: VersionSummary[];
}

export interface ListResult {
  registry: string;
  models: ModelSummary[];
}

function aliasesOf(aliases: Record<string, number>, version: number): string[] {
  return Object.entries(aliases).filter(([, v]) => v === version).map(([a]) => a).sort();
}

function summary(record: VersionRecord, aliases: Record<string, number>): VersionSummary {
  return {
    version: record.version,
    ref: formatRef(record.name, record.version),
    digest: record.manifest.layers[0]!.digest,
    size: record.manifest.layers.reduce((n, l) => n + l.size, 0),
    created: record.manifest.annotations[ANNOTATIONS.created] ?? '',
    aliases: aliasesOf(aliases, record.version),
  };
}

export async function listModels(options: { name?: string | undefined }, ctx: RegistryOptions): Promise<ListResult> {
  const registry = await Registry.open(ctx);
  const names = options.name ? [parseRef(options.name).name] : registry.modelNames();
  const models = names.map((name) => {
    const versions = registry.versions(name);
    if (options.name && versions.length === 0) registry.resolve({ name, selector: { kind: 'latest' } }); // throws not found
    const aliases = registry.aliases(name);
    return { name, latest: versions.at(-1)!, aliases, versions: versions.map((v) => summary(registry.readVersion(name, v), aliases)) };
  });
  return { registry: registry.root, models };
}

export interface ShowResult extends VersionSummary {
  name: string;
  manifestDigest: string;
  graphFingerprint: string;
  files: { path: string; digest: string; size: number; present: boolean }[];
  signature: Signature;
  irVersion: number;
  opsetImports: OnnxMetadata['opsetImports'];
  producer: OnnxMetadata['producer'];
  parameterCount: number;
  precisions: string[];
  loadChecked: boolean;
  message: string | undefined;
  /** how the version was converted at register time, and the accuracy proof. */
  conversion: OnnxMetadata['conversion'];
  tag: string;
  registeredBy: { author: string; email: string; date: string; commit: string } | undefined;
  /** latency profiles by `maas bench`, one per machine fingerprint (registry/profiles.ts). */
  profiles: VersionProfile[];
}

export async function showModel(options: { ref: string }, ctx: RegistryOptions): Promise<ShowResult> {
  const registry = await Registry.open(ctx);
  const { name, version } = registry.resolve(parseRef(options.ref));
  const record = registry.readVersion(name, version);
  const tag = versionTag(name, version);
  const tagInfo = (await registry.git.tags(tag)).get(tag);
  const { onnx } = record;
  return {
    name,
    ...summary(record, registry.aliases(name)),
    manifestDigest: record.manifestDigest,
    graphFingerprint: onnx.graphFingerprint,
    files: record.manifest.layers.map((l) => ({
      path: l.annotations?.[ANNOTATIONS.filepath] ?? '',
      digest: l.digest,
      size: l.size,
      present: registry.store.has(l),
    })),
    signature: onnx.signature,
    irVersion: onnx.irVersion,
    opsetImports: onnx.opsetImports,
    producer: onnx.producer,
    parameterCount: onnx.parameterCount,
    precisions: onnx.precisions,
    loadChecked: onnx.loadChecked,
    message: onnx.message,
    conversion: onnx.conversion,
    tag,
    registeredBy: tagInfo && { author: tagInfo.author, email: tagInfo.email, date: tagInfo.date, commit: tagInfo.commit },
    profiles: readProfiles(registry, record),
  };
}
