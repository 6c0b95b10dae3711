/**
 * TensorFlow Serving's REST predict API (`/v1/models/M:predict`), for users migrating from it:
 * row (`instances`) and columnar (`inputs`) requests, `predictions` / `outputs` responses.
 */
import type { Signature, TensorSpec } from '../../onnx/inspect.js';
import { badInput, checkAgainstSpec, isObject } from '../../inference/protocol.js';
import { MAX_RANK, TensorError, badShape, elementCount, fromJsonData, kserveDatatype, nest, ortTypeOfOnnx, toJsonData, type WireTensor } from '../../inference/tensors.js';

export interface ParsedPredict {
  format: 'row' | 'columnar';
  feeds: Record<string, WireTensor>;
  outputs: string[];
}

/** Dims of a nested JSON list, read along the first elements (the count check catches ragged lists). */
function dimsOf(value: unknown): number[] {
  const dims: number[] = [];
  for (let v = value; Array.isArray(v) && dims.length <= MAX_RANK; v = v[0]) dims.push(v.length);
  return dims;
}

/** Base64's standard alphabet, then the padding (optional, as TF Serving's decoder has it). */
const BASE64 = /^[A-Za-z0-9+/]*(={0,2})$/;
/** The whitespace TF Serving's decoder (absl::Base64Unescape) skips: `base64` wraps its lines. */
const BASE64_SPACE = /[\t\n\v\f\r ]/g;

/**
 * The bytes of one {"b64": "..."} element, or undefined when it is not base64. Node's decoder
 * skips any character outside the alphabet and stops at the first padding, so the string is
 * checked here first: what it would drop silently changes the data.
 */
function decodeBase64(text: string): Buffer | undefined {
  const compact = text.replace(BASE64_SPACE, '');
  const match = BASE64.exec(compact);
  if (!match) return undefined;
  const padding = match[1]!.length;
  const data = compact.length - padding;
  // 4 characters carry 3 bytes; a last group of 1 carries none, and padding fills the group exactly.
  if (data % 4 === 1 || (padding > 0 && (data + padding) % 4 !== 0)) return undefined;
  return Buffer.from(compact, 'base64');
}

/** A binary string as TF Serving writes one: an object of one key, "b64", holding a string. */
function isBase64Object(value: unknown): boolean {
  return isObject(value) && typeof value.b64 === 'string' && Object.keys(value).length === 1;
}

/** TF Serving sends binary strings as {"b64": "..."}: their bytes, checked as text with the other elements. */
function stringLeaf(name: string): (value: unknown) => unknown {
  let index = 0; // elements arrive in row-major order
  return (value) => {
    const at = index++;
    if (!isObject(value) || !('b64' in value)) return value;
    if (typeof value.b64 !== 'string') throw badInput(`input '${name}': element ${at} {"b64": ...} must hold a base64 string, not ${value.b64 === null ? 'null' : Array.isArray(value.b64) ? 'a list' : typeof value.b64}`);
    const bytes = decodeBase64(value.b64);
    if (!bytes) throw badInput(`input '${name}': element ${at} {"b64": ...} is not valid base64 (the standard alphabet A-Z a-z 0-9 + /, with or without = padding)`);
    return bytes;
  };
}

/** The one signature an ONNX model has, under the name TF Serving gives its default. */
export const SIGNATURE_NAME = 'serving_default';

/** Refuses a signature other than the default, in TF Serving's words ('' means the default there too). */
export function checkSignatureName(name: unknown): void {
  if (name === undefined || name === null || name === '' || name === SIGNATURE_NAME) return;
  if (typeof name !== 'string') throw badInput('"signature_name" must be a string');
  throw badInput(`Serving signature name: "${name}" not found in signature def`);
}

function tensorFor(spec: TensorSpec | undefined, name: string, dims: number[], value: unknown, signature: Signature): WireTensor {
  const type = spec ? ortTypeOfOnnx(spec.dtype) : undefined;
  const shapeProblem = badShape(dims);
  if (shapeProblem) throw badInput(`input '${name}' ${shapeProblem}`);
  checkAgainstSpec(spec, name, type ? kserveDatatype(type) : 'UNSUPPORTED', dims, signature);
  try {
    // FP16 as JSON numbers, as TF Serving takes DT_HALF: this API has no binary form to send it in.
    return { type: type!, dims, data: fromJsonData(name, type!, dims, value, { leaf: type === 'string' ? stringLeaf(name) : undefined, float16Numbers: true }) };
  } catch (error) {
    if (error instanceof TensorError) throw badInput(error.message);
    throw error;
  }
}

export function parsePredictRequest(json: unknown, signature: Signature): ParsedPredict {
  if (!isObject(json)) throw badInput('the request body must be a JSON object with "instances" or "inputs"');
  checkSignatureName(json.signature_name);
  if ((json.instances === undefined) === (json.inputs === undefined)) throw badInput('give exactly one of "instances" (row format) or "inputs" (columnar format)');
  const specs = new Map(signature.inputs.map((s) => [s.name, s]));
  const single = signature.inputs.length === 1 ? signature.inputs[0]! : undefined;
  const outputs = signature.outputs.map((o) => o.name);
  const feeds: Record<string, WireTensor> = {};

  if (json.instances !== undefined) {
    const instances = json.instances;
    if (!Array.isArray(instances) || instances.length === 0) throw badInput("no values in 'instances' array");
    // An instance that is one {"b64": ...} string is a value, as TF Serving reads it, not named inputs.
    const named = instances.every((inst) => isObject(inst) && !isBase64Object(inst));
    if (!named && !single) throw badInput(`the model takes ${signature.inputs.length} inputs: each instance must be an object keyed by input name`);
    const names = named ? Object.keys(instances[0] as object) : [single!.name];
    for (const name of names) {
      const values = instances.map((inst, i) => {
        const v = named ? (inst as Record<string, unknown>)[name] : inst;
        if (v === undefined) throw badInput(`instance ${i} has no input '${name}'`);
        return v;
      });
      const dims = [values.length, ...dimsOf(values[0])];
      feeds[name] = tensorFor(specs.get(name), name, dims, values, signature);
    }
  } else {
    const inputs = json.inputs;
    const byName: Record<string, unknown> = isObject(inputs) && !(single && 'b64' in inputs) ? inputs : single ? { [single.name]: inputs } : {};
    if (Object.keys(byName).length === 0) throw badInput(`the model takes ${signature.inputs.length} inputs: "inputs" must be an object keyed by input name`);
    for (const [name, value] of Object.entries(byName)) feeds[name] = tensorFor(specs.get(name), name, dimsOf(value), value, signature);
  }
  const missing = signature.inputs.filter((s) => !feeds[s.name]).map((s) => `'${s.name}'`);
  if (missing.length) throw badInput(`missing input ${missing.join(', ')}`);
  return { format: json.instances !== undefined ? 'row' : 'columnar', feeds, outputs };
}

export function encodePredictResponse(format: 'row' | 'columnar', outputs: Record<string, WireTensor>, order: string[]): object {
  if (format === 'columnar') {
    if (order.length === 1) return { outputs: nest(toJsonData(outputs[order[0]!]!, true), outputs[order[0]!]!.dims) };
    return { outputs: Object.fromEntries(order.map((n) => [n, nest(toJsonData(outputs[n]!, true), outputs[n]!.dims)])) };
  }
  const rows = (name: string) => {
    const t = outputs[name]!;
    const values = toJsonData(t, true);
    const size = elementCount(t.dims.slice(1));
    return Array.from({ length: t.dims[0] ?? 1 }, (_, i) => nest(values.slice(i * size, (i + 1) * size), t.dims.slice(1)));
  };
  if (order.length === 1) return { predictions: rows(order[0]!) };
  const columns = order.map((n) => [n, rows(n)] as const);
  return { predictions: columns[0]![1].map((_, i) => Object.fromEntries(columns.map(([n, r]) => [n, r[i]]))) };
}

/**
 * ONNX dtypes by the names TensorFlow's DataType enum gives them
 * (tensorflow/core/framework/types.proto). ONNX types TensorFlow has no name for are DT_INVALID.
 */
const TF_DTYPES: Record<string, string> = {
  float32: 'DT_FLOAT', float64: 'DT_DOUBLE', float16: 'DT_HALF', bfloat16: 'DT_BFLOAT16',
  int8: 'DT_INT8', int16: 'DT_INT16', int32: 'DT_INT32', int64: 'DT_INT64',
  uint8: 'DT_UINT8', uint16: 'DT_UINT16', uint32: 'DT_UINT32', uint64: 'DT_UINT64',
  bool: 'DT_BOOL', string: 'DT_STRING', complex64: 'DT_COMPLEX64', complex128: 'DT_COMPLEX128',
  float8e5m2: 'DT_FLOAT8_E5M2', float8e4m3fn: 'DT_FLOAT8_E4M3FN', float8e4m3fnuz: 'DT_FLOAT8_E4M3FNUZ', float8e5m2fnuz: 'DT_FLOAT8_E5M2FNUZ',
  int4: 'DT_INT4', uint4: 'DT_UINT4', int2: 'DT_INT2', uint2: 'DT_UINT2',
};

export function tfDtype(onnxDtype: string): string {
  return TF_DTYPES[onnxDtype] ?? 'DT_INVALID';
}

/** `/v1/models/M[/versions/V]/metadata`: the model's one signature as TF Serving's serving_default. */
export function tfModelMetadata(name: string, version: number, signature: Signature): object {
  const tensor = (t: TensorSpec) => ({
    dtype: tfDtype(t.dtype),
    tensor_shape: t.shape === null ? { unknown_rank: true } : { dim: t.shape.map((d) => ({ size: String(typeof d === 'number' ? d : -1), name: typeof d === 'string' ? d : '' })), unknown_rank: false },
    name: t.name,
  });
  return {
    model_spec: { name, signature_name: '', version: String(version) },
    metadata: {
      signature_def: {
        signature_def: {
          [SIGNATURE_NAME]: {
            inputs: Object.fromEntries(signature.inputs.map((i) => [i.name, tensor(i)])),
            outputs: Object.fromEntries(signature.outputs.map((o) => [o.name, tensor(o)])),
            method_name: 'tensorflow/serving/predict',
          },
        },
      },
    },
  };
}
