/**
 * Weight-only int8 quantization over the ONNX protobuf: each float32 MatMul / Gemm / Conv
 * weight becomes an int8 initializer with per-channel scales and a DequantizeLinear node that
 * produces the original float tensor under its original name, so every consumer is unchanged
 * and onnxruntime runs it. The rest of the model is copied field by field, weights streamed.
 */
import { dirname } from 'node:path';
import { MaasError } from '../core/errors.js';
import { nodeProto, tensorProto, writeMessage } from './build.js';
import { DataType } from './dtypes.js';
import { type GraphRef, type TensorRef, parseModel, parseTensor } from './model.js';
import { externalRange, openExternalData } from './external.js';
import { type ByteSource, type Field, FileSource, ProtoWriter, WIRE, fields } from './protobuf.js';

export interface QuantizeReport {
  quantized: { name: string; op: string; dims: number[]; axis: number }[];
  skipped: { name: string; reason: string }[];
}

const MODEL_GRAPH = 7;
const GRAPH = { node: 1, initializer: 5, input: 11 };
const CHUNK = 4 << 20;

/** The weight input of each quantizable op, and the axis its output channels lie on. */
function candidates(graph: GraphRef, opset: number): { weights: Map<string, { op: string; axis: number }>; skipped: QuantizeReport['skipped'] } {
  const initializers = new Map(graph.initializers.map((t) => [t.name, t]));
  const graphInputs = new Set(graph.inputs.map((i) => i.name));
  const weights = new Map<string, { op: string; axis: number }>();
  const skipped: QuantizeReport['skipped'] = [];
  const conflicting = new Set<string>();
  for (const node of graph.nodes) {
    if (node.domain !== '' && node.domain !== 'ai.onnx') continue;
    const name = node.inputs[1];
    if (!name) continue;
    const tensor = initializers.get(name);
    if (!tensor) continue;
    let axis: number | undefined;
    if (node.opType === 'MatMul' && tensor.dims.length === 2) axis = 1;
    else if (node.opType === 'Gemm' && tensor.dims.length === 2) {
      const transB = node.attributes.find((a) => a.name === 'transB')?.values[0];
      axis = transB?.kind === 'int' && transB.value === 1n ? 0 : 1;
    } else if (node.opType === 'Conv' && tensor.dims.length >= 3) axis = 0;
    if (axis === undefined) continue;
    if (tensor.dataType !== DataType.FLOAT) skipped.push({ name, reason: `not float32` });
    else if (graphInputs.has(name)) skipped.push({ name, reason: 'also a graph input (overridable)' });
    else if (opset < 13) skipped.push({ name, reason: `opset ${opset} < 13 has no per-channel DequantizeLinear` });
    else if (weights.has(name) && weights.get(name)!.axis !== axis) conflicting.add(name);
    else weights.set(name, { op: node.opType, axis });
  }
  for (const name of conflicting) {
    weights.delete(name);
    skipped.push({ name, reason: 'used by ops that need different channel axes' });
  }
  return { weights, skipped };
}

/** Reads a tensor's float32 values: raw_data, float_data or external data. */
export function readFloats(source: ByteSource, tensor: TensorRef, modelDir: string): Float32Array {
  const data = tensor.data;
  if (data.kind === 'raw') {
    const bytes = source.read(data.span.offset, data.span.length);
    const copy = new ArrayBuffer(bytes.length);
    new Uint8Array(copy).set(bytes);
    return new Float32Array(copy);
  }
  if (data.kind === 'external') {
    const file = openExternalData(modelDir, data.location);
    try {
      const range = externalRange(tensor, file);
      const bytes = file.read(range.offset, range.length);
      const copy = new ArrayBuffer(bytes.length);
      new Uint8Array(copy).set(bytes);
      return new Float32Array(copy);
    } finally {
      file.close();
    }
  }
  if (data.kind === 'typed') {
    const values: number[] = [];
    for (const f of data.fields) {
      if (f.number !== 4) continue;
      const bytes = f.wireType === WIRE.bytes ? source.read(f.span.offset, f.span.length) : Buffer.from(new Uint32Array([Number(f.int)]).buffer);
      for (let i = 0; i + 4 <= bytes.length; i += 4) values.push(bytes.readFloatLE(i));
    }
    return Float32Array.from(values);
  }
  return new Float32Array(0);
}

/** Symmetric per-channel int8: scale = max|w| / 127 along each channel, zero point 0. */
export function quantizePerChannel(values: Float32Array, dims: number[], axis: number): { q: Int8Array; scales: Float32Array } {
  const channels = dims[axis]!;
  const inner = dims.slice(axis + 1).reduce((n, d) => n * d, 1);
  const channelOf = (i: number) => Math.floor(i / inner) % channels;
  const scales = new Float32Array(channels);
  for (let i = 0; i < values.length; i++) scales[channelOf(i)] = Math.max(scales[channelOf(i)]!, Math.abs(values[i]!));
  for (let c = 0; c < channels; c++) scales[c] = scales[c]! > 0 ? scales[c]! / 127 : 1;
  const q = new Int8Array(values.length);
  for (let i = 0; i < values.length; i++) q[i] = Math.max(-127, Math.min(127, Math.round(values[i]! / scales[channelOf(i)]!)));
  return { q, scales };
}

/** Copies a field as it is, streaming long byte fields from the source. */
export function copyField(writer: ProtoWriter, source: ByteSource, field: Field): void {
  if (field.wireType === WIRE.varint) writer.varint(field.number, field.int);
  else if (field.wireType === WIRE.bytes) {
    const { offset, length } = field.span;
    writer.bytes(field.number, {
      length,
      *chunks() {
        for (let done = 0; done < length; done += CHUNK) yield Buffer.from(source.read(offset + done, Math.min(CHUNK, length - done)));
      },
    });
  } else {
    const bytes = Buffer.alloc(field.wireType === WIRE.fixed32 ? 4 : 8);
    if (field.wireType === WIRE.fixed32) bytes.writeUInt32LE(Number(field.int));
    else bytes.writeBigUInt64LE(field.int);
    writer.raw(field.number, field.wireType, bytes);
  }
}

/** An initializer whose data lives in an external file is written inline, so the output stands alone. */
function inlineExternal(tensor: TensorRef, modelDir: string): ProtoWriter {
  const data = tensor.data as Extract<TensorRef['data'], { kind: 'external' }>;
  const probe = openExternalData(modelDir, data.location);
  let range: { offset: number; length: number };
  try {
    range = externalRange(tensor, probe);
  } finally {
    probe.close();
  }
  return tensorProto({
    name: tensor.name,
    dataType: tensor.dataType,
    dims: tensor.dims,
    raw: {
      length: range.length,
      *chunks() {
        const file = openExternalData(modelDir, data.location);
        try {
          const { offset, length } = externalRange(tensor, file);
          for (let done = 0; done < length; done += CHUNK) yield Buffer.from(file.read(offset + done, Math.min(CHUNK, length - done)));
        } finally {
          file.close();
        }
      },
    },
  });
}

export function quantizeInt8(input: string, output: string): QuantizeReport {
  const source = new FileSource(input);
  const modelDir = dirname(input);
  try {
    const model = parseModel(source);
    const opset = model.opsetImports.find((o) => o.domain === '' || o.domain === 'ai.onnx')?.version ?? 0;
    const { weights, skipped } = candidates(model.graph, opset);
    const report: QuantizeReport = { quantized: [], skipped };
    const out = new ProtoWriter();
    for (const field of fields(source)) {
      if (field.number !== MODEL_GRAPH) {
        copyField(out, source, field);
        continue;
      }
      const graph = new ProtoWriter();
      const originalNodes = new ProtoWriter();
      for (const g of fields(source, field.span)) {
        if (g.number !== GRAPH.initializer) {
          copyField(g.number === GRAPH.node ? originalNodes : graph, source, g);
          continue;
        }
        const tensor = parseTensor(source, g.span);
        const plan = weights.get(tensor.name);
        if (!plan) {
          if (tensor.data.kind === 'external') graph.message(GRAPH.initializer, inlineExternal(tensor, modelDir));
          else copyField(graph, source, g);
          continue;
        }
        const { q, scales } = quantizePerChannel(readFloats(source, tensor, modelDir), tensor.dims, plan.axis);
        const channels = tensor.dims[plan.axis]!;
        graph.message(GRAPH.initializer, tensorProto({ name: `${tensor.name}_quantized`, dataType: DataType.INT8, dims: tensor.dims, raw: Buffer.from(q.buffer) }));
        graph.message(GRAPH.initializer, tensorProto({ name: `${tensor.name}_scale`, dataType: DataType.FLOAT, dims: [channels], raw: Buffer.from(scales.buffer) }));
        graph.message(GRAPH.initializer, tensorProto({ name: `${tensor.name}_zero_point`, dataType: DataType.INT8, dims: [channels], raw: Buffer.alloc(channels) }));
        report.quantized.push({ name: tensor.name, op: plan.op, dims: tensor.dims, axis: plan.axis });
      }
      // Dequantize nodes first: they depend only on initializers, and every consumer follows.
      const nodes = new ProtoWriter();
      for (const w of report.quantized) {
        nodes.message(GRAPH.node, nodeProto({ op: 'DequantizeLinear', name: `${w.name}_dequantize`, inputs: [`${w.name}_quantized`, `${w.name}_scale`, `${w.name}_zero_point`], outputs: [w.name], attributes: { axis: BigInt(w.axis) } }));
      }
      nodes.parts.push(...originalNodes.parts, ...graph.parts);
      out.message(MODEL_GRAPH, nodes);
    }
    if (report.quantized.length === 0) {
      throw new MaasError('MAAS_MODEL_INVALID', 'nothing to quantize: no float32 MatMul, Gemm or Conv weight found', {
        hint: skipped.length ? `Skipped: ${skipped.map((s) => `${s.name} (${s.reason})`).join('; ')}.` : 'int8 weight-only quantization applies to models with MatMul, Gemm or Conv weights stored as initializers.',
      });
    }
    writeMessage(output, out);
    return report;
  } finally {
    source.close();
  }
}

