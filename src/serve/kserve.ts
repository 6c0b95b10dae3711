/**
 * Open Inference Protocol (KServe v2) REST: infer requests in JSON or with the binary tensor
 * extension, responses the same way, and the metadata documents.
 */
import { constants } from 'node:buffer';
import { MaasError } from '../core/errors.js';
import type { Signature, TensorSpec } from '../onnx/inspect.js';
import {
  TensorError, badShape, fromBinary, fromJsonData, kserveDatatype, kserveShape, ortTypeOfKserve, ortTypeOfOnnx, shapeMismatch, toBinary, toJsonData,
  type WireTensor,
} from './tensors.js';

export const PLATFORM = 'onnx_onnxv1';
export const HEADER_LENGTH = 'inference-header-content-length';

export interface ParsedInfer {
  id: string | undefined;
  feeds: Record<string, WireTensor>;
  outputs: string[];
  binaryOutputs: Set<string>;
}

export function badInput(message: string): MaasError {
  return new MaasError('MAAS_BAD_INPUT', message);
}

export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Splits a body into its JSON header and binary tail per Inference-Header-Content-Length. */
export function splitBody(body: Buffer, headerLength: string | undefined): { json: unknown; binary: Buffer } {
  let jsonLength = body.length;
  if (headerLength !== undefined) {
    if (!/^\d+$/.test(headerLength) || Number(headerLength) > body.length) {
      throw badInput(`Inference-Header-Content-Length ${JSON.stringify(headerLength.slice(0, 40))} is not a length within the ${body.length}-byte body`);
    }
    jsonLength = Number(headerLength);
  }
  if (jsonLength > constants.MAX_STRING_LENGTH) {
    throw new MaasError('MAAS_PAYLOAD_TOO_LARGE', `the request's JSON (${jsonLength} bytes) is longer than a JavaScript string can be`, {
      hint: 'Send large tensors with the binary tensor extension (parameters.binary_data_size).',
    });
  }
  try {
    return { json: JSON.parse(body.subarray(0, jsonLength).toString('utf8')), binary: body.subarray(jsonLength) };
  } catch (error) {
    throw badInput(`the request body is not valid JSON: ${(error as Error).message}`);
  }
}

/** Checks a request tensor's name, dtype and shape against the model's signature. */
export function checkAgainstSpec(spec: TensorSpec | undefined, name: string, datatype: string, dims: number[], signature: Signature): void {
  if (!spec) throw badInput(`unknown input '${name}'; the model takes ${signature.inputs.map((i) => `'${i.name}'`).join(', ')}`);
  const expected = ortTypeOfOnnx(spec.dtype);
  if (ortTypeOfKserve(datatype) !== expected) {
    throw badInput(`input '${name}' has datatype ${datatype}, the model expects ${expected ? kserveDatatype(expected) : spec.dtype}`);
  }
  const mismatch = shapeMismatch(dims, spec.shape);
  if (mismatch) throw badInput(`input '${name}': ${mismatch}`);
}

function parameters(value: unknown, where: string): Record<string, unknown> {
  if (value === undefined) return {};
  if (!isObject(value)) throw badInput(`${where}.parameters must be an object`);
  return value;
}

export function parseInferRequest(body: Buffer, headerLength: string | undefined, signature: Signature): ParsedInfer {
  const { json, binary } = splitBody(body, headerLength);
  if (!isObject(json)) throw badInput('the request body must be a JSON object with "inputs"');
  if (json.id !== undefined && typeof json.id !== 'string') throw badInput('"id" must be a string');
  if (!Array.isArray(json.inputs) || json.inputs.length === 0) throw badInput('"inputs" must be a non-empty array');
  const specs = new Map(signature.inputs.map((s) => [s.name, s]));
  const feeds: Record<string, WireTensor> = {};
  let offset = 0;
  try {
    for (const [i, input] of json.inputs.entries()) {
      if (!isObject(input) || typeof input.name !== 'string') throw badInput(`inputs[${i}] needs a "name"`);
      const { name } = input;
      if (feeds[name]) throw badInput(`input '${name}' is given twice`);
      if (typeof input.datatype !== 'string') throw badInput(`input '${name}' needs a "datatype"`);
      const shapeProblem = badShape(input.shape);
      if (shapeProblem) throw badInput(`input '${name}' ${shapeProblem}`);
      const dims = input.shape as number[];
      checkAgainstSpec(specs.get(name), name, input.datatype, dims, signature);
      const type = ortTypeOfKserve(input.datatype)!;
      const size = parameters(input.parameters, `inputs[${i}]`).binary_data_size;
      if (size !== undefined) {
        if (input.data !== undefined) throw badInput(`input '${name}' sets both "data" and binary_data_size`);
        if (!Number.isSafeInteger(size) || (size as number) < 0) throw badInput(`input '${name}': binary_data_size must be a non-negative integer`);
        if (offset + (size as number) > binary.length) {
          throw badInput(`input '${name}': binary_data_size ${size} runs past the ${binary.length} bytes of binary data`);
        }
        feeds[name] = { type, dims, data: fromBinary(name, type, dims, binary.subarray(offset, offset + (size as number))) };
        offset += size as number;
      } else {
        if (input.data === undefined) throw badInput(`input '${name}' has neither "data" nor parameters.binary_data_size`);
        feeds[name] = { type, dims, data: fromJsonData(name, type, dims, input.data) };
      }
    }
  } catch (error) {
    if (error instanceof TensorError) throw badInput(error.message);
    throw error;
  }
  if (offset !== binary.length) throw badInput(`${binary.length - offset} bytes of binary data follow the last binary input`);
  const missing = signature.inputs.filter((s) => !feeds[s.name]).map((s) => `'${s.name}'`);
  if (missing.length) throw badInput(`missing input ${missing.join(', ')}`);

  const allBinary = parameters(json.parameters, 'request').binary_data_output === true;
  const outputNames = new Set(signature.outputs.map((o) => o.name));
  const binaryOutputs = new Set<string>();
  let outputs = signature.outputs.map((o) => o.name);
  if (json.outputs !== undefined) {
    if (!Array.isArray(json.outputs)) throw badInput('"outputs" must be an array');
    if (json.outputs.length === 0) throw badInput('"outputs" names no output; leave it out to get every output');
    const asked = new Set<string>();
    outputs = json.outputs.map((o, i) => {
      if (!isObject(o) || typeof o.name !== 'string') throw badInput(`outputs[${i}] needs a "name"`);
      if (!outputNames.has(o.name)) throw badInput(`unknown output '${o.name}'; the model returns ${[...outputNames].map((n) => `'${n}'`).join(', ')}`);
      if (asked.has(o.name)) throw badInput(`output '${o.name}' is asked for twice`);
      asked.add(o.name);
      const binaryFlag = parameters(o.parameters, `outputs[${i}]`).binary_data;
      if (binaryFlag === true || (binaryFlag === undefined && allBinary)) binaryOutputs.add(o.name);
      return o.name;
    });
  } else if (allBinary) {
    for (const name of outputs) binaryOutputs.add(name);
  }
  return { id: json.id as string | undefined, feeds, outputs, binaryOutputs };
}

export interface EncodedResponse {
  body: Buffer;
  headers: Record<string, string>;
}

export function encodeInferResponse(args: { model: string; version: number; id: string | undefined; outputs: Record<string, WireTensor>; order: string[]; binaryOutputs: Set<string> }): EncodedResponse {
  const chunks: Buffer[] = [];
  const outputs = args.order.map((name) => {
    const tensor = args.outputs[name]!;
    const head = { name, datatype: kserveDatatype(tensor.type), shape: tensor.dims };
    if (!args.binaryOutputs.has(name)) return { ...head, data: toJsonData(tensor) };
    const bytes = toBinary(tensor);
    chunks.push(bytes);
    return { ...head, parameters: { binary_data_size: bytes.length } };
  });
  const json = Buffer.from(JSON.stringify({ model_name: args.model, model_version: String(args.version), ...(args.id === undefined ? {} : { id: args.id }), outputs }));
  if (chunks.length === 0) return { body: json, headers: { 'content-type': 'application/json' } };
  return {
    body: Buffer.concat([json, ...chunks]),
    headers: { 'content-type': 'application/octet-stream', [HEADER_LENGTH]: String(json.length) },
  };
}

export function modelMetadata(name: string, versions: string[], signature: Signature): object {
  const tensor = (t: TensorSpec) => ({ name: t.name, datatype: ortTypeOfOnnx(t.dtype) ? kserveDatatype(ortTypeOfOnnx(t.dtype)!) : t.dtype.toUpperCase(), shape: kserveShape(t.shape) });
  return { name, versions, platform: PLATFORM, inputs: signature.inputs.map(tensor), outputs: signature.outputs.map(tensor) };
}
