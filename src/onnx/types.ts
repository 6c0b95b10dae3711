/**
 * The element type of every value of a graph, as far as it can be told without running it: from
 * the graph's inputs and initializers, Constant values, and each op's rule for its outputs (most
 * ops keep their first input's type; Shape gives int64, Equal bool, Cast its `to`...). Subgraphs
 * see their outer graphs' values. A value whose type no rule tells (an op of another domain, a
 * sequence) is absent from the map: conversions treat it as "leave as it is".
 */
import { DataType } from './dtypes.js';
import type { EditGraph, EditNode } from './edit.js';
import type { ValueInfo } from './model.js';

export type ElementTypes = Map<string, number>;

const TENSOR_TYPE_OF: Record<string, number> = {
  float32: DataType.FLOAT, float16: DataType.FLOAT16, float64: DataType.DOUBLE, bfloat16: 16,
  int8: DataType.INT8, uint8: DataType.UINT8, int16: 5, uint16: 4, int32: DataType.INT32, uint32: 12, int64: DataType.INT64, uint64: 13,
  bool: DataType.BOOL, string: DataType.STRING,
};

/** A declared input or output's element type, for tensors. */
export function declaredType(info: ValueInfo | undefined): number | undefined {
  return info?.type.kind === 'tensor' ? TENSOR_TYPE_OF[info.type.dtype] : undefined;
}

const INT64_OUT = new Set(['Shape', 'Size', 'NonZero', 'ArgMax', 'ArgMin', 'NonMaxSuppression']);
const BOOL_OUT = new Set(['Equal', 'Less', 'Greater', 'LessOrEqual', 'GreaterOrEqual', 'Not', 'And', 'Or', 'Xor', 'IsNaN', 'IsInf']);
/** Ops of the default domain whose outputs all have their first input's type. */
const SAME_AS_FIRST = new Set([
  'Abs', 'Acos', 'Acosh', 'Add', 'Asin', 'Asinh', 'Atan', 'Atanh', 'AveragePool', 'BatchNormalization', 'Ceil', 'Celu', 'Clip', 'Concat', 'Conv', 'ConvTranspose',
  'Cos', 'Cosh', 'CumSum', 'DepthToSpace', 'Div', 'Dropout', 'Einsum', 'Elu', 'Erf', 'Exp', 'Expand', 'Flatten', 'Floor', 'GRU', 'Gather', 'GatherElements',
  'GatherND', 'Gelu', 'Gemm', 'GlobalAveragePool', 'GlobalMaxPool', 'GroupNormalization', 'HardSigmoid', 'HardSwish', 'Hardmax', 'Identity', 'InstanceNormalization',
  'LRN', 'LSTM', 'LeakyRelu', 'Log', 'LogSoftmax', 'LpNormalization', 'MatMul', 'Max', 'Mean', 'Min', 'Mish', 'Mod', 'Mul', 'Neg', 'PRelu', 'Pad', 'Pow',
  'RNN', 'Reciprocal', 'ReduceL1', 'ReduceL2', 'ReduceLogSum', 'ReduceLogSumExp', 'ReduceMax', 'ReduceMean', 'ReduceMin', 'ReduceProd', 'ReduceSum',
  'ReduceSumSquare', 'Relu', 'Reshape', 'Resize', 'ReverseSequence', 'Round', 'ScatterElements', 'ScatterND', 'Selu', 'Shrink', 'Sigmoid', 'Sign', 'Sin',
  'Sinh', 'Slice', 'Softmax', 'Softplus', 'Softsign', 'SpaceToDepth', 'Split', 'Sqrt', 'Squeeze', 'Sub', 'Sum', 'Tan', 'Tanh', 'ThresholdedRelu', 'Tile',
  'Transpose', 'Trilu', 'Unsqueeze', 'Upsample', 'Range', 'MeanVarianceNormalization', 'Det', 'Compress',
]);

function intAttribute(node: EditNode, name: string): number | undefined {
  const v = node.attributes.find((a) => a.name === name)?.ref?.values[0];
  return v?.kind === 'int' ? Number(v.value) : undefined;
}

function tensorAttributeType(node: EditNode, name: string): number | undefined {
  const v = node.attributes.find((a) => a.name === name)?.ref?.values[0];
  return v?.kind === 'tensor' ? v.value.dataType : undefined;
}

/** The element types of a node's outputs, from its inputs' (`typeOf`); undefined where unknown. */
export function outputTypes(node: EditNode, typeOf: (name: string) => number | undefined, branchTypes: (node: EditNode) => (number | undefined)[]): (number | undefined)[] {
  const n = node.outputs.length;
  const all = (t: number | undefined) => Array.from({ length: n }, () => t);
  if (node.domain !== '' && node.domain !== 'ai.onnx') return all(undefined);
  const first = typeOf(node.inputs[0] ?? '');
  const op = node.op;
  if (INT64_OUT.has(op)) return all(DataType.INT64);
  if (BOOL_OUT.has(op)) return all(DataType.BOOL);
  switch (op) {
    case 'Cast': return all(intAttribute(node, 'to'));
    case 'CastLike': return all(typeOf(node.inputs[1] ?? ''));
    case 'Constant': {
      const a = node.attributes[0];
      const v = a?.ref?.values[0];
      if (a?.name === 'value') return all(tensorAttributeType(node, 'value'));
      if (v?.kind === 'float' || v?.kind === 'floats') return all(DataType.FLOAT);
      if (v?.kind === 'int' || v?.kind === 'ints') return all(DataType.INT64);
      if (v?.kind === 'bytes' || v?.kind === 'strings') return all(DataType.STRING);
      return all(undefined);
    }
    case 'ConstantOfShape': return all(tensorAttributeType(node, 'value') ?? DataType.FLOAT);
    case 'Where': return all(typeOf(node.inputs[1] ?? ''));
    case 'TopK': return [first, DataType.INT64];
    case 'MaxPool': return [first, DataType.INT64];
    case 'Unique': return [first, DataType.INT64, DataType.INT64, DataType.INT64];
    case 'DequantizeLinear': return all(typeOf(node.inputs[1] ?? '') ?? DataType.FLOAT);
    case 'QuantizeLinear': return all(typeOf(node.inputs[2] ?? '') ?? DataType.UINT8);
    case 'DynamicQuantizeLinear': return [DataType.UINT8, DataType.FLOAT, DataType.UINT8];
    case 'MatMulInteger': case 'ConvInteger': return all(DataType.INT32);
    case 'OneHot': return all(typeOf(node.inputs[2] ?? ''));
    case 'LayerNormalization': return [first, DataType.FLOAT, DataType.FLOAT];
    case 'RandomNormal': case 'RandomUniform': return all(intAttribute(node, 'dtype') ?? DataType.FLOAT);
    case 'RandomNormalLike': case 'RandomUniformLike': case 'EyeLike': return all(intAttribute(node, 'dtype') ?? first);
    case 'If': case 'Loop': case 'Scan': return branchTypes(node);
    default: return all(SAME_AS_FIRST.has(op) ? first : undefined);
  }
}

/**
 * Element types of every value of `graph`, outer scopes' included: a subgraph's values are looked
 * up in its own map first, then in the maps of the graphs around it.
 */
export function inferTypes(graph: EditGraph, outer: ElementTypes = new Map()): ElementTypes {
  const types: ElementTypes = new Map(outer);
  for (const t of graph.initializers) types.set(t.name, t.dataType);
  for (const v of graph.inputs) {
    const t = v.dataType ?? declaredType(v.info);
    if (t !== undefined && !types.has(v.name)) types.set(v.name, t);
  }
  const typeOf = (name: string) => types.get(name);
  // A subgraph's declared outputs give If's, Loop's and Scan's output types.
  const branchTypes = (node: EditNode): (number | undefined)[] => {
    const body = node.attributes.find((a) => a.graphs?.length)?.graphs?.[0];
    if (!body) return node.outputs.map(() => undefined);
    const declared = body.outputs.map((o) => o.dataType ?? declaredType(o.info));
    // Loop's body returns the condition first; Scan's outputs follow its state like Loop's.
    return node.op === 'Loop' ? declared.slice(1) : declared;
  };
  for (const node of graph.nodes) {
    outputTypes(node, typeOf, branchTypes).forEach((t, i) => {
      const name = node.outputs[i];
      if (name && t !== undefined) types.set(name, t);
    });
  }
  return types;
}
