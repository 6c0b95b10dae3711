/**
 * TensorFlow Serving's REST predict API (`/v1/models/M:predict`), for users migrating from it:
 * row (`instances`) and columnar (`inputs`) requests, `predictions` / `outputs` responses.
 */
import type { Signature, TensorSpec } from '../onnx/inspect.js';
import { badInput, checkAgainstSpec, isObject } from './kserve.js';
import { TensorError, elementCount, fromJsonData, kserveDatatype, nest, ortTypeOfOnnx, toJsonData, type WireTensor } from './tensors.js';

export interface ParsedPredict {
  format: 'row' | 'columnar';
  feeds: Record<string, WireTensor>;
  outputs: string[];
}

/** Dims of a nested JSON list, read along the first elements (the count check catches ragged lists). */
function dimsOf(value: unknown): number[] {
  const dims: number[] = [];
  for (let v = value; Array.isArray(v); v = v[0]) dims.push(v.length);
  return dims;
}

/** TF Serving sends binary strings as {"b64": "..."}. */
function decodeStrings(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(decodeStrings);
  if (isObject(value) && typeof value.b64 === 'string') return Buffer.from(value.b64, 'base64').toString('utf8');
  return value;
}

function tensorFor(spec: TensorSpec | undefined, name: string, dims: number[], value: unknown, signature: Signature): WireTensor {
  const type = spec ? ortTypeOfOnnx(spec.dtype) : undefined;
  checkAgainstSpec(spec, name, type ? kserveDatatype(type) : 'UNSUPPORTED', dims, signature);
  try {
    return { type: type!, dims, data: fromJsonData(name, type!, dims, decodeStrings(value)) };
  } catch (error) {
    if (error instanceof TensorError) throw badInput(error.message);
    throw error;
  }
}

export function parsePredictRequest(json: unknown, signature: Signature): ParsedPredict {
  if (!isObject(json)) throw badInput('the request body must be a JSON object with "instances" or "inputs"');
  if ((json.instances === undefined) === (json.inputs === undefined)) throw badInput('give exactly one of "instances" (row format) or "inputs" (columnar format)');
  const specs = new Map(signature.inputs.map((s) => [s.name, s]));
  const single = signature.inputs.length === 1 ? signature.inputs[0]! : undefined;
  const outputs = signature.outputs.map((o) => o.name);
  const feeds: Record<string, WireTensor> = {};

  if (json.instances !== undefined) {
    const instances = json.instances;
    if (!Array.isArray(instances) || instances.length === 0) throw badInput("no values in 'instances' array");
    const named = instances.every(isObject);
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
    if (order.length === 1) return { outputs: nest(toJsonData(outputs[order[0]!]!), outputs[order[0]!]!.dims) };
    return { outputs: Object.fromEntries(order.map((n) => [n, nest(toJsonData(outputs[n]!), outputs[n]!.dims)])) };
  }
  const rows = (name: string) => {
    const t = outputs[name]!;
    const values = toJsonData(t);
    const size = elementCount(t.dims.slice(1));
    return Array.from({ length: t.dims[0] ?? 1 }, (_, i) => nest(values.slice(i * size, (i + 1) * size), t.dims.slice(1)));
  };
  if (order.length === 1) return { predictions: rows(order[0]!) };
  const columns = order.map((n) => [n, rows(n)] as const);
  return { predictions: columns[0]![1].map((_, i) => Object.fromEntries(columns.map(([n, r]) => [n, r[i]]))) };
}
