/**
 * The Open Inference Protocol's gRPC messages (proto/open_inference_grpc.proto, as
 * @grpc/proto-loader decodes them: field names as in the .proto, 64-bit integers as decimal
 * strings) to and from tensors checked against the model's signature. Pure.
 */
import type { Signature } from '../../onnx/inspect.js';
import { asBadInput, badInput, checkInputHead, classificationRefused, requestedOutputs, requireAllInputs } from '../../inference/protocol.js';
import { type OrtType, type TensorData, type WireTensor, elementCount, fromBinary, fromJsonData, kserveDatatype, ortTypeOfKserve, toBinary } from '../../inference/tensors.js';

export interface InferTensorContents {
  bool_contents?: boolean[];
  int_contents?: number[];
  int64_contents?: string[];
  uint_contents?: number[];
  uint64_contents?: string[];
  fp32_contents?: number[];
  fp64_contents?: number[];
  bytes_contents?: Buffer[];
}

export interface InferInputTensor {
  name: string;
  datatype: string;
  shape: (string | number)[];
  contents?: InferTensorContents | null;
}

export interface ModelInferRequest {
  model_name: string;
  model_version: string;
  id: string;
  inputs: InferInputTensor[];
  /** `parameters`: the names of the output's parameters (only their names are read). */
  outputs: { name: string; parameters?: string[] }[];
  raw_input_contents: Buffer[];
}

export interface ModelInferResponse {
  model_name: string;
  model_version: string;
  id: string;
  outputs: { name: string; datatype: string; shape: number[] }[];
  raw_output_contents: Buffer[];
}

/** Which InferTensorContents field carries each ONNX element type; FP16 has none (raw only). */
const CONTENTS_FIELD: Partial<Record<OrtType, keyof InferTensorContents>> = {
  bool: 'bool_contents',
  int8: 'int_contents', int16: 'int_contents', int32: 'int_contents',
  uint8: 'uint_contents', uint16: 'uint_contents', uint32: 'uint_contents',
  int64: 'int64_contents', uint64: 'uint64_contents',
  float32: 'fp32_contents', float64: 'fp64_contents',
  string: 'bytes_contents',
};

/** int64 dims arrive as decimal strings; anything that is not a safe non-negative integer is refused by the shape check. */
function dimsOf(shape: (string | number)[]): unknown[] {
  return shape.map((d) => (typeof d === 'number' ? d : /^\d{1,16}$/.test(d) ? Number(d) : Number.NaN));
}

function checkCount(name: string, values: unknown[], dims: number[]): void {
  if (values.length !== elementCount(dims)) throw badInput(`input '${name}': shape [${dims.join(', ')}] needs ${elementCount(dims)} elements, ${values.length} given`);
}

function fromContents(name: string, type: OrtType, dims: number[], contents: InferTensorContents): TensorData {
  const field = CONTENTS_FIELD[type];
  if (!field) throw badInput(`input '${name}': ${kserveDatatype(type)} data goes in raw_input_contents, as the protocol says; it has no typed contents field`);
  const values = contents[field] ?? [];
  const elsewhere = (Object.keys(CONTENTS_FIELD) as OrtType[]).map((t) => CONTENTS_FIELD[t]!).find((f) => f !== field && (contents[f]?.length ?? 0) > 0);
  if (values.length === 0 && elsewhere && elementCount(dims) > 0) throw badInput(`input '${name}' is ${kserveDatatype(type)}, so its contents belong in ${field}, not ${elsewhere}`);
  if (type === 'int64' || type === 'uint64') {
    checkCount(name, values, dims);
    return type === 'int64' ? BigInt64Array.from(values as string[], BigInt) : BigUint64Array.from(values as string[], BigInt);
  }
  // Protobuf floats carry NaN and ±Infinity, which JSON cannot: taken as they are, as raw contents are.
  if (type === 'float32' || type === 'float64') {
    checkCount(name, values, dims);
    return type === 'float32' ? Float32Array.from(values as number[]) : Float64Array.from(values as number[]);
  }
  return fromJsonData(name, type, dims, values); // bytes_contents as Buffers: checked as text there
}

/** A ModelInferRequest as feeds for the model: names, datatypes and shapes checked against its signature. */
export function decodeModelInfer(request: ModelInferRequest, signature: Signature): { feeds: Record<string, WireTensor>; outputs: string[] } {
  if (request.inputs.length === 0) throw badInput('the request has no inputs');
  const raw = request.raw_input_contents;
  if (raw.length > 0 && raw.length !== request.inputs.length) {
    throw badInput(`raw_input_contents has ${raw.length} entries for ${request.inputs.length} inputs; give one per input, in order`);
  }
  const feeds: Record<string, WireTensor> = {};
  asBadInput(() => {
    request.inputs.forEach((input, i) => {
      const { name, dims } = checkInputHead(input.name, input.datatype, dimsOf(input.shape), feeds, signature, `inputs[${i}]`);
      const type = ortTypeOfKserve(input.datatype)!;
      if (raw.length > 0) {
        if (input.contents) throw badInput(`input '${name}' has contents while the request uses raw_input_contents; use one or the other`);
        feeds[name] = { type, dims, data: fromBinary(name, type, dims, raw[i]!) };
      } else {
        if (!input.contents) throw badInput(`input '${name}' has neither contents nor raw_input_contents`);
        feeds[name] = { type, dims, data: fromContents(name, type, dims, input.contents) };
      }
    });
  });
  requireAllInputs(feeds, signature);
  for (const o of request.outputs) if (o.parameters?.includes('classification')) throw classificationRefused(o.name);
  const asked = request.outputs.length ? request.outputs.map((o) => o.name) : undefined;
  return { feeds, outputs: requestedOutputs(asked, signature) };
}

/** The answer, every output as raw contents (the protocol's only form for FP16). */
export function encodeModelInfer(args: { model: string; version: number; id: string; outputs: Record<string, WireTensor>; order: string[] }): ModelInferResponse {
  const tensors = args.order.map((name) => [name, args.outputs[name]!] as const);
  return {
    model_name: args.model,
    model_version: String(args.version),
    id: args.id,
    outputs: tensors.map(([name, t]) => ({ name, datatype: kserveDatatype(t.type), shape: t.dims })),
    raw_output_contents: tensors.map(([, t]) => toBinary(t)),
  };
}
