/**
 * Parses an ONNX ModelProto into the facts maas records: opsets, IO signature, nodes,
 * initializers (as spans into the file, never loaded), metadata.
 * Field numbers are those of onnx/onnx.proto3.
 */
import { dtypeName } from './dtypes.js';
import { type ByteSource, type Field, type Span, WIRE, ProtobufError, fields, readString, readVarints, toInt64 } from './protobuf.js';

export type Dim = number | string | null;

export type ValueType =
  | { kind: 'tensor'; dtype: string; shape: Dim[] | null }
  | { kind: 'sparse_tensor'; dtype: string; shape: Dim[] | null }
  | { kind: 'sequence'; elem: ValueType }
  | { kind: 'map'; key: string; value: ValueType }
  | { kind: 'optional'; elem: ValueType }
  | { kind: 'unknown' };

export interface ValueInfo {
  name: string;
  type: ValueType;
  /** its ValueInfoProto's bytes in the source, for a rewrite that copies it (edit.ts). */
  span?: Span;
}

export type TensorData =
  | { kind: 'raw'; span: Span }
  | { kind: 'typed'; fields: Field[] }
  | { kind: 'external'; location: string; offset: number; length: number | undefined }
  | { kind: 'empty' };

export interface TensorRef {
  name: string;
  dataType: number;
  dims: number[];
  data: TensorData;
  /** its TensorProto's bytes in the source. */
  span?: Span;
}

export type AttributeValue =
  | { kind: 'float'; value: number }
  | { kind: 'int'; value: bigint }
  | { kind: 'bytes'; value: Buffer }
  | { kind: 'tensor'; value: TensorRef }
  | { kind: 'graph'; value: GraphRef }
  | { kind: 'floats'; value: number[] }
  | { kind: 'ints'; value: bigint[] }
  | { kind: 'strings'; value: Buffer[] }
  | { kind: 'tensors'; value: TensorRef[] }
  | { kind: 'graphs'; value: GraphRef[] }
  /** sparse tensors and type protos: kept as their bytes. */
  | { kind: 'opaque'; value: Buffer[] };

export interface AttributeRef {
  name: string;
  refAttrName: string | undefined;
  values: AttributeValue[];
  /** its AttributeProto's bytes in the source. */
  span?: Span;
}

export interface NodeRef {
  opType: string;
  domain: string;
  name: string;
  inputs: string[];
  outputs: string[];
  attributes: AttributeRef[];
  /** its NodeProto's bytes in the source. */
  span?: Span;
}

export interface GraphRef {
  name: string;
  nodes: NodeRef[];
  initializers: TensorRef[];
  /** sparse initializers, kept as their raw bytes' spans. */
  sparseInitializers: Span[];
  inputs: ValueInfo[];
  outputs: ValueInfo[];
  /** its GraphProto's bytes in the source. */
  span?: Span;
}

export interface OpsetImport {
  domain: string;
  version: number;
}

export interface ModelRef {
  irVersion: number;
  producerName: string;
  producerVersion: string;
  domain: string;
  modelVersion: number;
  docString: string;
  opsetImports: OpsetImport[];
  metadata: Record<string, string>;
  graph: GraphRef;
  /** model-local functions, as spans of their FunctionProto bytes. */
  functions: Span[];
}

const MODEL = { irVersion: 1, producerName: 2, producerVersion: 3, domain: 4, modelVersion: 5, docString: 6, graph: 7, opsetImport: 8, metadataProps: 14, functions: 25 };
const GRAPH = { node: 1, name: 2, initializer: 5, input: 11, output: 12, sparseInitializer: 15 };
const NODE = { input: 1, output: 2, name: 3, opType: 4, attribute: 5, domain: 7 };
const ATTR = { name: 1, f: 2, i: 3, s: 4, t: 5, g: 6, floats: 7, ints: 8, strings: 9, tensors: 10, graphs: 11, tp: 14, typeProtos: 15, refAttrName: 21, sparseTensor: 22, sparseTensors: 23 };
const TENSOR = { dims: 1, dataType: 2, floatData: 4, int32Data: 5, stringData: 6, int64Data: 7, name: 8, rawData: 9, doubleData: 10, uint64Data: 11, externalData: 13, dataLocation: 14 };
const TYPED_DATA_FIELDS = new Set([TENSOR.floatData, TENSOR.int32Data, TENSOR.stringData, TENSOR.int64Data, TENSOR.doubleData, TENSOR.uint64Data]);
const DATA_LOCATION_EXTERNAL = 1n;

/**
 * What one parse may build, so that a hostile file cannot make it recurse off the stack or
 * allocate far more than its own size: nesting of graphs and types, the rank of a tensor, and
 * the number of items (nodes, attributes, list elements, dims...) over the whole model.
 */
export const PARSE_LIMITS = { nesting: 64, rank: 1024, items: 8_000_000 } as const;

function expectWire(field: Field, wireType: number, what: string): void {
  if (field.wireType !== wireType) {
    throw new ProtobufError(`${what} (field ${field.number}) has wire type ${field.wireType}, expected ${wireType}`);
  }
}

function str(source: ByteSource, field: Field, what: string): string {
  expectWire(field, WIRE.bytes, what);
  return readString(source, field);
}

function num(field: Field, what: string): number {
  expectWire(field, WIRE.varint, what);
  return Number(toInt64(field.int));
}

function floatOf(field: Field): number {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(Number(field.int & 0xffffffffn));
  return b.readFloatLE(0);
}

/** An external data offset or length: a decimal count of bytes that a file can hold. */
function byteCount(value: string, key: string, tensor: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(n)) {
    throw new ProtobufError(`tensor '${tensor}' has external data ${key} '${value}', not a byte count`);
  }
  return n;
}

class Parser {
  private items = 0;
  private depth = 0;

  constructor(private readonly source: ByteSource) {}

  /** Counts what the parse builds; past the budget the file is refused, not parsed. */
  private spend(count: number): void {
    this.items += count;
    if (this.items > PARSE_LIMITS.items) {
      throw new ProtobufError(`the model holds more than ${PARSE_LIMITS.items} nodes, attributes and list elements`);
    }
  }

  private nested<T>(what: string, parse: () => T): T {
    if (++this.depth > PARSE_LIMITS.nesting) throw new ProtobufError(`${what} nested more than ${PARSE_LIMITS.nesting} deep`);
    try {
      return parse();
    } finally {
      this.depth--;
    }
  }

  private fields(span: Span): Generator<Field> {
    return fields(this.source, span);
  }

  private varints(field: Field, max?: number, what?: string): bigint[] {
    const values = readVarints(this.source, field, max, what);
    this.spend(values.length);
    return values;
  }

  private floats(field: Field): number[] {
    if (field.wireType === WIRE.fixed32) return [floatOf(field)];
    expectWire(field, WIRE.bytes, 'packed floats');
    this.spend(field.span.length / 4);
    const bytes = this.source.read(field.span.offset, field.span.length);
    const out: number[] = [];
    for (let i = 0; i + 4 <= bytes.length; i += 4) out.push(bytes.readFloatLE(i));
    return out;
  }

  private stringEntry(span: Span): [string, string] {
    let key = '';
    let value = '';
    for (const f of this.fields(span)) {
      if (f.number === 1) key = str(this.source, f, 'entry key');
      else if (f.number === 2) value = str(this.source, f, 'entry value');
    }
    return [key, value];
  }

  tensor(span: Span): TensorRef {
    this.spend(1);
    const tensor: TensorRef = { name: '', dataType: 0, dims: [], data: { kind: 'empty' }, span };
    const typed: Field[] = [];
    const external: Record<string, string> = {};
    let location = 0n;
    for (const f of this.fields(span)) {
      if (f.number === TENSOR.dims) {
        const dims = this.varints(f, PARSE_LIMITS.rank, 'tensor dims');
        if (tensor.dims.length + dims.length > PARSE_LIMITS.rank) throw new ProtobufError(`a tensor has more than ${PARSE_LIMITS.rank} dims`);
        tensor.dims.push(...dims.map((v) => Number(toInt64(v))));
      } else if (f.number === TENSOR.dataType) tensor.dataType = num(f, 'tensor data_type');
      else if (f.number === TENSOR.name) tensor.name = str(this.source, f, 'tensor name');
      else if (f.number === TENSOR.rawData) {
        expectWire(f, WIRE.bytes, 'tensor raw_data');
        tensor.data = { kind: 'raw', span: f.span };
      } else if (TYPED_DATA_FIELDS.has(f.number)) {
        this.spend(1);
        typed.push(f);
      } else if (f.number === TENSOR.externalData) {
        expectWire(f, WIRE.bytes, 'external_data');
        this.spend(1);
        const [key, value] = this.stringEntry(f.span);
        external[key] = value;
      } else if (f.number === TENSOR.dataLocation) location = f.int;
    }
    const count = tensor.dims.reduce((n, d) => n * d, 1);
    if (tensor.dims.some((d) => d < 0) || !Number.isSafeInteger(count)) {
      throw new ProtobufError(`tensor '${tensor.name}' has dims [${tensor.dims.slice(0, 8).join(', ')}${tensor.dims.length > 8 ? ', …' : ''}], not a tensor that can exist`);
    }
    if (location === DATA_LOCATION_EXTERNAL) {
      const location = external.location;
      if (!location) throw new ProtobufError(`initializer '${tensor.name}' is stored externally but names no location`);
      tensor.data = {
        kind: 'external',
        location,
        offset: external.offset === undefined ? 0 : byteCount(external.offset, 'offset', tensor.name),
        length: external.length === undefined ? undefined : byteCount(external.length, 'length', tensor.name),
      };
    } else if (tensor.data.kind === 'empty' && typed.length > 0) {
      tensor.data = { kind: 'typed', fields: typed };
    }
    return tensor;
  }

  private dims(span: Span): Dim[] {
    const dims: Dim[] = [];
    for (const f of this.fields(span)) {
      if (f.number !== 1) continue;
      if (dims.length >= PARSE_LIMITS.rank) throw new ProtobufError(`a shape has more than ${PARSE_LIMITS.rank} dims`);
      this.spend(1);
      let dim: Dim = null;
      for (const d of this.fields(f.span)) {
        if (d.number === 1) dim = num(d, 'dim_value');
        else if (d.number === 2) dim = str(this.source, d, 'dim_param') || null;
      }
      dims.push(dim);
    }
    return dims;
  }

  private tensorType(span: Span): { dtype: string; shape: Dim[] | null } {
    let dtype = dtypeName(0);
    let shape: Dim[] | null = null;
    for (const f of this.fields(span)) {
      if (f.number === 1) dtype = dtypeName(num(f, 'elem_type'));
      else if (f.number === 2) shape = this.dims(f.span);
    }
    return { dtype, shape };
  }

  private typeAt(span: Span, fieldNumber: number): ValueType {
    for (const f of this.fields(span)) if (f.number === fieldNumber) return this.type(f.span);
    return { kind: 'unknown' };
  }

  private type(span: Span): ValueType {
    return this.nested('types', () => {
      for (const f of this.fields(span)) {
        switch (f.number) {
          case 1: return { kind: 'tensor', ...this.tensorType(f.span) };
          case 8: return { kind: 'sparse_tensor', ...this.tensorType(f.span) };
          case 4: return { kind: 'sequence', elem: this.typeAt(f.span, 1) };
          case 9: return { kind: 'optional', elem: this.typeAt(f.span, 1) };
          case 5: {
            let key = dtypeName(0);
            for (const m of this.fields(f.span)) if (m.number === 1) key = dtypeName(num(m, 'map key_type'));
            return { kind: 'map', key, value: this.typeAt(f.span, 2) };
          }
        }
      }
      return { kind: 'unknown' } as ValueType;
    });
  }

  private valueInfo(span: Span): ValueInfo {
    this.spend(1);
    const info: ValueInfo = { name: '', type: { kind: 'unknown' }, span };
    for (const f of this.fields(span)) {
      if (f.number === 1) info.name = str(this.source, f, 'value name');
      else if (f.number === 2) info.type = this.type(f.span);
    }
    return info;
  }

  private attribute(span: Span): AttributeRef {
    this.spend(1);
    const attr: AttributeRef = { name: '', refAttrName: undefined, values: [], span };
    const bytesOf = (f: Field): Buffer => {
      expectWire(f, WIRE.bytes, 'attribute bytes');
      this.spend(1);
      return Buffer.from(this.source.read(f.span.offset, f.span.length));
    };
    const message = (f: Field, what: string): Span => {
      expectWire(f, WIRE.bytes, what);
      return f.span;
    };
    for (const f of this.fields(span)) {
      switch (f.number) {
        case ATTR.name: attr.name = str(this.source, f, 'attribute name'); break;
        case ATTR.refAttrName: attr.refAttrName = str(this.source, f, 'ref_attr_name'); break;
        case ATTR.f: attr.values.push({ kind: 'float', value: floatOf(f) }); break;
        case ATTR.i: attr.values.push({ kind: 'int', value: toInt64(f.int) }); break;
        case ATTR.s: attr.values.push({ kind: 'bytes', value: bytesOf(f) }); break;
        case ATTR.t: attr.values.push({ kind: 'tensor', value: this.tensor(message(f, 'attribute tensor')) }); break;
        case ATTR.g: attr.values.push({ kind: 'graph', value: this.graph(message(f, 'attribute graph')) }); break;
        case ATTR.floats: attr.values.push({ kind: 'floats', value: this.floats(f) }); break;
        case ATTR.ints: attr.values.push({ kind: 'ints', value: this.varints(f).map(toInt64) }); break;
        case ATTR.strings: attr.values.push({ kind: 'strings', value: [bytesOf(f)] }); break;
        case ATTR.tensors: attr.values.push({ kind: 'tensors', value: [this.tensor(message(f, 'attribute tensors'))] }); break;
        case ATTR.graphs: attr.values.push({ kind: 'graphs', value: [this.graph(message(f, 'attribute graphs'))] }); break;
        case ATTR.tp: case ATTR.typeProtos: case ATTR.sparseTensor: case ATTR.sparseTensors:
          attr.values.push({ kind: 'opaque', value: [bytesOf(f)] });
          break;
      }
    }
    return attr;
  }

  private node(span: Span): NodeRef {
    this.spend(1);
    const node: NodeRef = { opType: '', domain: '', name: '', inputs: [], outputs: [], attributes: [], span };
    for (const f of this.fields(span)) {
      switch (f.number) {
        case NODE.input: this.spend(1); node.inputs.push(str(this.source, f, 'node input')); break;
        case NODE.output: this.spend(1); node.outputs.push(str(this.source, f, 'node output')); break;
        case NODE.name: node.name = str(this.source, f, 'node name'); break;
        case NODE.opType: node.opType = str(this.source, f, 'op_type'); break;
        case NODE.domain: node.domain = str(this.source, f, 'node domain'); break;
        case NODE.attribute: node.attributes.push(this.attribute(f.span)); break;
      }
    }
    if (!node.opType) throw new ProtobufError(`a node${node.name ? ` ('${node.name}')` : ''} has no op_type`);
    return node;
  }

  private graph(span: Span): GraphRef {
    return this.nested('graphs', () => {
      const graph: GraphRef = { name: '', nodes: [], initializers: [], sparseInitializers: [], inputs: [], outputs: [], span };
      for (const f of this.fields(span)) {
        const message = (what: string): Span => {
          expectWire(f, WIRE.bytes, what);
          return f.span;
        };
        switch (f.number) {
          case GRAPH.node: graph.nodes.push(this.node(message('node'))); break;
          case GRAPH.name: graph.name = str(this.source, f, 'graph name'); break;
          case GRAPH.initializer: graph.initializers.push(this.tensor(message('initializer'))); break;
          case GRAPH.sparseInitializer: this.spend(1); graph.sparseInitializers.push(message('sparse_initializer')); break;
          case GRAPH.input: graph.inputs.push(this.valueInfo(message('graph input'))); break;
          case GRAPH.output: graph.outputs.push(this.valueInfo(message('graph output'))); break;
        }
      }
      return graph;
    });
  }

  model(): ModelRef {
    const model: ModelRef = {
      irVersion: 0, producerName: '', producerVersion: '', domain: '', modelVersion: 0, docString: '',
      opsetImports: [], metadata: {}, graph: { name: '', nodes: [], initializers: [], sparseInitializers: [], inputs: [], outputs: [] },
      functions: [],
    };
    const source = this.source;
    let sawGraph = false;
    for (const f of this.fields({ offset: 0, length: source.size })) {
      switch (f.number) {
        case MODEL.irVersion: model.irVersion = num(f, 'ir_version'); break;
        case MODEL.producerName: model.producerName = str(source, f, 'producer_name'); break;
        case MODEL.producerVersion: model.producerVersion = str(source, f, 'producer_version'); break;
        case MODEL.domain: model.domain = str(source, f, 'domain'); break;
        case MODEL.modelVersion: model.modelVersion = num(f, 'model_version'); break;
        case MODEL.docString: model.docString = str(source, f, 'doc_string'); break;
        case MODEL.graph:
          expectWire(f, WIRE.bytes, 'graph');
          model.graph = this.graph(f.span);
          sawGraph = true;
          break;
        case MODEL.opsetImport: {
          expectWire(f, WIRE.bytes, 'opset_import');
          this.spend(1);
          const opset: OpsetImport = { domain: '', version: 0 };
          for (const o of this.fields(f.span)) {
            if (o.number === 1) opset.domain = str(source, o, 'opset domain');
            else if (o.number === 2) opset.version = num(o, 'opset version');
          }
          model.opsetImports.push(opset);
          break;
        }
        case MODEL.metadataProps: {
          expectWire(f, WIRE.bytes, 'metadata_props');
          this.spend(1);
          const [key, value] = this.stringEntry(f.span);
          model.metadata[key] = value;
          break;
        }
        case MODEL.functions:
          expectWire(f, WIRE.bytes, 'functions');
          this.spend(1);
          model.functions.push(f.span);
          break;
      }
    }
    if (!sawGraph) throw new ProtobufError('no graph was found in the protobuf');
    if (model.irVersion <= 0) throw new ProtobufError('the model declares no ir_version');
    if (model.opsetImports.length === 0) throw new ProtobufError('the model imports no opset');
    return model;
  }
}

export function parseTensor(source: ByteSource, span: Span): TensorRef {
  return new Parser(source).tensor(span);
}

export function parseModel(source: ByteSource): ModelRef {
  return new Parser(source).model();
}
