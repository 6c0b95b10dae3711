/**
 * int8 quantization as rewrites of the model (edit.ts), for MatMul, Gemm and Conv weights wherever
 * they live (initializers, Constant nodes, subgraphs):
 *
 *   dynamic      int8 weights, per output channel, symmetric; activations quantized at run time:
 *                DynamicQuantizeLinear → MatMulInteger / ConvInteger → Cast → Mul by the scales,
 *                the pattern onnxruntime fuses into its integer kernels. Faster, and 4× smaller.
 *   weight-only  int8 weights with a DequantizeLinear back to float: 4× smaller, not faster.
 *   static       QDQ: weights as above, activations through QuantizeLinear/DequantizeLinear pairs
 *                with ranges measured on calibration data (convert/calibrate.ts), which onnxruntime
 *                fuses into QLinearConv / QLinearMatMul.
 *
 * `reduceRange` keeps weights to 7 bits (|q| ≤ 63): without VNNI, onnxruntime's u8×s8 kernels
 * add pairs of products in 16 bits, which saturate with full-range weights.
 */
import { MaasError } from '../core/errors.js';
import type { TensorInit } from './build.js';
import { DataType } from './dtypes.js';
import { type EditAttribute, type EditGraph, type EditModel, type EditNode, type FloatWeight, allGraphs, floatWeights, opsetOf, uniqueName } from './edit.js';
import { inferTypes } from './types.js';

export type Int8Mode = 'dynamic' | 'weight-only' | 'static';

export interface ValueRange {
  min: number;
  max: number;
}

export interface QuantizeOptions {
  mode: Int8Mode;
  reduceRange: boolean;
  /** static: each activation's range, from calibration. */
  ranges?: Map<string, ValueRange>;
}

export interface QuantizeReport {
  mode: Int8Mode;
  /** the weights' largest |q|: 127, or 63 with reduced range. */
  weightBits: 8 | 7;
  quantized: { name: string; op: string; dims: number[]; axis: number }[];
  /** activations given QuantizeLinear/DequantizeLinear pairs (static). */
  activations: number;
  skipped: { name: string; reason: string }[];
}

type Weight = FloatWeight;

/** Symmetric per-channel int8: scale = max|w| / qmax along each channel of `axis`, zero point 0. */
export function quantizePerChannel(values: Float32Array, dims: number[], axis: number, qmax = 127): { q: Int8Array; scales: Float32Array } {
  const channels = dims[axis]!;
  const inner = dims.slice(axis + 1).reduce((n, d) => n * d, 1);
  const channelOf = (i: number) => Math.floor(i / inner) % channels;
  const scales = new Float32Array(channels);
  for (let i = 0; i < values.length; i++) scales[channelOf(i)] = Math.max(scales[channelOf(i)]!, Math.abs(values[i]!));
  for (let c = 0; c < channels; c++) scales[c] = scales[c]! > 0 ? scales[c]! / qmax : 1;
  const q = new Int8Array(values.length);
  for (let i = 0; i < values.length; i++) q[i] = Math.max(-qmax, Math.min(qmax, Math.round(values[i]! / scales[channelOf(i)]!)));
  return { q, scales };
}

/** [rows, cols] values transposed to [cols, rows]. */
function transpose2d(values: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(values.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = values[r * cols + c]!;
  return out;
}

const QUANTIZABLE = new Set(['MatMul', 'Gemm', 'Conv']);

const bytesOf = (a: ArrayBufferView) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);
const floatTensor = (name: string, dims: number[], values: Float32Array): TensorInit => ({ name, dataType: DataType.FLOAT, dims, raw: bytesOf(values) });

function intAttr(node: EditNode, name: string, fallback: number): number {
  const v = node.attributes.find((a) => a.name === name)?.ref?.values[0];
  return v?.kind === 'int' ? Number(v.value) : fallback;
}

function floatAttr(node: EditNode, name: string, fallback: number): number {
  const v = node.attributes.find((a) => a.name === name)?.ref?.values[0];
  return v?.kind === 'float' ? v.value : fallback;
}

class Quantizer {
  readonly report: QuantizeReport;
  private readonly qmax: number;

  constructor(private readonly model: EditModel, private readonly options: QuantizeOptions) {
    this.qmax = options.reduceRange ? 63 : 127;
    this.report = { mode: options.mode, weightBits: options.reduceRange ? 7 : 8, quantized: [], activations: 0, skipped: [] };
  }

  rewrite(): void {
    const opset = opsetOf(this.model) ?? 0;
    // Raising a model's opset changes what some of its ops mean (Clip, Resize, Slice...): it is not done here.
    const needs = this.options.mode === 'dynamic' ? { opset: 11, what: 'DynamicQuantizeLinear' } : { opset: 13, what: 'per-channel DequantizeLinear' };
    if (opset < needs.opset) {
      throw new MaasError('MAAS_MODEL_INVALID', `int8 ${this.options.mode} needs opset ${needs.opset} or later (${needs.what}); the model has opset ${opset}`, {
        hint: `Export the model with opset ${needs.opset} or later (torch.onnx.export(..., opset_version=17)), or convert it to float16 instead.`,
      });
    }
    const graphs = [...allGraphs(this.model.graph)];
    for (const { graph, outer } of graphs) this.graph(graph, outer);
    // Float weights the rewrite replaced go, inner graphs first: a subgraph may have read an outer one.
    for (const { graph } of graphs.reverse()) removeUnused(graph);
  }

  private graph(graph: EditGraph, outer: EditGraph[]): void {
    const weights = floatWeights(this.model, graph, outer);
    const types = inferTypes(graph);
    const out: EditNode[] = [];
    const added: TensorInit[] = [];
    const quantizedInput = new Map<string, [string, string, string]>();
    const records: { node: EditNode; scales: Float32Array }[] = [];
    const add = (t: TensorInit) => {
      added.push(t);
      return t.name;
    };
    const node = (op: string, inputs: string[], outputs: string[], attributes: Record<string, bigint | number[]> | EditAttribute[] = {}): void => {
      const attrs = Array.isArray(attributes) ? attributes : Object.entries(attributes).map(([name, value]) => ({ name, value }));
      out.push({ op, domain: '', name: uniqueName(this.model, `${outputs[0]}_${op}`), inputs, outputs, attributes: attrs });
    };
    /** An activation quantized at run time, once however many nodes read it. */
    const dynamic = (input: string): [string, string, string] => {
      let q = quantizedInput.get(input);
      if (!q) {
        q = [uniqueName(this.model, `${input}_quantized`), uniqueName(this.model, `${input}_scale`), uniqueName(this.model, `${input}_zero_point`)];
        node('DynamicQuantizeLinear', [input], q);
        quantizedInput.set(input, q);
      }
      return q;
    };
    /** int8 weights (and their per-channel scales) as new initializers. */
    const int8Weight = (w: Weight, values: Float32Array, dims: number[], axis: number, op: string) => {
      const { q, scales } = quantizePerChannel(values, dims, axis, this.qmax);
      this.report.quantized.push({ name: w.name, op, dims, axis });
      return {
        q: add({ name: uniqueName(this.model, `${w.name}_quantized`), dataType: DataType.INT8, dims, raw: bytesOf(q) }),
        scales,
      };
    };

    for (const n of graph.nodes) {
      const isDefault = n.domain === '' || n.domain === 'ai.onnx';
      const w = isDefault ? weights.get(n.inputs[1] ?? '') : undefined;
      const activationFloat = types.get(n.inputs[0] ?? '') === DataType.FLOAT;
      if (!w || !activationFloat || !QUANTIZABLE.has(n.op)) {
        out.push(n);
        continue;
      }
      const skip = this.unsupported(n, w);
      if (skip) {
        this.report.skipped.push({ name: w.name, reason: skip });
        out.push(n);
        continue;
      }
      const builders: Builders = { node, dynamic, int8Weight, add, keep: (kept) => out.push(kept) };
      if (this.options.mode === 'dynamic') this.dynamicNode(n, w, builders);
      else records.push({ node: n, scales: this.dequantizedWeight(n, w, builders) });
    }
    // Activations are measured on the main graph only: a subgraph's nodes keep float activations.
    graph.nodes = this.options.mode === 'static' && outer.length === 0 ? this.qdqActivations(graph, out, records, weights, add) : out;
    graph.initializers.push(...added.map((t) => ({ name: t.name, dataType: t.dataType, dims: t.dims, raw: t.raw as Buffer })));
  }

  /**
   * static: a QuantizeLinear/DequantizeLinear pair after each measured activation around the
   * quantized nodes (its consumers read the DequantizeLinear's output), and Conv/Gemm biases as
   * int32 at the activation's scale times the weight's: the QDQ form onnxruntime fuses.
   */
  private qdqActivations(graph: EditGraph, nodes: EditNode[], records: { node: EditNode; scales: Float32Array }[], weights: Map<string, Weight>, add: (t: TensorInit) => string): EditNode[] {
    const ranges = this.options.ranges ?? new Map<string, ValueRange>();
    const params = new Map<string, { scale: string; zero: string; value: number; dequantized: string }>();
    const paramsOf = (name: string) => {
      const range = ranges.get(name);
      if (!params.has(name) && range) {
        const { scale, zeroPoint } = uint8Params(range);
        params.set(name, {
          scale: add(floatTensor(uniqueName(this.model, `${name}_scale`), [], Float32Array.of(scale))),
          zero: add({ name: uniqueName(this.model, `${name}_zero_point`), dataType: DataType.UINT8, dims: [], raw: Buffer.from([zeroPoint]) }),
          value: scale,
          dequantized: uniqueName(this.model, `${name}_dequantized`),
        });
      }
      return params.get(name);
    };
    const make = (op: string, inputs: string[], output: string, attributes: EditAttribute[] = []): EditNode => ({ op, domain: '', name: uniqueName(this.model, `${output}_${op}`), inputs, outputs: [output], attributes });
    const biases: EditNode[] = [];
    for (const { node, scales } of records) {
      const a = paramsOf(node.inputs[0]!);
      paramsOf(node.outputs[0]!);
      const bias = node.inputs[2] ? weights.get(node.inputs[2]) : undefined;
      if (!a || !bias || node.op === 'MatMul') continue;
      const values = bias.values();
      if (values.length !== scales.length) continue;
      const biasScales = Float32Array.from(scales, (s) => a.value * s);
      const q = Int32Array.from(values, (v, c) => Math.round(v / biasScales[c]!));
      const quantized = add({ name: uniqueName(this.model, `${bias.name}_quantized`), dataType: DataType.INT32, dims: [values.length], raw: bytesOf(q) });
      const scale = add(floatTensor(uniqueName(this.model, `${bias.name}_scale`), [values.length], biasScales));
      const dequantized = uniqueName(this.model, `${bias.name}_dequantized`);
      biases.push(make('DequantizeLinear', [quantized, scale], dequantized, [{ name: 'axis', value: 0n }]));
      node.inputs[2] = dequantized;
    }
    const result: EditNode[] = [...biases];
    const pair = (name: string) => {
      const p = params.get(name)!;
      const quantized = uniqueName(this.model, `${name}_quantized`);
      result.push(make('QuantizeLinear', [name, p.scale, p.zero], quantized), make('DequantizeLinear', [quantized, p.scale, p.zero], p.dequantized));
      this.report.activations++;
    };
    for (const i of graph.inputs) if (params.has(i.name)) pair(i.name);
    for (const n of nodes) {
      n.inputs = n.inputs.map((x) => params.get(x)?.dequantized ?? x);
      result.push(n);
      for (const o of n.outputs) if (params.has(o)) pair(o);
    }
    return result;
  }

  /** Why a node's weight is left float32, or undefined when it can be quantized. */
  private unsupported(n: EditNode, w: Weight): string | undefined {
    if (n.op === 'MatMul' && w.dims.length !== 2) return `a ${w.dims.length}-d MatMul weight (2-d only)`;
    if (n.op === 'Gemm') {
      if (w.dims.length !== 2) return 'a Gemm weight that is not 2-d';
      if (intAttr(n, 'transA', 0) !== 0) return 'Gemm with transA';
      if (floatAttr(n, 'alpha', 1) !== 1 || (n.inputs[2] && floatAttr(n, 'beta', 1) !== 1)) return 'Gemm with alpha or beta other than 1';
    }
    if (n.op === 'Conv' && w.dims.length < 3) return 'a Conv weight of fewer than 3 dims';
    return undefined;
  }

  /** MatMul / Gemm / Conv on int8 weights and run-time quantized activations, then the float scales. */
  private dynamicNode(n: EditNode, w: Weight, b: Builders): void {
    const output = n.outputs[0]!;
    const [aq, ascale, azp] = b.dynamic(n.inputs[0]!);
    const integer = uniqueName(this.model, `${output}_int32`);
    const asFloat = uniqueName(this.model, `${output}_float`);
    const scale = uniqueName(this.model, `${output}_scale`);
    const scaled = n.inputs[2] ? uniqueName(this.model, `${output}_scaled`) : output;
    if (n.op === 'Conv') {
      const { q, scales } = b.int8Weight(w, w.values(), w.dims, 0, n.op);
      // ConvInteger takes one weight zero point: symmetric weights have it 0; the scales stay per channel.
      const zero = b.add({ name: uniqueName(this.model, `${w.name}_zero_point`), dataType: DataType.INT8, dims: [], raw: Buffer.alloc(1) });
      const spatial = w.dims.length - 2;
      const channelShape = [1, w.dims[0]!, ...Array<number>(spatial).fill(1)];
      const wscale = b.add(floatTensor(uniqueName(this.model, `${w.name}_scale`), channelShape, scales));
      // ConvInteger takes Conv's attributes (kernel, pads, strides, dilations, group) as they are.
      b.node('ConvInteger', [aq, q, azp, zero], [integer], n.attributes);
      b.node('Mul', [ascale, wscale], [scale]);
      b.node('Cast', [integer], [asFloat], { to: BigInt(DataType.FLOAT) });
      b.node('Mul', [asFloat, scale], [scaled]);
      if (n.inputs[2]) {
        const bias = this.channelBias(n.inputs[2], channelShape, b);
        b.node('Add', [scaled, bias], [output]);
      }
      return;
    }
    let [k, cols] = [w.dims[0]!, w.dims[1]!];
    let values = w.values();
    if (n.op === 'Gemm' && intAttr(n, 'transB', 0) === 1) {
      values = transpose2d(values, k, cols);
      [k, cols] = [cols, k];
    }
    const { q, scales } = b.int8Weight(w, values, [k, cols], 1, n.op);
    const zero = b.add({ name: uniqueName(this.model, `${w.name}_zero_point`), dataType: DataType.INT8, dims: [cols], raw: Buffer.alloc(cols) });
    const wscale = b.add(floatTensor(uniqueName(this.model, `${w.name}_scale`), [cols], scales));
    b.node('MatMulInteger', [aq, q, azp, zero], [integer]);
    b.node('Mul', [ascale, wscale], [scale]);
    b.node('Cast', [integer], [asFloat], { to: BigInt(DataType.FLOAT) });
    b.node('Mul', [asFloat, scale], [scaled]);
    if (n.inputs[2]) b.node('Add', [scaled, n.inputs[2]], [output]);
  }

  /** A Conv bias reshaped to broadcast over [N, M, spatial...]. */
  private channelBias(name: string, channelShape: number[], b: Builders): string {
    const reshaped = uniqueName(this.model, `${name}_channels`);
    const shape = b.add({ name: uniqueName(this.model, `${name}_shape`), dataType: DataType.INT64, dims: [channelShape.length], raw: bytesOf(BigInt64Array.from(channelShape.map(BigInt))) });
    b.node('Reshape', [name, shape], [reshaped]);
    return reshaped;
  }

  /** weight-only and static: the int8 weight comes back to float through DequantizeLinear; the node is unchanged. Returns the weight's scales. */
  private dequantizedWeight(n: EditNode, w: Weight, b: Builders): Float32Array {
    const transB = n.op === 'Gemm' && intAttr(n, 'transB', 0) === 1;
    const axis = n.op === 'Conv' || transB ? 0 : 1;
    const { q, scales } = b.int8Weight(w, w.values(), w.dims, axis, n.op);
    const channels = w.dims[axis]!;
    const scale = b.add(floatTensor(uniqueName(this.model, `${w.name}_scale`), [channels], scales));
    const zero = b.add({ name: uniqueName(this.model, `${w.name}_zero_point`), dataType: DataType.INT8, dims: [channels], raw: Buffer.alloc(channels) });
    const dequantized = uniqueName(this.model, `${w.name}_dequantized`);
    b.node('DequantizeLinear', [q, scale, zero], [dequantized], { axis: BigInt(axis) });
    n.inputs[1] = dequantized;
    b.keep(n);
    return scales;
  }
}

/** What a node's rewrite adds to its graph: nodes, run-time quantized activations, int8 weights, initializers. */
interface Builders {
  node(op: string, inputs: string[], outputs: string[], attributes?: Record<string, bigint | number[]> | EditAttribute[]): void;
  keep(node: EditNode): void;
  dynamic(input: string): [string, string, string];
  int8Weight(w: Weight, values: Float32Array, dims: number[], axis: number, op: string): { q: string; scales: Float32Array };
  add(t: TensorInit): string;
}

/** Drops initializers and Constant nodes nothing reads any more (the float weights a rewrite replaced). */
export function removeUnused(graph: EditGraph): void {
  const used = new Set(graph.outputs.map((o) => o.name));
  const visit = (g: EditGraph) => {
    for (const n of g.nodes) {
      for (const i of n.inputs) used.add(i);
      for (const a of n.attributes) for (const sub of a.graphs ?? []) {
        visit(sub);
        for (const o of sub.outputs) used.add(o.name);
      }
    }
  };
  visit(graph);
  graph.initializers = graph.initializers.filter((t) => used.has(t.name) || graph.inputs.some((i) => i.name === t.name));
  graph.nodes = graph.nodes.filter((n) => n.op !== 'Constant' || n.outputs.some((o) => used.has(o)));
}

/** The float activations int8 static measures: the inputs and outputs of the main graph's MatMul, Gemm and Conv nodes that read a weight. */
export function quantizableActivations(model: EditModel): string[] {
  const graph = model.graph;
  const weights = floatWeights(model, graph, []);
  const types = inferTypes(graph);
  const names = new Set<string>();
  for (const n of graph.nodes) {
    if (!QUANTIZABLE.has(n.op) || !weights.has(n.inputs[1] ?? '') || types.get(n.inputs[0] ?? '') !== DataType.FLOAT) continue;
    names.add(n.inputs[0]!);
    names.add(n.outputs[0]!);
  }
  return [...names];
}

/** uint8 asymmetric quantization of a range that is made to hold 0 (zero must be exact). */
function uint8Params(range: ValueRange): { scale: number; zeroPoint: number } {
  const min = Math.min(0, range.min);
  const max = Math.max(0, range.max);
  const scale = max > min ? (max - min) / 255 : 1;
  return { scale, zeroPoint: Math.max(0, Math.min(255, Math.round(-min / scale))) };
}

export function quantizeInt8(model: EditModel, options: QuantizeOptions): QuantizeReport {
  const quantizer = new Quantizer(model, options);
  quantizer.rewrite();
  const report = quantizer.report;
  if (report.quantized.length === 0) {
    throw new MaasError('MAAS_MODEL_INVALID', 'nothing to quantize: no float32 MatMul, Gemm or Conv weight found', {
      hint: report.skipped.length ? `Skipped: ${report.skipped.map((s) => `${s.name} (${s.reason})`).join('; ')}.` : 'int8 quantization applies to models with MatMul, Gemm or Conv weights (initializers or Constant nodes).',
    });
  }
  return report;
}
