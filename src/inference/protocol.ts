/**
 * The Open Inference Protocol's data model, whatever carries it (REST JSON, REST binary, gRPC,
 * `maas predict`, convert's samples): request tensors checked against the model's signature,
 * which outputs to return, and the model metadata document.
 */
import type { Signature, TensorSpec } from '../onnx/inspect.js';
import { MaasError, clipped } from '../core/errors.js';
import { TRITON_PLATFORM } from './triton.js';
import { TensorError, badShape, fromBinary, fromJsonData, kserveDatatype, kserveShape, ortTypeOfKserve, ortTypeOfOnnx, shapeMismatch, type WireTensor } from './tensors.js';

export interface ParsedInfer {
  id: string | undefined;
  feeds: Record<string, WireTensor>;
  outputs: string[];
  /** outputs the client wants as raw bytes (REST's binary tensor extension). */
  binaryOutputs: Set<string>;
}

export function badInput(message: string): MaasError {
  return new MaasError('MAAS_BAD_INPUT', message);
}

export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function unknownInput(name: string, signature: Signature): MaasError {
  return badInput(`unknown input '${clipped(name)}'; the model takes ${signature.inputs.map((i) => `'${i.name}'`).join(', ')}`);
}

/** Checks a request tensor's name, dtype and shape against the model's signature. */
export function checkAgainstSpec(spec: TensorSpec | undefined, name: string, datatype: string, dims: number[], signature: Signature): void {
  if (!spec) throw unknownInput(name, signature);
  const expected = ortTypeOfOnnx(spec.dtype);
  if (ortTypeOfKserve(datatype) !== expected) {
    throw badInput(`input '${name}' has datatype ${datatype}, the model expects ${expected ? kserveDatatype(expected) : spec.dtype}`);
  }
  const mismatch = shapeMismatch(dims, spec.shape);
  if (mismatch) throw badInput(`input '${name}': ${mismatch}`);
}

/** Checks an input's name, datatype and shape; returns its dims. Names must not repeat. */
export function checkInputHead(name: unknown, datatype: unknown, shape: unknown, seen: Record<string, unknown>, signature: Signature, where: string): { name: string; dims: number[] } {
  if (typeof name !== 'string' || name === '') throw badInput(`${where} needs a "name"`);
  // An unknown name first: the messages below name only the model's own inputs.
  const spec = signature.inputs.find((s) => s.name === name);
  if (!spec) throw unknownInput(name, signature);
  if (seen[name]) throw badInput(`input '${name}' is given twice`);
  if (typeof datatype !== 'string' || datatype === '') throw badInput(`input '${name}' needs a "datatype"`);
  const shapeProblem = badShape(shape);
  if (shapeProblem) throw badInput(`input '${name}' ${shapeProblem}`);
  const dims = shape as number[];
  checkAgainstSpec(spec, name, datatype, tritonReshaped(dims, spec), signature);
  return { name, dims };
}

/**
 * The model's shape for a tensor sent in the shape `/config` gives it (Triton's dims and reshape,
 * src/inference/triton.ts): a scalar input is `dims: [1]`, and with batching a `[batch]` input is
 * `[1]` a row, reshaped to `[]`. Any other shape is the model's own.
 */
function tritonReshaped(dims: number[], spec: TensorSpec | undefined): number[] {
  const declared = spec?.shape;
  if (!declared) return dims;
  if (declared.length === 0 && dims.length === 1 && dims[0] === 1) return [];
  if (declared.length === 1 && typeof declared[0] !== 'number' && dims.length === 2 && dims[1] === 1) return [dims[0]!];
  return dims;
}

/** Every input the model takes must be there; a tensor sent in Triton's config shape gets the model's. */
export function requireAllInputs(feeds: Record<string, WireTensor>, signature: Signature): void {
  const missing = signature.inputs.filter((s) => !feeds[s.name]).map((s) => `'${s.name}'`);
  if (missing.length) throw badInput(`missing input ${missing.join(', ')}`);
  for (const spec of signature.inputs) {
    const feed = feeds[spec.name]!;
    feed.dims = tritonReshaped(feed.dims, spec);
  }
}

/** The outputs a request names, checked (known, not twice, not none); all of them when it names none. */
export function requestedOutputs(names: string[] | undefined, signature: Signature): string[] {
  const known = new Set(signature.outputs.map((o) => o.name));
  if (names === undefined) return [...known];
  if (names.length === 0) throw badInput('"outputs" names no output; leave it out to get every output');
  const asked = new Set<string>();
  for (const name of names) {
    if (!known.has(name)) throw badInput(`unknown output '${clipped(name)}'; the model returns ${[...known].map((n) => `'${n}'`).join(', ')}`);
    if (asked.has(name)) throw badInput(`output '${name}' is asked for twice`);
    asked.add(name);
  }
  return names;
}

function parameters(value: unknown, where: string): Record<string, unknown> {
  if (value === undefined) return {};
  if (!isObject(value)) throw badInput(`${where}.parameters must be an object`);
  return value;
}

/** Runs `build`, turning a tensor's own complaint into a 400. */
export function asBadInput<T>(build: () => T): T {
  try {
    return build();
  } catch (error) {
    if (error instanceof TensorError) throw badInput(error.message);
    throw error;
  }
}

/**
 * A KServe v2 infer request in its JSON form: `json` the parsed document, `binary` the bytes
 * that followed it (the binary tensor extension), each binary input taking its
 * `binary_data_size` in order. `float16Numbers`: FP16 inputs may be JSON numbers (our own
 * clients' request files; on the wire KServe v2 JSON has no FP16 form).
 */
export function decodeInferRequest(json: unknown, binary: Buffer, signature: Signature, options: { float16Numbers?: boolean } = {}): ParsedInfer {
  if (!isObject(json)) throw badInput('the request body must be a JSON object with "inputs"');
  if (json.id !== undefined && typeof json.id !== 'string') throw badInput('"id" must be a string');
  const inputs = json.inputs;
  if (!Array.isArray(inputs) || inputs.length === 0) throw badInput('"inputs" must be a non-empty array');
  const feeds: Record<string, WireTensor> = {};
  let offset = 0;
  asBadInput(() => {
    for (const [i, input] of inputs.entries()) {
      if (!isObject(input)) throw badInput(`inputs[${i}] needs a "name"`);
      const { name, dims } = checkInputHead(input.name, input.datatype, input.shape, feeds, signature, `inputs[${i}]`);
      const type = ortTypeOfKserve(input.datatype as string)!;
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
        feeds[name] = { type, dims, data: fromJsonData(name, type, dims, input.data, { float16Numbers: options.float16Numbers }) };
      }
    }
  });
  if (offset !== binary.length) throw badInput(`${binary.length - offset} bytes of binary data follow the last binary input`);
  requireAllInputs(feeds, signature);

  const allBinary = parameters(json.parameters, 'request').binary_data_output === true;
  const binaryOutputs = new Set<string>();
  const listed = json.outputs;
  if (listed !== undefined && !Array.isArray(listed)) throw badInput('"outputs" must be an array');
  const asked = listed?.map((o: unknown, i: number) => {
    if (!isObject(o) || typeof o.name !== 'string') throw badInput(`outputs[${i}] needs a "name"`);
    const asked = parameters(o.parameters, `outputs[${i}]`);
    if (asked.classification !== undefined) throw classificationRefused(o.name);
    const binaryFlag = asked.binary_data;
    if (binaryFlag === true || (binaryFlag === undefined && allBinary)) binaryOutputs.add(o.name);
    return o.name;
  });
  const outputs = requestedOutputs(asked, signature);
  if (asked === undefined && allBinary) for (const name of outputs) binaryOutputs.add(name);
  return { id: json.id as string | undefined, feeds, outputs, binaryOutputs };
}

/**
 * Triton's classification extension (an output's `classification: K` parameter) turns a tensor
 * into its top K labels. maas has no labels to give: refused, rather than answered with the raw
 * tensor a client would read as labels.
 */
export function classificationRefused(output: string): MaasError {
  return badInput(`output '${output}' asks for classification (Triton's classification extension), which maas does not serve; ask for the raw output and take its top classes`);
}

/** One tensor of the metadata document: KServe datatypes, -1 for dims that are not fixed. */
export function tensorMetadata(t: TensorSpec): { name: string; datatype: string; shape: number[] } {
  const type = ortTypeOfOnnx(t.dtype);
  return { name: t.name, datatype: type ? kserveDatatype(type) : t.dtype.toUpperCase(), shape: kserveShape(t.shape) };
}

/** The model metadata document (REST `GET /v2/models/M`, gRPC ModelMetadata): `versions` as served. */
export function modelMetadata(name: string, versions: string[], signature: Signature): { name: string; versions: string[]; platform: string; inputs: ReturnType<typeof tensorMetadata>[]; outputs: ReturnType<typeof tensorMetadata>[] } {
  // Triton's name for what runs the model: the same in the metadata as in the model configuration.
  return { name, versions, platform: TRITON_PLATFORM, inputs: signature.inputs.map(tensorMetadata), outputs: signature.outputs.map(tensorMetadata) };
}

/** Infer requests as people keep them in files: one JSON document, a JSON array of them, or JSON Lines. */
export function parseRequests(text: string, where: string): unknown[] {
  const trimmed = text.trim();
  try {
    const whole: unknown = JSON.parse(trimmed);
    return Array.isArray(whole) ? whole : [whole];
  } catch {
    return trimmed.split('\n').filter((line) => line.trim() !== '').map((line, i) => {
      try {
        return JSON.parse(line) as unknown;
      } catch (error) {
        throw badInput(`${where}, line ${i + 1}, is not JSON: ${(error as Error).message}`);
      }
    });
  }
}

/** The most warm-up samples a version keeps: each runs on every load of every worker. */
export const MAX_WARMUP_SAMPLES = 16;

/** Warm-up requests checked against a signature and kept as one JSON array (the version's warmup.json). */
export function normalizeWarmup(text: string, signature: Signature, where: string): Buffer {
  const requests = parseRequests(text, where);
  if (requests.length === 0 || requests.length > MAX_WARMUP_SAMPLES) throw badInput(`${where} holds ${requests.length} requests; warm-up takes 1 to ${MAX_WARMUP_SAMPLES}`);
  requests.forEach((request, i) => {
    try {
      decodeInferRequest(request, Buffer.alloc(0), signature);
    } catch (error) {
      throw badInput(`warm-up request ${i + 1} in ${where}: ${(error as Error).message}`);
    }
  });
  return Buffer.from(`${JSON.stringify(requests)}\n`);
}

/** A version's stored warm-up samples as feeds; a stored file that no longer fits is the version's fault. */
export function decodeWarmup(bytes: Buffer, signature: Signature, where: string): Record<string, WireTensor>[] {
  try {
    return parseRequests(bytes.toString('utf8'), `${where}'s warm-up samples`).map((request) => decodeInferRequest(request, Buffer.alloc(0), signature).feeds);
  } catch (error) {
    throw new MaasError('MAAS_MODEL_INVALID', `${where}: its warm-up samples do not fit its signature: ${(error as Error).message}`, { hint: 'Register the version again with warm-up requests that fit.' });
  }
}
