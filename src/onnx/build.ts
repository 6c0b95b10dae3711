/** Builds ONNX protobufs from TypeScript: test fixtures, converted models. */
import { closeSync, openSync, writeSync } from 'node:fs';
import type { Dim } from './model.js';
import { ProtoWriter, type StreamedBytes } from './protobuf.js';

export interface TensorInit {
  name: string;
  dataType: number;
  dims: number[];
  raw?: Buffer | StreamedBytes;
  /** values in TensorProto.float_data instead of raw_data, as some exporters write them. */
  floatData?: number[];
  external?: { location: string; offset: number; length: number };
}

export function tensorProto(t: TensorInit): ProtoWriter {
  const w = new ProtoWriter().packedVarints(1, t.dims).varint(2, t.dataType).string(8, t.name);
  if (t.raw) w.bytes(9, t.raw);
  if (t.floatData) w.packedFloats(4, t.floatData);
  if (t.external) {
    const entry = (key: string, value: string) => new ProtoWriter().string(1, key).string(2, value);
    w.message(13, entry('location', t.external.location))
      .message(13, entry('offset', String(t.external.offset)))
      .message(13, entry('length', String(t.external.length)))
      .varint(14, 1);
  }
  return w;
}

/** A tensor or a subgraph as an attribute value (Constant's `value`, If's branches). */
export type AttributeInit = number | bigint | string | number[] | { tensor: TensorInit } | { graph: GraphInit };

export interface NodeInit {
  op: string;
  inputs: string[];
  outputs: string[];
  name?: string;
  domain?: string;
  docString?: string;
  /** integers as bigint, floats as number, lists as number[] of ints, tensors and graphs wrapped. */
  attributes?: Record<string, AttributeInit>;
}

const ATTRIBUTE_TYPE = { FLOAT: 1, INT: 2, STRING: 3, TENSOR: 4, GRAPH: 5, INTS: 7 };

export function attributeProto(name: string, value: AttributeInit): ProtoWriter {
  const w = new ProtoWriter().string(1, name);
  if (typeof value === 'bigint') return w.varint(3, value).varint(20, ATTRIBUTE_TYPE.INT);
  if (typeof value === 'number') return w.float(2, value).varint(20, ATTRIBUTE_TYPE.FLOAT);
  if (typeof value === 'string') return w.string(4, value).varint(20, ATTRIBUTE_TYPE.STRING);
  if ('tensor' in value) return w.message(5, tensorProto(value.tensor)).varint(20, ATTRIBUTE_TYPE.TENSOR);
  if ('graph' in value) return w.message(6, graphProto(value.graph)).varint(20, ATTRIBUTE_TYPE.GRAPH);
  return w.packedVarints(8, value).varint(20, ATTRIBUTE_TYPE.INTS);
}

export function nodeProto(n: NodeInit): ProtoWriter {
  const w = new ProtoWriter();
  for (const input of n.inputs) w.string(1, input);
  for (const output of n.outputs) w.string(2, output);
  if (n.name) w.string(3, n.name);
  w.string(4, n.op);
  for (const [key, value] of Object.entries(n.attributes ?? {})) w.message(5, attributeProto(key, value));
  if (n.docString) w.string(6, n.docString);
  if (n.domain) w.string(7, n.domain);
  return w;
}

/** A value's name and tensor type; a `null` shape leaves the shape out (unknown rank), `[]` is a scalar. */
export function valueInfoProto(name: string, dataType: number, shape: Dim[] | null): ProtoWriter {
  const tensorType = new ProtoWriter().varint(1, dataType);
  if (shape !== null) {
    const dims = new ProtoWriter();
    for (const d of shape) {
      const dim = new ProtoWriter();
      if (typeof d === 'number') dim.varint(1, d);
      else if (typeof d === 'string') dim.string(2, d);
      dims.message(1, dim);
    }
    tensorType.message(2, dims);
  }
  return new ProtoWriter().string(1, name).message(2, new ProtoWriter().message(1, tensorType));
}

export interface GraphInit {
  name: string;
  nodes: NodeInit[];
  initializers: TensorInit[];
  inputs: ProtoWriter[];
  outputs: ProtoWriter[];
  docString?: string;
}

export function graphProto(g: GraphInit): ProtoWriter {
  const w = new ProtoWriter();
  for (const n of g.nodes) w.message(1, nodeProto(n));
  w.string(2, g.name);
  for (const t of g.initializers) w.message(5, tensorProto(t));
  if (g.docString) w.string(10, g.docString);
  for (const i of g.inputs) w.message(11, i);
  for (const o of g.outputs) w.message(12, o);
  return w;
}

export interface ModelInit {
  graph: GraphInit;
  irVersion?: number;
  opset?: number;
  producerName?: string;
  producerVersion?: string;
  docString?: string;
  metadata?: Record<string, string>;
}

export function modelProto(m: ModelInit): ProtoWriter {
  const w = new ProtoWriter().varint(1, m.irVersion ?? 8);
  if (m.producerName) w.string(2, m.producerName);
  if (m.producerVersion) w.string(3, m.producerVersion);
  if (m.docString) w.string(6, m.docString);
  w.message(7, graphProto(m.graph));
  w.message(8, new ProtoWriter().string(1, '').varint(2, m.opset ?? 17));
  for (const [key, value] of Object.entries(m.metadata ?? {})) {
    w.message(14, new ProtoWriter().string(1, key).string(2, value));
  }
  return w;
}

/** Writes a message to a file chunk by chunk, so streamed weights never sit in memory. */
export function writeMessage(path: string, message: ProtoWriter): void {
  const fd = openSync(path, 'w');
  try {
    for (const chunk of message.chunks()) {
      let done = 0;
      while (done < chunk.length) done += writeSync(fd, chunk, done);
    }
  } finally {
    closeSync(fd);
  }
}
