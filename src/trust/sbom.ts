/**
 * `maas sbom`: a version as an AI BOM in CycloneDX 1.6 JSON, the document `push --sbom`
 * attaches as an OCI referrer. `buildSbom` is pure (the serial number and the clock come in);
 * `sbomOf` reads the version from the registry and, with `output`, writes the file.
 *
 * Where each fact goes, and why:
 * - the model is `components[0]`, type `machine-learning-model`, bom-ref `NAME@V`; its `hashes`
 *   hold the SHA-256 of the ONNX file (the layer digest), its `purl` is `pkg:oci/NAME@<manifest
 *   digest>?tag=V` (the purl-spec OCI type names an artifact by its manifest digest; the
 *   repository is left out because a version is pushed to many). `metadata.component` names the
 *   same model (type, name, version, purl, hashes) without a bom-ref: a bom-ref is unique in a BOM.
 * - every file of the version (the ONNX file, external data, warm-up samples) is a nested
 *   component of type `file` with its SHA-256, its OCI media type as `mime-type` and its size as
 *   a property. `file` rather than `data`: CycloneDX's `data` components describe data sets
 *   (`data[].type` dataset/configuration/...) and have no hashes of their own bytes, while a
 *   `file` component is "a computer file" with hashes, which is what a layer is.
 * - the model card: `modelParameters.inputs`/`outputs` as text (`name: dtype[dims]`); what
 *   CycloneDX has no field for (opsets, IR version, producer, parameter count, precision,
 *   quantization, graph fingerprint) is in `modelCard.properties` under `maas:`. Approach, task
 *   and architecture are not filled: an ONNX file does not say them, and a guess is not a fact.
 * - lineage, when the version was converted at register time: `pedigree.ancestors` holds the
 *   source (its SHA-256 and graph fingerprint; its registry version and purl when the registry
 *   holds a version with those bytes), `pedigree.notes` the steps in words, and one
 *   `maas:conversion:step` property each; the accuracy report is
 *   `modelCard.quantitativeAnalysis.performanceMetrics` (unsliced: the worst over all outputs;
 *   sliced `output:NAME`: each output).
 */
import { randomUUID } from 'node:crypto';
import { resolve } from 'node:path';
import { MaasError } from '../core/errors.js';
import { writeOutputFile } from '../core/fs.js';
import { VERSION } from '../core/version.js';
import type { TensorSpec } from '../onnx/inspect.js';
import { modelPackPrecisions } from '../onnx/inspect.js';
import { isDigest } from '../registry/layout.js';
import { ANNOTATIONS, type ConversionRecord, type Descriptor } from '../registry/manifest.js';
import { formatRef, parseRef } from '../registry/refs.js';
import { Registry, type RegistryOptions, type VersionRecord } from '../registry/registry.js';
import { addAttestations, listAttestations } from '../registry/attestations.js';

export const CYCLONEDX_SPEC_VERSION = '1.6';
export const CYCLONEDX_SCHEMA = 'http://cyclonedx.org/schema/bom-1.6.schema.json';

/** The part of CycloneDX 1.6 that maas writes; field names are the schema's. */
export interface CdxProperty {
  name: string;
  value: string;
}

export interface CdxHash {
  alg: 'SHA-256';
  content: string;
}

export interface CdxPerformanceMetric {
  type: string;
  value: string;
  slice?: string;
}

export interface CdxModelCard {
  modelParameters: { inputs: { format: string }[]; outputs: { format: string }[] };
  quantitativeAnalysis?: { performanceMetrics: CdxPerformanceMetric[] };
  considerations?: { performanceTradeoffs: string[] };
  properties: CdxProperty[];
}

export interface CdxComponent {
  type: 'machine-learning-model' | 'file' | 'application';
  'bom-ref'?: string;
  'mime-type'?: string;
  name: string;
  version?: string;
  description?: string;
  hashes?: CdxHash[];
  purl?: string;
  pedigree?: { ancestors: CdxComponent[]; notes: string };
  components?: CdxComponent[];
  modelCard?: CdxModelCard;
  properties?: CdxProperty[];
}

export interface CdxBom {
  $schema: string;
  bomFormat: 'CycloneDX';
  specVersion: '1.6';
  serialNumber: string;
  version: 1;
  metadata: {
    timestamp: string;
    lifecycles: { phase: 'post-build' }[];
    tools: { components: CdxComponent[] };
    component: CdxComponent;
  };
  components: CdxComponent[];
  dependencies: { ref: string; dependsOn: string[] }[];
}

/** A registered version whose model file has the bytes a conversion started from. */
export interface RegisteredSource {
  name: string;
  version: number;
  manifestDigest: string;
}

export interface SbomContext {
  /** the aliases that point at this version. */
  aliases: string[];
  tool: { name: string; version: string };
  now: () => Date;
  /** `urn:uuid:...`; a random one when absent. */
  serialNumber?: string;
  /** the registry's version of the conversion's source, when it holds one. */
  source?: RegisteredSource;
}

const prop = (name: string, value: string | number | boolean): CdxProperty => ({ name, value: String(value) });

/** `sha256:<hex>` as a CycloneDX hash, or none for anything else (a folder source has no digest). */
function sha256(digest: string): CdxHash[] {
  return isDigest(digest) ? [{ alg: 'SHA-256', content: digest.slice('sha256:'.length) }] : [];
}

/** pkg:oci/NAME@sha256%3A<hex>?tag=V — the artifact `push` sends, by its manifest digest. */
export function ociPurl(name: string, version: number, manifestDigest: string): string {
  return `pkg:oci/${encodeURIComponent(name)}@${encodeURIComponent(manifestDigest)}?tag=${version}`;
}

/** `input: float32[batch, 4]`: a tensor's name, element type and shape, symbolic dims by name. */
export function tensorFormat(spec: TensorSpec): string {
  if (spec.shape === null) return `${spec.name}: ${spec.dtype}`;
  return `${spec.name}: ${spec.dtype}[${spec.shape.map((d) => (d === null ? '?' : String(d))).join(', ')}]`;
}

function layerPath(layer: Descriptor, record: VersionRecord): string {
  return layer.annotations?.[ANNOTATIONS.filepath] ?? record.onnx.modelFile;
}

/** The layer that is the ONNX graph; the others are its external data and warm-up samples. */
export function modelLayer(record: VersionRecord): Descriptor {
  return record.manifest.layers.find((l) => layerPath(l, record) === record.onnx.modelFile) ?? record.manifest.layers[0]!;
}

const QUANTIZED_DTYPES = new Set(['int8', 'uint8', 'int4', 'uint4']);

/** What quantized the weights, in words: the conversion step that did, else the weights' own types. */
function quantization(record: VersionRecord): string | undefined {
  const step = record.onnx.conversion?.steps.find((s) => /^int[48]\b/.test(s));
  if (step) return step;
  const types = record.onnx.precisions.filter((p) => QUANTIZED_DTYPES.has(p));
  return types.length ? `${types.join(', ')} weights` : undefined;
}

function modelCardProperties(record: VersionRecord): CdxProperty[] {
  const { onnx } = record;
  const precision = modelPackPrecisions(onnx.precisions);
  const quantized = quantization(record);
  return [
    prop('maas:onnx:ir-version', onnx.irVersion),
    ...onnx.opsetImports.map((o) => prop(`maas:onnx:opset:${o.domain || 'ai.onnx'}`, o.version)),
    prop('maas:onnx:producer', `${onnx.producer.name} ${onnx.producer.version}`.trim()),
    prop('maas:onnx:graph-fingerprint', onnx.graphFingerprint),
    prop('maas:onnx:node-count', onnx.nodeCount),
    prop('maas:onnx:initializer-count', onnx.initializerCount),
    prop('maas:parameter-count', onnx.parameterCount),
    ...(precision ? [prop('maas:precision', precision)] : []),
    ...onnx.precisions.map((p) => prop('maas:onnx:weight-dtype', p)),
    ...(quantized ? [prop('maas:quantization', quantized)] : []),
    ...(onnx.conversion ? accuracyProperties(onnx.conversion) : []),
  ];
}

function accuracyProperties(c: ConversionRecord): CdxProperty[] {
  return [
    prop('maas:accuracy:reference', c.source.digest || c.source.file),
    prop('maas:accuracy:samples', c.accuracy.samples),
    prop('maas:accuracy:tolerance', c.accuracy.tolerance),
    prop('maas:accuracy:passed', c.accuracy.passed),
  ];
}

/** The accuracy report: converted against original on the same inputs. */
function performanceMetrics(c: ConversionRecord): CdxPerformanceMetric[] {
  return [
    { type: 'normalized-error', value: String(c.accuracy.worst) },
    ...c.accuracy.outputs.flatMap((o) => [
      { type: 'max-abs-error', value: String(o.maxAbsError), slice: `output:${o.name}` },
      { type: 'normalized-error', value: String(o.normalizedError), slice: `output:${o.name}` },
      { type: 'cosine-similarity', value: String(o.cosine), slice: `output:${o.name}` },
    ]),
  ];
}

function conversionNotes(c: ConversionRecord): string {
  const source = `${c.source.file}${c.source.digest ? ` (${c.source.digest})` : ''}`;
  const verdict = c.accuracy.passed ? 'within' : c.forced ? 'beyond, kept with --force,' : 'beyond';
  return `Converted by maas at register time from ${source}: ${c.steps.join('; ')}. `
    + `On ${c.accuracy.samples} samples the worst normalized error against the source is ${c.accuracy.worst}, ${verdict} the tolerance ${c.accuracy.tolerance}.`;
}

function ancestor(record: VersionRecord, c: ConversionRecord, source: RegisteredSource | undefined): CdxComponent {
  const registered = source && {
    'bom-ref': formatRef(source.name, source.version),
    version: String(source.version),
    purl: ociPurl(source.name, source.version, source.manifestDigest),
  };
  return {
    type: 'machine-learning-model',
    'bom-ref': registered?.['bom-ref'] ?? `${formatRef(record.name, record.version)}:source`,
    name: source?.name ?? c.source.file,
    ...(registered ? { version: registered.version } : {}),
    ...(isDigest(c.source.digest) ? { hashes: sha256(c.source.digest) } : {}),
    ...(registered ? { purl: registered.purl } : {}),
    properties: [
      prop('maas:source:file', c.source.file),
      prop('maas:size', c.source.size),
      prop('maas:onnx:graph-fingerprint', c.source.graphFingerprint),
      ...(source ? [prop('maas:oci:manifest-digest', source.manifestDigest)] : []),
    ],
  };
}

/** The AI BOM of one version. Deterministic but for `serialNumber` and the timestamp, both injectable. */
export function buildSbom(record: VersionRecord, context: SbomContext): CdxBom {
  const { name, version, onnx } = record;
  const ref = formatRef(name, version);
  const purl = ociPurl(name, version, record.manifestDigest);
  const hashes = sha256(modelLayer(record).digest);
  const files: CdxComponent[] = record.manifest.layers.map((layer) => {
    const path = layerPath(layer, record);
    return {
      type: 'file',
      'bom-ref': `${ref}/${path}`,
      'mime-type': layer.mediaType,
      name: path,
      hashes: sha256(layer.digest),
      properties: [prop('maas:size', layer.size)],
    };
  });
  const c = onnx.conversion;
  const created = record.manifest.annotations[ANNOTATIONS.created];
  const model: CdxComponent = {
    type: 'machine-learning-model',
    'bom-ref': ref,
    name,
    version: String(version),
    ...(onnx.message ? { description: onnx.message } : {}),
    hashes,
    purl,
    ...(c ? { pedigree: { ancestors: [ancestor(record, c, context.source)], notes: conversionNotes(c) } } : {}),
    components: files,
    modelCard: {
      modelParameters: {
        inputs: onnx.signature.inputs.map((t) => ({ format: tensorFormat(t) })),
        outputs: onnx.signature.outputs.map((t) => ({ format: tensorFormat(t) })),
      },
      ...(c ? {
        quantitativeAnalysis: { performanceMetrics: performanceMetrics(c) },
        considerations: { performanceTradeoffs: [`${c.steps.join('; ')}: worst normalized error ${c.accuracy.worst} against the source, tolerance ${c.accuracy.tolerance}`] },
      } : {}),
      properties: modelCardProperties(record),
    },
    properties: [
      prop('maas:ref', ref),
      prop('maas:oci:manifest-digest', record.manifestDigest),
      prop('maas:oci:config-digest', record.manifest.config.digest),
      prop('maas:oci:artifact-type', record.manifest.artifactType),
      prop('maas:onnx:model-file', onnx.modelFile),
      ...(created ? [prop('maas:created', created)] : []),
      ...[...context.aliases].sort().map((a) => prop('maas:alias', a)),
      prop('maas:load-checked', onnx.loadChecked),
      ...(c ? c.steps.map((s) => prop('maas:conversion:step', s)) : []),
      ...(c ? [prop('maas:conversion:forced', c.forced)] : []),
    ],
  };
  return {
    $schema: CYCLONEDX_SCHEMA,
    bomFormat: 'CycloneDX',
    specVersion: CYCLONEDX_SPEC_VERSION,
    serialNumber: context.serialNumber ?? `urn:uuid:${randomUUID()}`,
    version: 1,
    metadata: {
      timestamp: context.now().toISOString().replace(/\.\d{3}Z$/, 'Z'),
      lifecycles: [{ phase: 'post-build' }],
      tools: { components: [{ type: 'application', name: context.tool.name, version: context.tool.version }] },
      component: { type: 'machine-learning-model', name, version: String(version), hashes, purl },
    },
    components: [model],
    dependencies: [
      { ref, dependsOn: files.map((f) => f['bom-ref']!) },
      ...files.map((f) => ({ ref: f['bom-ref']!, dependsOn: [] })),
    ],
  };
}

/** The registered version whose model file has these bytes, this model's first. */
export function findRegisteredSource(registry: Registry, self: { name: string; version: number }, digest: string): RegisteredSource | undefined {
  if (!isDigest(digest)) return undefined;
  const names = [self.name, ...registry.modelNames().filter((n) => n !== self.name)];
  for (const name of names) {
    for (const version of registry.versions(name)) {
      if (name === self.name && version === self.version) continue;
      let record: VersionRecord;
      try {
        record = registry.readVersion(name, version);
      } catch (error) {
        if (error instanceof MaasError) continue; // a broken manifest elsewhere is `maas verify`'s to report
        throw error;
      }
      if (modelLayer(record).digest === digest) return { name, version, manifestDigest: record.manifestDigest };
    }
  }
  return undefined;
}

/** `maas sbom REF -o FILE`: where the BOM went. */
export interface SbomWritten {
  ref: string;
  /** absolute path of the file written. */
  output: string;
  bytes: number;
  serialNumber: string;
}

/** What `maas sbom` prints: the BOM itself, or where it was written. */
export type SbomResult = CdxBom | SbomWritten;

export function isBom(result: SbomResult): result is CdxBom {
  return 'bomFormat' in result;
}

export interface SbomOptions {
  ref: string;
  /** write the BOM to this file (relative to cwd) instead of returning it. */
  output?: string | undefined;
  serialNumber?: string;
}

/** Reads a version and returns its BOM, or writes it to `output`. */
export async function sbomOf(options: SbomOptions, ctx: RegistryOptions): Promise<SbomResult> {
  const registry = await Registry.open(ctx);
  const { name, version } = registry.resolve(parseRef(options.ref));
  const record = registry.readVersion(name, version);
  const aliases = Object.entries(registry.aliases(name)).filter(([, v]) => v === version).map(([a]) => a);
  const source = record.onnx.conversion ? findRegisteredSource(registry, { name, version }, record.onnx.conversion.source.digest) : undefined;
  const bom = buildSbom(record, {
    aliases,
    tool: { name: 'maas', version: VERSION },
    now: ctx.now ?? (() => new Date()),
    ...(options.serialNumber ? { serialNumber: options.serialNumber } : {}),
    ...(source ? { source } : {}),
  });
  if (options.output === undefined) return bom;
  const output = resolve(ctx.cwd, options.output);
  const text = `${JSON.stringify(bom, null, 2)}\n`;
  writeOutputFile(output, text);
  return { ref: formatRef(name, version), output, bytes: Buffer.byteLength(text), serialNumber: bom.serialNumber };
}

/**
 * Makes sure a version carries an SBOM among its attestations (for `push --sbom`): the one it
 * has, else a new one, stored (a commit), so every push of the version sends the same document.
 */
export async function storeSbom(ref: string, ctx: RegistryOptions): Promise<void> {
  const registry = await Registry.open(ctx);
  const { name, version } = registry.resolve(parseRef(ref));
  if (listAttestations(registry, name, version, 'sbom').length) return;
  const bom = await sbomOf({ ref }, ctx);
  await addAttestations(registry, name, version, registry.readVersion(name, version).manifestDigest, [{ kind: 'sbom', bytes: Buffer.from(`${JSON.stringify(bom, null, 2)}\n`) }]);
}
