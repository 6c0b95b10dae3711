/**
 * What maas records about an ONNX file: its IO signature, opsets, size facts and a graph
 * fingerprint that survives re-export with new doc strings or producer fields.
 */
import { createHash, type Hash } from 'node:crypto';
import { dirname } from 'node:path';
import { MaasError, errnoCode, messageOf } from '../core/errors.js';
import { externalName, externalRange, openExternalData } from './external.js';
import { dtypeName, modelPackPrecision } from './dtypes.js';
import { type AttributeValue, type Dim, type GraphRef, type ModelRef, type TensorRef, type ValueType, parseModel } from './model.js';
import { type ByteSource, FileSource, ProtobufError } from './protobuf.js';

export interface TensorSpec {
  name: string;
  /** element type for tensors, or a type expression such as `sequence<float32>`. */
  dtype: string;
  /** dimensions: a size, a symbolic name, or null when unknown; null for no shape at all. */
  shape: Dim[] | null;
}

export interface Signature {
  inputs: TensorSpec[];
  outputs: TensorSpec[];
}

export interface ModelInfo {
  irVersion: number;
  opsetImports: { domain: string; version: number }[];
  producer: { name: string; version: string };
  signature: Signature;
  parameterCount: number;
  /** the element types of the weights, most bytes first. */
  precisions: string[];
  nodeCount: number;
  initializerCount: number;
  /** external data files, relative to the model file, in first-use order. */
  externalDataFiles: string[];
  graphFingerprint: string;
}

const HASH_CHUNK = 4 << 20;

function typeExpression(type: ValueType): string {
  switch (type.kind) {
    case 'tensor': return type.dtype;
    case 'sparse_tensor': return `sparse_tensor<${type.dtype}>`;
    case 'sequence': return `sequence<${typeExpression(type.elem)}>`;
    case 'optional': return `optional<${typeExpression(type.elem)}>`;
    case 'map': return `map<${type.key},${typeExpression(type.value)}>`;
    case 'unknown': return 'unknown';
  }
}

function toSpec(name: string, type: ValueType): TensorSpec {
  const shape = type.kind === 'tensor' || type.kind === 'sparse_tensor' ? type.shape : null;
  return { name, dtype: typeExpression(type), shape };
}

export function signatureOf(model: ModelRef): Signature {
  const initializerNames = new Set(model.graph.initializers.map((t) => t.name));
  return {
    inputs: model.graph.inputs.filter((v) => !initializerNames.has(v.name)).map((v) => toSpec(v.name, v.type)),
    outputs: model.graph.outputs.map((v) => toSpec(v.name, v.type)),
  };
}

class ExternalFiles {
  private readonly sources = new Map<string, FileSource>();
  readonly order: string[] = [];
  constructor(private readonly modelDir: string) {}

  open(location: string): FileSource {
    let source = this.sources.get(location);
    if (source) return source;
    source = openExternalData(this.modelDir, location);
    this.sources.set(location, source);
    this.order.push(externalName(location));
    return source;
  }

  close(): void {
    for (const source of this.sources.values()) source.close();
  }
}

function hashRange(hash: Hash, source: ByteSource, offset: number, length: number): void {
  for (let done = 0; done < length; done += HASH_CHUNK) {
    hash.update(source.read(offset + done, Math.min(HASH_CHUNK, length - done)));
  }
}

function elementCount(dims: number[]): number {
  return dims.reduce((n, d) => n * d, 1);
}

/** Builds the canonical form of a graph, hashing weights as it goes, and tallies weights. */
class Canonicalizer {
  parameterCount = 0;
  readonly bytesByDtype = new Map<string, number>();

  constructor(private readonly source: ByteSource, private readonly external: ExternalFiles) {}

  tensorDigest(tensor: TensorRef, isWeight: boolean): string {
    const hash = createHash('sha256');
    const data = tensor.data;
    let bytes = 0;
    if (data.kind === 'raw') {
      hashRange(hash, this.source, data.span.offset, data.span.length);
      bytes = data.span.length;
    } else if (data.kind === 'typed') {
      // Typed fields (float_data, int64_data...) are small in practice; they are hashed by
      // field so that the digest is stable, though not equal to a raw_data encoding.
      for (const f of data.fields) {
        hash.update(`${f.number}:`);
        if (f.wireType === 2) hashRange(hash, this.source, f.span.offset, f.span.length);
        else hash.update(f.int.toString());
        bytes += f.span.length || 8;
      }
    } else if (data.kind === 'external') {
      const file = this.external.open(data.location);
      const range = externalRange(tensor, file);
      hashRange(hash, file, range.offset, range.length);
      bytes = range.length;
    }
    if (isWeight) this.tally(dtypeName(tensor.dataType), elementCount(tensor.dims), bytes);
    return `sha256:${hash.digest('hex')}`;
  }

  private tally(dtype: string, count: number, bytes: number): void {
    this.parameterCount += count;
    this.bytesByDtype.set(dtype, (this.bytesByDtype.get(dtype) ?? 0) + bytes);
  }

  /** A Constant node's value_float(s) / value_int(s) / value_string(s) are weights too. */
  private tallyConstantValue(value: AttributeValue): void {
    switch (value.kind) {
      case 'float': this.tally('float32', 1, 4); break;
      case 'floats': this.tally('float32', value.value.length, 4 * value.value.length); break;
      case 'int': this.tally('int64', 1, 8); break;
      case 'ints': this.tally('int64', value.value.length, 8 * value.value.length); break;
      case 'bytes': this.tally('string', 1, value.value.length); break;
      case 'strings': this.tally('string', value.value.length, value.value.reduce((n, b) => n + b.length, 0)); break;
      default: break;
    }
  }

  tensor(tensor: TensorRef, isWeight: boolean): unknown {
    return { name: tensor.name, dtype: tensor.dataType, dims: tensor.dims, data: this.tensorDigest(tensor, isWeight) };
  }

  /** `isWeight`: the value of a Constant node, which exporters such as Paddle use for every weight. */
  attribute(value: AttributeValue, isWeight: boolean): unknown {
    if (isWeight) this.tallyConstantValue(value);
    switch (value.kind) {
      case 'float': case 'floats': return [value.kind, value.value];
      case 'int': return [value.kind, value.value.toString()];
      case 'ints': return [value.kind, value.value.map(String)];
      case 'bytes': return [value.kind, value.value.toString('base64')];
      case 'strings': case 'opaque': return [value.kind, value.value.map((b) => b.toString('base64'))];
      case 'tensor': return [value.kind, this.tensor(value.value, isWeight)];
      case 'tensors': return [value.kind, value.value.map((t) => this.tensor(t, isWeight))];
      case 'graph': return [value.kind, this.graph(value.value)];
      case 'graphs': return [value.kind, value.value.map((g) => this.graph(g))];
    }
  }

  graph(graph: GraphRef): unknown {
    // Node and graph names and doc strings are labels, not computation: left out.
    return {
      inputs: graph.inputs.map((v) => toSpec(v.name, v.type)),
      outputs: graph.outputs.map((v) => toSpec(v.name, v.type)),
      nodes: graph.nodes.map((node) => {
        const constant = node.opType === 'Constant' && (node.domain === '' || node.domain === 'ai.onnx');
        return {
          op: node.opType,
          domain: node.domain,
          inputs: node.inputs,
          outputs: node.outputs,
          attributes: [...node.attributes]
            .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
            .map((a) => ({ name: a.name, ref: a.refAttrName ?? null, values: a.values.map((v) => this.attribute(v, constant && a.name.startsWith('value'))) })),
        };
      }),
      initializers: [...graph.initializers]
        .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
        .map((t) => this.tensor(t, true)),
      sparseInitializers: graph.sparseInitializers.map((span) => {
        const hash = createHash('sha256');
        hashRange(hash, this.source, span.offset, span.length);
        return hash.digest('hex');
      }),
    };
  }
}

/** ONNX graphs are acyclic; a cycle (a hostile file can write one) is refused before anything walks it. */
function assertAcyclic(graph: GraphRef): void {
  const producer = new Map<string, number>();
  graph.nodes.forEach((node, i) => node.outputs.forEach((o) => o && producer.set(o, i)));
  const waitingOn = graph.nodes.map(() => 0);
  const dependents = graph.nodes.map((): number[] => []);
  graph.nodes.forEach((node, i) => {
    for (const input of new Set(node.inputs)) {
      const from = producer.get(input);
      if (from === undefined) continue;
      waitingOn[i]!++;
      dependents[from]!.push(i);
    }
  });
  const ready = waitingOn.flatMap((n, i) => (n === 0 ? [i] : []));
  let done = 0;
  for (let i = ready.pop(); i !== undefined; i = ready.pop()) {
    done++;
    for (const d of dependents[i]!) if (--waitingOn[d]! === 0) ready.push(d);
  }
  if (done < graph.nodes.length) {
    const stuck = graph.nodes[waitingOn.findIndex((n) => n > 0)]!;
    throw new ProtobufError(`graph '${graph.name}' has a cycle (through ${stuck.opType} node '${stuck.name || stuck.outputs[0] || '?'}')`);
  }
  for (const node of graph.nodes) {
    for (const attribute of node.attributes) {
      for (const value of attribute.values) {
        if (value.kind === 'graph') assertAcyclic(value.value);
        else if (value.kind === 'graphs') value.value.forEach(assertAcyclic);
      }
    }
  }
}

function invalidModel(path: string, error: unknown): MaasError {
  return new MaasError('MAAS_MODEL_INVALID', `${path} is not a valid ONNX model: ${messageOf(error)}`, {
    hint: 'Check that the file is a complete ONNX export (a truncated copy or a different format fails here); re-export it with torch.onnx.export or onnx.save.',
    cause: error,
  });
}

/** Opens a model file, a folder or an unreadable header being an invalid model. */
function openModel(path: string): FileSource {
  try {
    return new FileSource(path);
  } catch (error) {
    if (error instanceof ProtobufError || errnoCode(error) === 'EISDIR') throw invalidModel(path, error);
    throw error;
  }
}

/** Parses and fingerprints an ONNX file, reading weights in chunks so memory stays flat. */
export function inspectModel(path: string): ModelInfo {
  const source = openModel(path);
  const external = new ExternalFiles(dirname(path));
  try {
    if (source.size === 0) throw new ProtobufError('the file is empty');
    const model = parseModel(source);
    assertAcyclic(model.graph);
    const canonical = new Canonicalizer(source, external);
    const opsetImports = [...model.opsetImports].sort((a, b) => (a.domain < b.domain ? -1 : a.domain > b.domain ? 1 : 0));
    const signature = signatureOf(model);
    const form = { opsetImports, functions: model.functions.length, graph: canonical.graph(model.graph), signature };
    const functionsHash = createHash('sha256');
    for (const span of model.functions) hashRange(functionsHash, source, span.offset, span.length);
    const graphFingerprint = createHash('sha256')
      .update(JSON.stringify(form))
      .update(model.functions.length ? functionsHash.digest('hex') : '')
      .digest('hex');
    const precisions = [...canonical.bytesByDtype.entries()].sort((a, b) => b[1] - a[1]).map(([dtype]) => dtype);
    return {
      irVersion: model.irVersion,
      opsetImports,
      producer: { name: model.producerName, version: model.producerVersion },
      signature,
      parameterCount: canonical.parameterCount,
      precisions,
      nodeCount: model.graph.nodes.length,
      initializerCount: model.graph.initializers.length,
      externalDataFiles: external.order,
      graphFingerprint: `sha256:${graphFingerprint}`,
    };
  } catch (error) {
    // a malformed file, wherever the parse or the canonical form found it out
    if (error instanceof ProtobufError) throw invalidModel(path, error);
    throw error;
  } finally {
    external.close();
    source.close();
  }
}

/** The IO signature alone: the graph's structure is parsed, no weight is read or hashed. */
export function readSignature(path: string): Signature {
  const source = openModel(path);
  try {
    return signatureOf(parseModel(source));
  } catch (error) {
    if (error instanceof ProtobufError) throw invalidModel(path, error);
    throw error;
  } finally {
    source.close();
  }
}

/** ModelPack's paramSize form: `<count><K|M|B|T>`. */
export function paramSize(count: number): string {
  const units: [number, string][] = [[1e12, 'T'], [1e9, 'B'], [1e6, 'M'], [1e3, 'K']];
  for (const [scale, unit] of units) {
    if (count >= scale) return `${Number((count / scale).toPrecision(3))}${unit}`;
  }
  return String(count);
}

export function modelPackPrecisions(precisions: string[]): string | undefined {
  const known = precisions.map(modelPackPrecision).filter((p): p is string => p !== undefined);
  return known.length ? known.join(',') : undefined;
}
