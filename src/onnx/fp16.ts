/**
 * float32 → float16 over the ONNX protobuf: float32 initializers are stored as float16 and the
 * float math ops below compute in float16 (onnxruntime 1.30's CPU provider has float16 kernels
 * for them). Every other op stays in float32, fed through Cast nodes, so the model still runs.
 * With keepIoTypes the inputs and outputs stay float32, with Casts at the boundaries.
 */
import { dirname } from 'node:path';
import { MaasError } from '../core/errors.js';
import { nodeProto, tensorProto, valueInfoProto, writeMessage } from './build.js';
import { DataType } from './dtypes.js';
import { type TensorRef, parseModel, parseTensor } from './model.js';
import { type ByteSource, type Field, FileSource, ProtoWriter, fields } from './protobuf.js';
import { copyField, readFloats } from './quantize.js';

/** Ops whose float inputs and outputs share one element type, and that run in float16 on the CPU. */
const FLOAT16_OPS = new Set([
  'MatMul', 'Gemm', 'Conv', 'Add', 'Sub', 'Mul', 'Div', 'Relu', 'LeakyRelu', 'Sigmoid', 'Tanh', 'Softmax', 'Erf', 'Sqrt', 'Pow',
  'Neg', 'Abs', 'Exp', 'Log', 'ReduceMean', 'Transpose', 'Concat', 'Identity', 'Flatten', 'Reshape', 'Squeeze', 'Unsqueeze',
  'MaxPool', 'AveragePool', 'GlobalAveragePool', 'Max', 'Min',
]);

const GRAPH = { node: 1, initializer: 5, input: 11, output: 12, valueInfo: 13 };
const NODE = { input: 1, output: 2 };

export interface Fp16Report {
  float16Nodes: number;
  float32Nodes: { op: string; count: number }[];
  casts: number;
  initializers: number;
}

/** IEEE 754 binary16 bits of a number, round to nearest even. */
export function toHalf(value: number): number {
  const f = new Float32Array([value]);
  const x = new Uint32Array(f.buffer)[0]!;
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    let half = mant >>> shift;
    const rest = mant & ((1 << shift) - 1);
    const midpoint = 1 << (shift - 1);
    if (rest > midpoint || (rest === midpoint && half & 1)) half++;
    return sign | half;
  }
  let half = (e << 10) | (mant >>> 13);
  const rest = mant & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && half & 1)) half++;
  return sign | half;
}

export function convertFloat16(input: string, output: string, options: { keepIoTypes: boolean }): Fp16Report {
  const source = new FileSource(input);
  try {
    const model = parseModel(source);
    const graph = model.graph;
    const kind = new Map<string, 'f32' | 'f16'>();
    const initializerNames = new Set(graph.initializers.filter((t) => t.dataType === DataType.FLOAT).map((t) => t.name));
    for (const name of initializerNames) kind.set(name, 'f16');
    const graphInputs = graph.inputs.filter((i) => i.type.kind === 'tensor' && i.type.dtype === 'float32' && !initializerNames.has(i.name));
    for (const i of graphInputs) kind.set(i.name, options.keepIoTypes ? 'f32' : 'f16');
    const graphOutputs = new Set(graph.outputs.map((o) => o.name));

    const report: Fp16Report = { float16Nodes: 0, float32Nodes: [], casts: 0, initializers: initializerNames.size };
    const float32Ops = new Map<string, number>();
    const casts = new Map<string, string>();
    const nodes = new ProtoWriter();
    const cast = (name: string, to: 'f16' | 'f32'): string => {
      const key = `${name}|${to}`;
      let target = casts.get(key);
      if (!target) {
        target = `${name}_to_${to === 'f16' ? 'fp16' : 'fp32'}`;
        nodes.message(GRAPH.node, nodeProto({ op: 'Cast', name: `${target}_cast`, inputs: [name], outputs: [target], attributes: { to: BigInt(to === 'f16' ? DataType.FLOAT16 : DataType.FLOAT) } }));
        casts.set(key, target);
        report.casts++;
      }
      return target;
    };
    // Graph outputs produced in float16 are renamed, then cast back under their own name.
    const renamed = new Map<string, string>();
    const nodeSpans: Field[] = [];
    const rest: Field[] = [];
    for (const f of fields(source, graphSpan(source))) (f.number === GRAPH.node ? nodeSpans : rest).push(f);

    nodeSpans.forEach((field, index) => {
      const node = graph.nodes[index]!;
      const floatInputs = node.inputs.filter((i) => kind.has(i));
      const inFloat16 = FLOAT16_OPS.has(node.opType) && (node.domain === '' || node.domain === 'ai.onnx') && floatInputs.length > 0;
      const inputs = node.inputs.map((i) => {
        const k = kind.get(renamed.get(i) ?? i);
        const current = renamed.get(i) ?? i;
        if (!k) return current;
        if (inFloat16) return k === 'f16' ? current : cast(current, 'f16');
        return k === 'f32' ? current : cast(current, 'f32');
      });
      const outputs = node.outputs.map((o) => {
        if (!inFloat16) return o;
        if (options.keepIoTypes && graphOutputs.has(o)) {
          renamed.set(o, `${o}_fp16`);
          kind.set(`${o}_fp16`, 'f16');
          return `${o}_fp16`;
        }
        kind.set(o, 'f16');
        return o;
      });
      if (inFloat16) report.float16Nodes++;
      else if (floatInputs.length) float32Ops.set(node.opType, (float32Ops.get(node.opType) ?? 0) + 1);
      nodes.message(GRAPH.node, rewriteNode(source, field, inputs, outputs));
    });
    for (const [original, fp16Name] of renamed) {
      nodes.message(GRAPH.node, nodeProto({ op: 'Cast', name: `${original}_cast`, inputs: [fp16Name], outputs: [original], attributes: { to: BigInt(DataType.FLOAT) } }));
      report.casts++;
    }
    for (const f of rest) {
      if (f.number === GRAPH.valueInfo) continue; // inferred types that no longer hold
      if (f.number === GRAPH.initializer) {
        const tensor = parseTensor(source, f.span);
        if (initializerNames.has(tensor.name)) nodes.message(GRAPH.initializer, halfTensor(source, tensor, dirname(input)));
        else copyField(nodes, source, f);
        continue;
      }
      if (!options.keepIoTypes && (f.number === GRAPH.input || f.number === GRAPH.output)) {
        const info = (f.number === GRAPH.input ? graph.inputs : graph.outputs).find((v) => v.name === nameOf(source, f));
        if (info?.type.kind === 'tensor' && info.type.dtype === 'float32' && kind.get(info.name) === 'f16' && !initializerNames.has(info.name)) {
          nodes.message(f.number, valueInfoProto(info.name, DataType.FLOAT16, info.type.shape ?? []));
          continue;
        }
      }
      copyField(nodes, source, f);
    }
    report.float32Nodes = [...float32Ops].map(([op, count]) => ({ op, count }));
    if (report.float16Nodes === 0) {
      throw new MaasError('MAAS_MODEL_INVALID', 'nothing to convert to float16: no float32 math op found', { hint: 'float16 conversion applies to float32 models.' });
    }
    const out = new ProtoWriter();
    for (const f of fields(source)) {
      if (f.number === 7) out.message(7, nodes);
      else copyField(out, source, f);
    }
    writeMessage(output, out);
    return report;
  } finally {
    source.close();
  }
}

function graphSpan(source: ByteSource) {
  for (const f of fields(source)) if (f.number === 7) return f.span;
  throw new MaasError('MAAS_MODEL_INVALID', 'the model has no graph');
}

function nameOf(source: ByteSource, field: Field): string {
  for (const f of fields(source, field.span)) if (f.number === 1) return source.read(f.span.offset, f.span.length).toString('utf8');
  return '';
}

/** The node as it was, with new input and output names. */
function rewriteNode(source: ByteSource, field: Field, inputs: string[], outputs: string[]): ProtoWriter {
  const w = new ProtoWriter();
  for (const i of inputs) w.string(NODE.input, i);
  for (const o of outputs) w.string(NODE.output, o);
  for (const f of fields(source, field.span)) if (f.number !== NODE.input && f.number !== NODE.output) copyField(w, source, f);
  return w;
}

function halfTensor(source: ByteSource, tensor: TensorRef, modelDir: string): ProtoWriter {
  const values = readFloats(source, tensor, modelDir);
  const half = new Uint16Array(values.length);
  for (let i = 0; i < values.length; i++) half[i] = toHalf(values[i]!);
  return tensorProto({ name: tensor.name, dataType: DataType.FLOAT16, dims: tensor.dims, raw: Buffer.from(half.buffer) });
}

