/**
 * float32 → float16 as a type-consistent rewrite. Weights become float16 wherever they live
 * (initializers, Constant nodes, If/Loop/Scan subgraphs) when every value fits float16. Each op
 * of FLOAT16_OPS whose float inputs are float32 in the source computes in float16; every other
 * op, and the numerically sensitive ones of the block list (reductions, Softmax, Pow, Sqrt...),
 * stays float32. Every boundary between the two gets a Cast, so every node's inputs agree on a
 * type: a value feeding both kinds of consumer is cast once for each kind. Subgraphs are
 * rewritten the same way and hand back their declared types. The element types come from
 * types.ts; a value whose type it cannot tell is left as it is, and so are the ops it feeds.
 */
import { MaasError } from '../core/errors.js';
import { DataType } from './dtypes.js';
import { type EditGraph, type EditModel, type EditNode, constantFloats, opsetOf, readFloats, setConstant, uniqueName } from './edit.js';
import { type ElementTypes, declaredType, inferTypes } from './types.js';

/** Ops that compute in float16 when their float inputs are float32 in the source. */
const FLOAT16_OPS = new Set([
  'MatMul', 'Gemm', 'Conv', 'ConvTranspose', 'Add', 'Sub', 'Mul', 'Div', 'Relu', 'LeakyRelu', 'PRelu', 'Sigmoid', 'HardSigmoid', 'HardSwish', 'Tanh', 'Clip',
  'Neg', 'Abs', 'Max', 'Min', 'Sum', 'Mean', 'MaxPool', 'AveragePool', 'GlobalAveragePool', 'GlobalMaxPool', 'BatchNormalization', 'InstanceNormalization',
  'Transpose', 'Concat', 'Identity', 'Flatten', 'Reshape', 'Squeeze', 'Unsqueeze', 'Slice', 'Gather', 'Expand', 'Tile', 'Pad', 'Split', 'Resize', 'Where',
  'Gelu', 'Elu', 'Selu', 'Softplus', 'DepthToSpace', 'SpaceToDepth',
  // Numerically sensitive: kept float32 by the default block list (convert/config.ts), convertible when unblocked.
  'LayerNormalization', 'ReduceMean', 'ReduceSum', 'ReduceSumSquare', 'ReduceL2', 'ReduceLogSumExp', 'ReduceMax', 'ReduceMin', 'Softmax', 'LogSoftmax',
  'Pow', 'Sqrt', 'Exp', 'Log', 'Erf', 'Reciprocal',
]);

/** Refuses a `--fp16-block` entry that is not an op the rewrite would convert: a typo would block nothing. */
export function checkFp16Block(ops: string[]): void {
  const unknown = ops.filter((op) => !FLOAT16_OPS.has(op));
  if (unknown.length === 0) return;
  const near = (op: string) => [...FLOAT16_OPS].find((known) => known.toLowerCase() === op.toLowerCase() || (known.length > 4 && editDistance(known, op) <= 2));
  const fixes = unknown.map((op) => (near(op) ? `${op} (did you mean ${near(op)}?)` : op));
  throw new MaasError('MAAS_USAGE', `--fp16-block names ${unknown.length === 1 ? 'an op' : 'ops'} the float16 rewrite never converts: ${fixes.join(', ')}`, {
    hint: `Ops it converts: ${[...FLOAT16_OPS].sort().join(', ')}.`,
  });
}

/** Levenshtein distance, for a near miss in an op name. */
function editDistance(a: string, b: string): number {
  let row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const next = [i];
    for (let j = 1; j <= b.length; j++) next[j] = Math.min(row[j]! + 1, next[j - 1]! + 1, row[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    row = next;
  }
  return row[b.length]!;
}

/** Inputs that carry the op's float type T; any other input keeps its own type (shapes, indices, Resize's scales, Pow's exponent). */
const T_INPUTS: Record<string, number[]> = {
  Resize: [0], Reshape: [0], Expand: [0], Tile: [0], Slice: [0], Gather: [0], Pad: [0, 2], Split: [0], Squeeze: [0], Unsqueeze: [0],
  Where: [1, 2], Pow: [0], ReduceMean: [0], ReduceSum: [0], ReduceSumSquare: [0], ReduceL2: [0], ReduceLogSumExp: [0], ReduceMax: [0], ReduceMin: [0],
};

/** Before opset 12, Pow's exponent shares the base's type T: both inputs become float16. */
const POW_SHARED_T_BEFORE = 12;

/** Ops whose inputs may have any type, and whose outputs do not depend on it: no Cast back needed. */
const ANY_TYPE = new Set(['Cast', 'Shape', 'Size']);

function setType(types: ElementTypes, name: string, type: number | undefined): void {
  if (type === undefined) types.delete(name);
  else types.set(name, type);
}

/** float16's largest finite value: a weight beyond it stays float32. */
const FLOAT16_MAX = 65504;

export interface Fp16Options {
  keepIoTypes: boolean;
  /** op types kept float32 (convert/config.ts has the default list). */
  block: string[];
}

export interface Fp16Report {
  float16Nodes: number;
  /** ops left float32, with why: blocked, no float16 rule, or inputs of unknown type. */
  float32Nodes: { op: string; count: number; why: 'blocked' | 'float32 op' | 'unknown input types' | 'weight beyond float16' }[];
  casts: number;
  /** weights stored as float16: initializers and Constant values. */
  initializers: number;
  /** weights kept float32 because a value is beyond float16's range. */
  keptFloat32: string[];
  /** the op types of this model the block list kept float32. */
  blocked: string[];
  subgraphs: number;
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

/** The values as float16 bytes, or undefined when one is beyond float16's range (or not finite). */
function halfBytes(values: Float32Array): Buffer | undefined {
  const half = new Uint16Array(values.length);
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (!Number.isFinite(v) || Math.abs(v) > FLOAT16_MAX) return undefined;
    half[i] = toHalf(v);
  }
  return Buffer.from(half.buffer);
}

const isDefaultDomain = (node: EditNode) => node.domain === '' || node.domain === 'ai.onnx';

class Rewriter {
  readonly report: Fp16Report;
  private readonly float32Ops = new Map<string, { count: number; why: Fp16Report['float32Nodes'][number]['why'] }>();
  /** weights kept float32 for their range. */
  private readonly wide = new Set<string>();

  /** the T inputs of each op, in this model's opset. */
  private readonly tInputs: Record<string, number[]>;

  constructor(private readonly model: EditModel, private readonly options: Fp16Options, private readonly blocked: Set<string>) {
    this.tInputs = (opsetOf(model) ?? POW_SHARED_T_BEFORE) < POW_SHARED_T_BEFORE ? { ...T_INPUTS, Pow: [0, 1] } : T_INPUTS;
    this.report = { float16Nodes: 0, float32Nodes: [], casts: 0, initializers: 0, keptFloat32: [], blocked: [], subgraphs: 0 };
  }

  finish(): Fp16Report {
    this.report.float32Nodes = [...this.float32Ops].map(([op, { count, why }]) => ({ op, count, why }));
    this.report.blocked = this.report.float32Nodes.filter((n) => n.why === 'blocked').map((n) => n.op).sort();
    return this.report;
  }

  /**
   * Rewrites one graph. `outerSource` are the source types of the values it can see from outside,
   * `outerNow` their types after the rewrite; `top` tells the main graph from a subgraph.
   */
  graph(graph: EditGraph, outerSource: ElementTypes, outerNow: ElementTypes, top: boolean): void {
    const source = inferTypes(graph, outerSource);
    const now: ElementTypes = new Map(outerNow);
    const casts = new Map<string, string>();
    const overridable = new Set(graph.inputs.map((i) => i.name));
    const weights = new Set(graph.initializers.map((t) => t.name));

    // Weights first: float32 initializers and Constant values become float16 where they fit.
    for (const t of graph.initializers) {
      if (t.dataType !== DataType.FLOAT || !t.ref || overridable.has(t.name)) {
        now.set(t.name, t.dataType);
        continue;
      }
      const half = halfBytes(readFloats(this.model, t.ref));
      if (half) {
        Object.assign(t, { dataType: DataType.FLOAT16, raw: half });
        this.report.initializers++;
      } else {
        this.report.keptFloat32.push(t.name);
        this.wide.add(t.name);
      }
      now.set(t.name, t.dataType);
    }
    for (const v of graph.inputs) {
      const type = declaredType(v.info);
      if (type === undefined || weights.has(v.name)) continue;
      if (top && !this.options.keepIoTypes && type === DataType.FLOAT) {
        v.dataType = DataType.FLOAT16;
        now.set(v.name, DataType.FLOAT16);
      } else {
        now.set(v.name, type);
      }
    }

    const out: EditNode[] = [];
    const castTo = (name: string, to: number): string => {
      const key = `${name}|${to}`;
      let target = casts.get(key);
      if (!target) {
        target = uniqueName(this.model, `${name}_${to === DataType.FLOAT16 ? 'fp16' : 'fp32'}`);
        out.push({ op: 'Cast', domain: '', name: uniqueName(this.model, `${target}_cast`), inputs: [name], outputs: [target], attributes: [{ name: 'to', value: BigInt(to) }] });
        casts.set(key, target);
        now.set(target, to);
        this.report.casts++;
      }
      return target;
    };

    for (const node of graph.nodes) {
      const constant = constantFloats(this.model, node);
      if (constant) {
        const half = halfBytes(constant.values);
        if (half) {
          setConstant(node, { name: node.outputs[0]!, dataType: DataType.FLOAT16, dims: constant.dims, raw: half });
          this.report.initializers++;
          now.set(node.outputs[0]!, DataType.FLOAT16);
        } else {
          this.report.keptFloat32.push(node.outputs[0]!);
          this.wide.add(node.outputs[0]!);
          now.set(node.outputs[0]!, DataType.FLOAT);
        }
        out.push(node);
        continue;
      }
      const present = node.inputs.map((name, i) => ({ name, i })).filter((x) => x.name !== '');
      const tInputs = this.tInputs[node.op]?.filter((i) => node.inputs[i]) ?? present.filter((x) => source.get(x.name) === DataType.FLOAT).map((x) => x.i);
      const unknown = this.tInputs[node.op] ? tInputs.some((i) => source.get(node.inputs[i]!) !== DataType.FLOAT) : present.some((x) => !source.has(x.name));
      const candidate = FLOAT16_OPS.has(node.op) && isDefaultDomain(node) && tInputs.length > 0;
      // A weight beyond float16's range keeps the ops it feeds float32: a Cast would make it infinite.
      const wide = tInputs.some((i) => this.wide.has(node.inputs[i]!));
      const convert = candidate && !unknown && !wide && !this.blocked.has(node.op);

      if (convert) {
        node.inputs = node.inputs.map((name, i) => {
          if (tInputs.includes(i)) return now.get(name) === DataType.FLOAT16 ? name : castTo(name, DataType.FLOAT16);
          // Inputs outside T keep their source type: Resize's scales stay float32 even when the rewrite made them float16.
          return name !== '' && now.get(name) === DataType.FLOAT16 && source.get(name) === DataType.FLOAT ? castTo(name, DataType.FLOAT) : name;
        });
        for (const o of node.outputs) setType(now, o, source.get(o) === DataType.FLOAT ? DataType.FLOAT16 : source.get(o));
        this.report.float16Nodes++;
      } else {
        // A float32 op sees float32: every input the rewrite made float16 is cast back (but for ops that take any type).
        if (!ANY_TYPE.has(node.op)) node.inputs = node.inputs.map((name) => (name !== '' && now.get(name) === DataType.FLOAT16 && source.get(name) === DataType.FLOAT ? castTo(name, DataType.FLOAT) : name));
        for (const a of node.attributes) {
          for (const body of a.graphs ?? []) {
            this.report.subgraphs++;
            this.graph(body, source, now, false);
          }
        }
        for (const o of node.outputs) setType(now, o, source.get(o));
        if (present.some((x) => source.get(x.name) === DataType.FLOAT) || node.attributes.some((a) => a.graphs)) {
          const why = !candidate ? 'float32 op' : this.blocked.has(node.op) ? 'blocked' : wide ? 'weight beyond float16' : 'unknown input types';
          if (node.op !== 'If' && node.op !== 'Loop' && node.op !== 'Scan') {
            const entry = this.float32Ops.get(node.op) ?? { count: 0, why };
            entry.count++;
            this.float32Ops.set(node.op, entry);
          }
        }
      }
      out.push(node);
    }

    // Outputs: a subgraph hands back its source types (both branches of an If must agree); the main graph too with keepIoTypes.
    for (const o of graph.outputs) {
      const was = declaredType(o.info) ?? source.get(o.name);
      if (now.get(o.name) !== DataType.FLOAT16 || was !== DataType.FLOAT) continue;
      if (top && !this.options.keepIoTypes) {
        o.dataType = DataType.FLOAT16;
      } else if (top) {
        // The model's output names are its interface: the producer's output is renamed, then cast back under the name.
        const internal = uniqueName(this.model, `${o.name}_fp16`);
        renameValue(out, o.name, internal);
        out.push({ op: 'Cast', domain: '', name: uniqueName(this.model, `${o.name}_cast`), inputs: [internal], outputs: [o.name], attributes: [{ name: 'to', value: BigInt(DataType.FLOAT) }] });
        this.report.casts++;
      } else {
        o.name = castTo(o.name, DataType.FLOAT);
      }
    }
    graph.nodes = out;
  }
}

/** Renames a value everywhere in these nodes and the subgraphs they hold. */
function renameValue(nodes: EditNode[], from: string, to: string): void {
  for (const node of nodes) {
    node.inputs = node.inputs.map((n) => (n === from ? to : n));
    node.outputs = node.outputs.map((n) => (n === from ? to : n));
    for (const a of node.attributes) {
      for (const g of a.graphs ?? []) {
        renameValue(g.nodes, from, to);
        for (const o of g.outputs) if (o.name === from) o.name = to;
      }
    }
  }
}

/** Rewrites the model in place; throws when there is nothing to convert. */
export function convertFloat16(model: EditModel, options: Fp16Options): Fp16Report {
  const blocked = new Set(options.block);
  const rewriter = new Rewriter(model, options, blocked);
  rewriter.graph(model.graph, new Map(), new Map(), true);
  const report = rewriter.finish();
  if (report.float16Nodes === 0) {
    throw new MaasError('MAAS_MODEL_INVALID', 'nothing to convert to float16: no float32 op that computes in float16 was found', {
      hint: report.blocked.length ? `Every candidate op is blocked (${report.blocked.join(', ')}); pass --fp16-block with a shorter list, or none.` : 'float16 conversion applies to float32 models.',
    });
  }
  return report;
}
