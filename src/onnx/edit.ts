/**
 * A model to rewrite (fp16, int8, int4): the parsed graph with its nodes, initializers and
 * subgraphs as plain values a conversion changes in place, over the source file. Writing copies
 * every byte a conversion left alone straight from the source (weights streamed, never held),
 * inlines external data so the result stands alone, and drops value_info (inferred types a
 * rewrite may have changed; onnxruntime infers them again).
 */
import { dirname } from 'node:path';
import { type AttributeInit, type TensorInit, attributeProto, tensorProto, valueInfoProto, writeMessage } from './build.js';
import { DataType } from './dtypes.js';
import { externalRange, openExternalData } from './external.js';
import { type AttributeRef, type Dim, type GraphRef, type ModelRef, type NodeRef, type OpsetImport, type TensorRef, type ValueInfo, parseModel } from './model.js';
import { type ByteSource, type Field, FileSource, ProtoWriter, type Span, WIRE, fields } from './protobuf.js';

const MODEL = { graph: 7, opsetImport: 8 };
const GRAPH = { node: 1, initializer: 5, input: 11, output: 12, valueInfo: 13 };
const NODE = { input: 1, output: 2, name: 3, opType: 4, attribute: 5, domain: 7 };
const CHUNK = 4 << 20;

/** An attribute: as it was (copied), with its subgraphs to rewrite, or new. */
export interface EditAttribute {
  name: string;
  /** the parsed value, for a conversion to read (a Constant's tensor, Cast's `to`). */
  ref?: AttributeRef;
  /** If/Loop/Scan bodies, rewritten like the main graph. */
  graphs?: EditGraph[];
  /** set when a conversion replaces the attribute's value. */
  value?: AttributeInit;
}

export interface EditNode {
  op: string;
  domain: string;
  name: string;
  inputs: string[];
  outputs: string[];
  attributes: EditAttribute[];
  /** the source node, whose other fields (doc_string) are copied. */
  ref?: NodeRef;
}

/** A tensor: one of the source's (data copied, external data inlined), or new bytes. */
export interface EditTensor {
  name: string;
  dataType: number;
  dims: number[];
  ref?: TensorRef;
  raw?: Buffer;
}

/** A graph input or output: as declared in the source, or with a new element type. */
export interface EditValue {
  name: string;
  info?: ValueInfo;
  /** a new element type (DataType), keeping the declared shape. */
  dataType?: number;
}

export interface EditGraph {
  ref: GraphRef;
  nodes: EditNode[];
  initializers: EditTensor[];
  inputs: EditValue[];
  outputs: EditValue[];
}

export interface EditModel {
  source: ByteSource;
  /** the model's folder: where its external data is. */
  dir: string;
  ref: ModelRef;
  opsets: OpsetImport[];
  graph: EditGraph;
}

function editGraph(graph: GraphRef): EditGraph {
  return {
    ref: graph,
    nodes: graph.nodes.map(editNode),
    initializers: graph.initializers.map((t) => ({ name: t.name, dataType: t.dataType, dims: t.dims, ref: t })),
    inputs: graph.inputs.map((info) => ({ name: info.name, info })),
    outputs: graph.outputs.map((info) => ({ name: info.name, info })),
  };
}

function editNode(node: NodeRef): EditNode {
  return {
    op: node.opType,
    domain: node.domain,
    name: node.name,
    inputs: [...node.inputs],
    outputs: [...node.outputs],
    ref: node,
    attributes: node.attributes.map((a) => {
      const graphs = a.values.flatMap((v) => (v.kind === 'graph' ? [v.value] : v.kind === 'graphs' ? v.value : []));
      return { name: a.name, ref: a, ...(graphs.length ? { graphs: graphs.map(editGraph) } : {}) };
    }),
  };
}

/** Opens a model to rewrite; close() releases its file. */
export function openModel(path: string): EditModel & { close(): void } {
  const source = new FileSource(path);
  try {
    const ref = parseModel(source);
    return { source, dir: dirname(path), ref, opsets: ref.opsetImports.map((o) => ({ ...o })), graph: editGraph(ref.graph), close: () => source.close() };
  } catch (error) {
    source.close();
    throw error;
  }
}

/** The opset version a model imports for `domain` ('' is the default ONNX domain). */
export function opsetOf(model: EditModel, domain = ''): number | undefined {
  return model.opsets.find((o) => o.domain === domain || (domain === '' && o.domain === 'ai.onnx'))?.version;
}

/** Imports `domain` at `version` unless the model already does (com.microsoft for contrib ops). */
export function requireOpset(model: EditModel, domain: string, version: number): void {
  if (opsetOf(model, domain) === undefined) model.opsets.push({ domain, version });
}

/** A field copied as it is, long byte fields streamed from the source. */
export function copyField(writer: ProtoWriter, source: ByteSource, field: Field): void {
  if (field.wireType === WIRE.varint) writer.varint(field.number, field.int);
  else if (field.wireType === WIRE.bytes) writer.bytes(field.number, streamed(source, field.span));
  else {
    const bytes = Buffer.alloc(field.wireType === WIRE.fixed32 ? 4 : 8);
    if (field.wireType === WIRE.fixed32) bytes.writeUInt32LE(Number(field.int));
    else bytes.writeBigUInt64LE(field.int);
    writer.raw(field.number, field.wireType, bytes);
  }
}

function streamed(source: ByteSource, span: Span) {
  const { offset, length } = span;
  return {
    length,
    *chunks() {
      for (let done = 0; done < length; done += CHUNK) yield Buffer.from(source.read(offset + done, Math.min(CHUNK, length - done)));
    },
  };
}

function tensorMessage(model: EditModel, tensor: EditTensor): ProtoWriter {
  const ref = tensor.ref;
  if (tensor.raw || !ref) return tensorProto({ name: tensor.name, dataType: tensor.dataType, dims: tensor.dims, raw: tensor.raw ?? Buffer.alloc(0) });
  if (ref.data.kind === 'external') {
    // Inlined: the output lives elsewhere, where the relative location would not resolve.
    const data = ref.data;
    const probe = openExternalData(model.dir, data.location);
    let length: number;
    try {
      length = externalRange(ref, probe).length;
    } finally {
      probe.close();
    }
    const raw = {
      length,
      *chunks() {
        const file = openExternalData(model.dir, data.location);
        try {
          const range = externalRange(ref, file);
          for (let done = 0; done < range.length; done += CHUNK) yield Buffer.from(file.read(range.offset + done, Math.min(CHUNK, range.length - done)));
        } finally {
          file.close();
        }
      },
    };
    return tensorProto({ name: tensor.name, dataType: tensor.dataType, dims: tensor.dims, raw });
  }
  const w = new ProtoWriter();
  // The source tensor with a new name if renamed: every field but the name copied.
  for (const f of fields(model.source, ref.span!)) if (f.number !== 8) copyField(w, model.source, f);
  return w.string(8, tensor.name);
}

function attributeMessage(model: EditModel, attribute: EditAttribute): ProtoWriter {
  if (attribute.value !== undefined) return attributeProto(attribute.name, attribute.value);
  const ref = attribute.ref!;
  if (!attribute.graphs) {
    const w = new ProtoWriter();
    for (const f of fields(model.source, ref.span!)) copyField(w, model.source, f);
    return w;
  }
  // A graph attribute (If's branches, Loop's and Scan's body): every field copied but the graphs, written anew.
  const w = new ProtoWriter();
  let next = 0;
  for (const f of fields(model.source, ref.span!)) {
    if (f.number === 6 || f.number === 11) w.message(f.number, graphMessage(model, attribute.graphs[next++]!));
    else copyField(w, model.source, f);
  }
  return w;
}

function nodeMessage(model: EditModel, node: EditNode): ProtoWriter {
  const w = new ProtoWriter();
  for (const i of node.inputs) w.string(NODE.input, i);
  for (const o of node.outputs) w.string(NODE.output, o);
  if (node.name) w.string(NODE.name, node.name);
  w.string(NODE.opType, node.op);
  for (const a of node.attributes) w.message(NODE.attribute, attributeMessage(model, a));
  if (node.domain) w.string(NODE.domain, node.domain);
  // doc_string and metadata: what a rewrite does not touch.
  if (node.ref?.span) {
    for (const f of fields(model.source, node.ref.span)) if (!Object.values(NODE).includes(f.number)) copyField(w, model.source, f);
  }
  return w;
}

function valueMessage(model: EditModel, value: EditValue): ProtoWriter {
  const info = value.info;
  if (value.dataType !== undefined) {
    const shape: Dim[] | null = info?.type.kind === 'tensor' ? info.type.shape : null;
    return valueInfoProto(value.name, value.dataType, shape);
  }
  const w = new ProtoWriter();
  for (const f of fields(model.source, info!.span!)) if (f.number !== 1) copyField(w, model.source, f);
  return w.string(1, value.name);
}

function graphMessage(model: EditModel, graph: EditGraph): ProtoWriter {
  const w = new ProtoWriter();
  for (const n of graph.nodes) w.message(GRAPH.node, nodeMessage(model, n));
  for (const f of fields(model.source, graph.ref.span!)) {
    // The graph's name, doc string, sparse initializers and annotations, as they were.
    if (![GRAPH.node, GRAPH.initializer, GRAPH.input, GRAPH.output, GRAPH.valueInfo].includes(f.number)) copyField(w, model.source, f);
  }
  for (const t of graph.initializers) w.message(GRAPH.initializer, tensorMessage(model, t));
  for (const i of graph.inputs) w.message(GRAPH.input, valueMessage(model, i));
  for (const o of graph.outputs) w.message(GRAPH.output, valueMessage(model, o));
  return w;
}

/** Writes the rewritten model to `output`. */
export function writeModel(model: EditModel, output: string): void {
  const w = new ProtoWriter();
  let wroteGraph = false;
  for (const f of fields(model.source)) {
    if (f.number === MODEL.graph) {
      if (!wroteGraph) w.message(MODEL.graph, graphMessage(model, model.graph));
      wroteGraph = true;
    } else if (f.number !== MODEL.opsetImport) copyField(w, model.source, f);
  }
  for (const o of model.opsets) w.message(MODEL.opsetImport, new ProtoWriter().string(1, o.domain).varint(2, o.version));
  writeMessage(output, w);
}

/** A tensor's values as float32 (float32 tensors only): raw_data, float_data or external data. */
export function readFloats(model: EditModel, tensor: TensorRef): Float32Array {
  const data = tensor.data;
  const aligned = (bytes: Buffer) => {
    const copy = new ArrayBuffer(bytes.length);
    new Uint8Array(copy).set(bytes);
    return new Float32Array(copy);
  };
  if (data.kind === 'raw') return aligned(model.source.read(data.span.offset, data.span.length));
  if (data.kind === 'external') {
    const file = openExternalData(model.dir, data.location);
    try {
      const range = externalRange(tensor, file);
      return aligned(file.read(range.offset, range.length));
    } finally {
      file.close();
    }
  }
  if (data.kind === 'typed') {
    const values: number[] = [];
    for (const f of data.fields) {
      if (f.number !== 4) continue;
      const bytes = f.wireType === WIRE.bytes ? model.source.read(f.span.offset, f.span.length) : Buffer.from(new Uint32Array([Number(f.int)]).buffer);
      for (let i = 0; i + 4 <= bytes.length; i += 4) values.push(bytes.readFloatLE(i));
    }
    return Float32Array.from(values);
  }
  return new Float32Array(0);
}

/** A float32 Constant node's tensor, whatever attribute holds it (`value`, `value_float`, `value_floats`); undefined for others. */
export function constantFloats(model: EditModel, node: EditNode): { dims: number[]; values: Float32Array } | undefined {
  if (node.op !== 'Constant' || (node.domain !== '' && node.domain !== 'ai.onnx')) return undefined;
  for (const a of node.attributes) {
    const v = a.ref?.values[0];
    if (!v || a.value !== undefined) continue;
    if (a.name === 'value' && v.kind === 'tensor' && v.value.dataType === DataType.FLOAT) return { dims: v.value.dims, values: readFloats(model, v.value) };
    if (a.name === 'value_float' && v.kind === 'float') return { dims: [], values: Float32Array.of(v.value) };
    if (a.name === 'value_floats' && v.kind === 'floats') return { dims: [v.value.length], values: Float32Array.from(v.value) };
  }
  return undefined;
}

/** A float32 weight a node can read: an initializer or a Constant node's value. */
export interface FloatWeight {
  name: string;
  dims: number[];
  values: () => Float32Array;
}

/** The float32 weights `graph` can read, its own shadowing those of the graphs around it (`outer`, outermost first). */
export function floatWeights(model: EditModel, graph: EditGraph, outer: EditGraph[]): Map<string, FloatWeight> {
  const found = new Map<string, FloatWeight>();
  for (const g of [...outer, graph]) {
    // A graph input of the same name can override an initializer at run time: not a weight.
    const overridable = new Set(g.inputs.map((i) => i.name));
    for (const t of g.initializers) {
      if (t.dataType === DataType.FLOAT && t.ref && !overridable.has(t.name)) found.set(t.name, { name: t.name, dims: t.dims, values: () => readFloats(model, t.ref!) });
    }
    for (const node of g.nodes) {
      const constant = constantFloats(model, node);
      if (constant) found.set(node.outputs[0]!, { name: node.outputs[0]!, dims: constant.dims, values: () => constant.values });
    }
  }
  return found;
}

/** Replaces a Constant node's value with a new tensor. */
export function setConstant(node: EditNode, tensor: TensorInit): void {
  node.attributes = [{ name: 'value', value: { tensor } }];
}

/** Every graph of the model, the main one first, each with the graphs it is nested in. */
export function* allGraphs(graph: EditGraph, outer: EditGraph[] = []): Generator<{ graph: EditGraph; outer: EditGraph[] }> {
  yield { graph, outer };
  for (const node of graph.nodes) for (const a of node.attributes) for (const g of a.graphs ?? []) yield* allGraphs(g, [...outer, graph]);
}

/** A name no value of the model has yet, from `base`. */
export function uniqueName(model: EditModel, base: string): string {
  const taken = namesOf(model);
  let name = base;
  for (let i = 1; taken.has(name); i++) name = `${base}_${i}`;
  taken.add(name);
  return name;
}

const NAMES = new WeakMap<EditModel, Set<string>>();

function namesOf(model: EditModel): Set<string> {
  let names = NAMES.get(model);
  if (!names) {
    names = new Set();
    for (const { graph } of allGraphs(model.graph)) {
      for (const t of graph.initializers) names.add(t.name);
      for (const v of [...graph.inputs, ...graph.outputs]) names.add(v.name);
      for (const n of graph.nodes) for (const v of [...n.inputs, ...n.outputs]) names.add(v);
    }
    NAMES.set(model, names);
  }
  return names;
}
