/**
 * Tensors between the wire (KServe v2 JSON and binary, TF Serving JSON) and onnxruntime.
 * Pure: every function here is unit-tested without a session.
 */
import type { Dim } from '../onnx/model.js';

export type OrtType = 'bool' | 'uint8' | 'uint16' | 'uint32' | 'uint64' | 'int8' | 'int16' | 'int32' | 'int64' | 'float16' | 'float32' | 'float64' | 'string';
export type NumericData = Uint8Array | Uint16Array | Uint32Array | BigUint64Array | Int8Array | Int16Array | Int32Array | BigInt64Array | Float32Array | Float64Array;
export type TensorData = NumericData | string[];

/** A tensor as it crosses to and from the inference worker. */
export interface WireTensor {
  type: OrtType;
  dims: number[];
  data: TensorData;
}

interface TypeInfo {
  kserve: string;
  ort: Exclude<OrtType, 'string'>;
  bytes: number;
  make: (lengthOrBuffer: number | ArrayBuffer) => NumericData;
}

const TYPES: TypeInfo[] = [
  { kserve: 'BOOL', ort: 'bool', bytes: 1, make: (n) => new Uint8Array(n as number) },
  { kserve: 'UINT8', ort: 'uint8', bytes: 1, make: (n) => new Uint8Array(n as number) },
  { kserve: 'UINT16', ort: 'uint16', bytes: 2, make: (n) => new Uint16Array(n as number) },
  { kserve: 'UINT32', ort: 'uint32', bytes: 4, make: (n) => new Uint32Array(n as number) },
  { kserve: 'UINT64', ort: 'uint64', bytes: 8, make: (n) => new BigUint64Array(n as number) },
  { kserve: 'INT8', ort: 'int8', bytes: 1, make: (n) => new Int8Array(n as number) },
  { kserve: 'INT16', ort: 'int16', bytes: 2, make: (n) => new Int16Array(n as number) },
  { kserve: 'INT32', ort: 'int32', bytes: 4, make: (n) => new Int32Array(n as number) },
  { kserve: 'INT64', ort: 'int64', bytes: 8, make: (n) => new BigInt64Array(n as number) },
  { kserve: 'FP16', ort: 'float16', bytes: 2, make: (n) => new Uint16Array(n as number) },
  { kserve: 'FP32', ort: 'float32', bytes: 4, make: (n) => new Float32Array(n as number) },
  { kserve: 'FP64', ort: 'float64', bytes: 8, make: (n) => new Float64Array(n as number) },
];
const BY_KSERVE = new Map(TYPES.map((t) => [t.kserve, t]));
const BY_ORT = new Map<OrtType, TypeInfo>(TYPES.map((t) => [t.ort, t]));

/** The ONNX dtype names `maas show` prints that onnxruntime-node can feed and fetch. */
const FROM_ONNX = new Set<string>(['bool', 'uint8', 'uint16', 'uint32', 'uint64', 'int8', 'int16', 'int32', 'int64', 'float16', 'float32', 'float64', 'string']);

export class TensorError extends Error {
  override readonly name = 'TensorError';
}

export function ortTypeOfOnnx(dtype: string): OrtType | undefined {
  return FROM_ONNX.has(dtype) ? (dtype as OrtType) : undefined;
}

export function kserveDatatype(type: OrtType): string {
  return type === 'string' ? 'BYTES' : BY_ORT.get(type)!.kserve;
}

export function ortTypeOfKserve(datatype: string): OrtType | undefined {
  if (datatype === 'BYTES') return 'string';
  return BY_KSERVE.get(datatype)?.ort;
}

/** A tensor's data of `count` zeros (empty strings for string tensors). */
export function zeros(type: OrtType, count: number): TensorData {
  return type === 'string' ? Array.from({ length: count }, () => '') : BY_ORT.get(type)!.make(count);
}

export function elementCount(dims: readonly number[]): number {
  return dims.reduce((n, d) => n * d, 1);
}

/** KServe shapes: symbolic and unknown dims are -1. */
export function kserveShape(shape: Dim[] | null): number[] {
  return (shape ?? []).map((d) => (typeof d === 'number' ? d : -1));
}

/** The most dims a request tensor may have (NumPy's limit); deeper nesting is hostile, not data. */
export const MAX_RANK = 64;

/**
 * Why a request shape cannot be a tensor, if it cannot: dims must be non-negative safe integers,
 * at most MAX_RANK of them, and their product (zeros aside) must stay a safe integer, so no
 * element count or byte length computed from them overflows here or in onnxruntime.
 */
export function badShape(dims: unknown): string | undefined {
  if (!Array.isArray(dims) || !dims.every((d) => Number.isSafeInteger(d) && (d as number) >= 0)) return 'needs a "shape" of non-negative integers';
  if (dims.length > MAX_RANK) return `has ${dims.length} dims, more than the ${MAX_RANK} a tensor may have`;
  let product = 1;
  for (const d of dims as number[]) {
    if (d !== 0) product *= d;
    if (product > Number.MAX_SAFE_INTEGER) return `has a shape [${dims.join(', ')}] whose element count overflows`;
  }
  return undefined;
}

/**
 * Flattens nested lists, iteratively so no input can exhaust the stack; undefined when the
 * nesting goes deeper than `maxDepth` lists. `leaf` maps each non-list value.
 */
function flatten(data: unknown, maxDepth: number, leaf: (value: unknown) => unknown): unknown[] | undefined {
  if (!Array.isArray(data)) return [leaf(data)];
  const out: unknown[] = [];
  const stack: { list: unknown[]; next: number }[] = [{ list: data, next: 0 }];
  while (stack.length > 0) {
    const top = stack[stack.length - 1]!;
    if (top.next === top.list.length) {
      stack.pop();
      continue;
    }
    const value = top.list[top.next++];
    if (!Array.isArray(value)) out.push(leaf(value));
    else if (stack.length === maxDepth) return undefined;
    else stack.push({ list: value, next: 0 });
  }
  return out;
}

/**
 * Nested data must have the shape's structure: its outer lists the shape's leading dims, its
 * innermost lists the rest of the elements, flat. A ragged [[1, 2, 3], [4, 5, 6, 7, 8]] for
 * [2, 4] holds 8 elements, but not in rows of 4.
 */
function checkNesting(name: string, data: unknown[], dims: number[]): void {
  const refused = (depth: number, holds: string, expected: string) =>
    new TensorError(`input '${name}': nested data does not follow shape [${dims.join(', ')}]: a list at depth ${depth} holds ${holds}, not ${expected}`);
  let level: unknown[][] = [data];
  for (let depth = 0; depth < dims.length; depth++) {
    if (!level.some((list) => list.some(Array.isArray))) {
      const rest = elementCount(dims.slice(depth));
      const wrong = level.find((list) => list.length !== rest);
      if (wrong) throw refused(depth, `${wrong.length} values`, String(rest));
      return;
    }
    if (depth === dims.length - 1) return; // nested deeper than the shape: flatten says so
    for (const list of level) {
      const lists = list.filter(Array.isArray).length;
      if (list.length !== dims[depth] || lists !== list.length) {
        throw refused(depth, `${list.length} ${lists === list.length ? 'lists' : lists > 0 ? 'values and lists' : 'values'}`, `${dims[depth]} lists`);
      }
    }
    level = level.flat() as unknown[][];
  }
}

/** A short description of a JSON value for messages: objects and lists can be huge or deep. */
function describe(value: unknown): string {
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object' && value !== null) return 'an object';
  // JSON.parse turns 1e999 into Infinity, which JSON.stringify would call null.
  if (typeof value === 'number' && !Number.isFinite(value)) return `${value} (beyond float64)`;
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 40 ? `${text.slice(0, 40)}…` : text;
}

const INT_RANGES: Partial<Record<OrtType, [number, number]>> = {
  uint8: [0, 0xff], uint16: [0, 0xffff], uint32: [0, 0xffffffff],
  int8: [-0x80, 0x7f], int16: [-0x8000, 0x7fff], int32: [-0x80000000, 0x7fffffff],
};

export interface JsonDataOptions {
  /** maps each element first, in row-major order (TF Serving's {"b64": ...} strings). */
  leaf?: ((value: unknown) => unknown) | undefined;
  /**
   * FP16 elements as JSON numbers, rounded to float16. KServe v2 JSON has no FP16 form (Triton
   * refuses it); TF Serving takes DT_HALF as numbers, and `maas predict` is our own client.
   */
  float16Numbers?: boolean | undefined;
}

/**
 * Builds tensor data from JSON values (flat, or nested no deeper than the shape), checking each
 * element's type and range.
 */
export function fromJsonData(name: string, type: OrtType, dims: number[], data: unknown, options: JsonDataOptions = {}): TensorData {
  const leaf = options.leaf;
  if (leaf === undefined && (type === 'float32' || type === 'float64')) {
    const fast = flatFloats(type, dims, data);
    if (fast) return fast;
  }
  if (Array.isArray(data) && data.some(Array.isArray)) checkNesting(name, data, dims);
  const values = flatten(data, Math.max(1, dims.length), leaf ?? ((v) => v));
  if (!values) throw new TensorError(`input '${name}': data is nested deeper than its ${dims.length}-dim shape [${dims.join(', ')}]`);
  const expected = elementCount(dims);
  if (values.length !== expected) {
    throw new TensorError(`input '${name}': shape [${dims.join(', ')}] needs ${expected} elements, data has ${values.length}`);
  }
  const bad = (i: number, what: string) => new TensorError(`input '${name}': element ${i} is ${describe(values[i])}, expected ${what}`);
  if (type === 'string') {
    return values.map((v, i) => {
      if (typeof v !== 'string' && !(v instanceof Uint8Array)) throw bad(i, 'a string');
      return textElement(name, i, v);
    });
  }
  if (type === 'float16') {
    if (!options.float16Numbers) throw new TensorError(`input '${name}': FP16 data cannot be sent as JSON; send it with the binary tensor extension (parameters.binary_data_size)`);
    const out = new Uint16Array(expected);
    values.forEach((v, i) => {
      if (typeof v !== 'number') throw bad(i, 'a number (float16)');
      const half = numberToHalf(v);
      if (half === undefined) throw bad(i, `a number within float16's range (±${FLOAT16_MAX})`);
      out[i] = half;
    });
    return out;
  }
  const out = BY_ORT.get(type)!.make(expected);
  if (type === 'bool') {
    values.forEach((v, i) => {
      if (typeof v !== 'boolean') throw bad(i, 'true or false');
      out[i] = v ? 1 : 0;
    });
    return out;
  }
  if (type === 'int64' || type === 'uint64') {
    values.forEach((v, i) => {
      if (typeof v === 'number' && Number.isInteger(v) && !Number.isSafeInteger(v)) {
        // JSON numbers are float64: 2^53 + 1 arrives as 2^53, so it is refused, not rounded.
        throw new TensorError(`input '${name}': element ${i} is beyond ±2^53, which a JSON number cannot carry exactly; send ${kserveDatatype(type)} values that large in binary: KServe v2's binary tensor extension (parameters.binary_data_size) or gRPC raw contents`);
      }
      if (typeof v !== 'number' || !Number.isSafeInteger(v) || (type === 'uint64' && v < 0)) throw bad(i, `an integer (${type})`);
      out[i] = BigInt(v);
    });
    return out;
  }
  const range = INT_RANGES[type];
  values.forEach((v, i) => {
    if (typeof v !== 'number' || !Number.isFinite(v)) throw bad(i, `a number (${type})`);
    if (range && (!Number.isInteger(v) || v < range[0] || v > range[1])) throw bad(i, `an integer in [${range[0]}, ${range[1]}] (${type})`);
    out[i] = v;
    // 1e39 as float32 is Infinity: refused, as float16 beyond ±65504 is, not sent on as another number.
    if (!Number.isFinite(out[i] as number)) throw bad(i, `a number within float32's range (±3.4028235e38)`);
  });
  return out;
}

/**
 * The common case of a float tensor sent as a flat list of finite numbers, in one pass; undefined
 * for anything else (nested, wrong length, a non-number), which the general path then explains.
 */
function flatFloats(type: 'float32' | 'float64', dims: number[], data: unknown): Float32Array | Float64Array | undefined {
  if (!Array.isArray(data) || data.length !== elementCount(dims)) return undefined;
  const out = type === 'float32' ? new Float32Array(data.length) : new Float64Array(data.length);
  for (let i = 0; i < data.length; i++) {
    const v: unknown = data[i];
    if (typeof v !== 'number' || !Number.isFinite(v)) return undefined;
    out[i] = v;
    if (!Number.isFinite(out[i]!)) return undefined; // beyond float32's range: the general path says so
  }
  return out;
}

const UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/**
 * A BYTES element as onnxruntime's string tensors hold it: text, cut at the first NUL. Bytes that
 * are not UTF-8, or a NUL, would reach the model changed (U+FFFD, or the string cut short), so
 * they are refused instead.
 */
function textElement(name: string, index: number, value: string | Uint8Array): string {
  let text: string;
  if (typeof value === 'string') {
    text = value;
  } else {
    try {
      text = UTF8.decode(value);
    } catch {
      throw new TensorError(`input '${name}': BYTES element ${index} is not valid UTF-8, and onnxruntime's string tensors hold text; send raw bytes as a UINT8 tensor`);
    }
  }
  if (text.includes('\0')) throw new TensorError(`input '${name}': BYTES element ${index} holds a NUL character, where onnxruntime's string tensors end`);
  return text;
}

/** The bytes a binary tensor of this type and shape takes; undefined for strings. */
export function binaryByteLength(type: OrtType, dims: number[]): number | undefined {
  return type === 'string' ? undefined : elementCount(dims) * BY_ORT.get(type)!.bytes;
}

/** Reads a binary tensor: little-endian, row-major; BYTES as a uint32 length + bytes per element. */
export function fromBinary(name: string, type: OrtType, dims: number[], bytes: Buffer): TensorData {
  const count = elementCount(dims);
  if (type === 'string') {
    const out: string[] = [];
    let pos = 0;
    while (pos < bytes.length) {
      if (pos + 4 > bytes.length) throw new TensorError(`input '${name}': BYTES element ${out.length} has a truncated length prefix`);
      const length = bytes.readUInt32LE(pos);
      if (pos + 4 + length > bytes.length) throw new TensorError(`input '${name}': BYTES element ${out.length} runs past the tensor's data`);
      out.push(textElement(name, out.length, bytes.subarray(pos + 4, pos + 4 + length)));
      pos += 4 + length;
    }
    if (out.length !== count) throw new TensorError(`input '${name}': shape [${dims.join(', ')}] needs ${count} elements, binary data has ${out.length}`);
    return out;
  }
  const expected = binaryByteLength(type, dims)!;
  if (bytes.length !== expected) {
    throw new TensorError(`input '${name}': ${kserveDatatype(type)} [${dims.join(', ')}] needs ${expected} bytes, its binary data holds ${bytes.length}`);
  }
  // One copy into a fresh, aligned buffer: the offset inside the request body may not be.
  const copy = new ArrayBuffer(bytes.length);
  new Uint8Array(copy).set(bytes);
  return BY_ORT.get(type)!.make(copy);
}

export function toBinary(tensor: WireTensor): Buffer {
  if (tensor.type !== 'string') {
    const data = tensor.data as NumericData;
    return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  }
  const parts: Buffer[] = [];
  for (const s of tensor.data as string[]) {
    const bytes = Buffer.from(s, 'utf8');
    const length = Buffer.alloc(4);
    length.writeUInt32LE(bytes.length);
    parts.push(length, bytes);
  }
  return Buffer.concat(parts);
}

/** IEEE 754 half-precision bits to a number, for JSON output of FP16 tensors. */
export function halfToNumber(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >> 10) & 0x1f;
  const fraction = bits & 0x3ff;
  if (exponent === 0) return sign * 2 ** -14 * (fraction / 1024);
  if (exponent === 0x1f) return fraction ? NaN : sign * Infinity;
  return sign * 2 ** (exponent - 15) * (1 + fraction / 1024);
}

/** The largest finite float16. */
export const FLOAT16_MAX = 65504;

/** Rounds a non-negative x to an integer, ties to even. */
function roundHalfEven(x: number): number {
  const floor = Math.floor(x);
  const rest = x - floor;
  return rest > 0.5 || (rest === 0.5 && floor % 2 === 1) ? floor + 1 : floor;
}

/**
 * A number as IEEE 754 half-precision bits, rounded to nearest, ties to even, straight from
 * float64 (through float32 it would round twice and miss by one ulp); undefined when it is not
 * finite or rounds beyond ±65504, which float16 would hold as an infinity no one sent.
 */
export function numberToHalf(value: number): number | undefined {
  const sign = value < 0 || Object.is(value, -0) ? 0x8000 : 0;
  const a = Math.abs(value);
  // 65520 is halfway from 65504 to the next step, 65536, and ties go to the even one: infinity.
  if (!(a < 65520)) return undefined;
  // Subnormals are multiples of 2^-24; rounding up to 1024 of them is the smallest normal, 0x0400.
  if (a < 2 ** -14) return sign | roundHalfEven(a * 2 ** 24);
  let exponent = Math.floor(Math.log2(a));
  if (2 ** exponent > a) exponent--; // Math.log2 may round across a power of two
  else if (2 ** (exponent + 1) <= a) exponent++;
  // 1024..2048 steps of 2^(exponent-10); 2048 carries into the exponent, as the bits should.
  const significand = roundHalfEven(a * 2 ** (10 - exponent));
  return sign | (((exponent + 15) << 10) + significand - 1024);
}

/** Marks an int64 a JSON number from JSON.stringify cannot carry; `stringifyJson` writes its digits. */
const EXACT_INT = '\u0001int64:';
const EXACT_INT_JSON = /"\\u0001int64:(-?\d+)"/g;
const SAFE = BigInt(Number.MAX_SAFE_INTEGER);

/**
 * Flat JSON values of a tensor. With `exact`, an int64 beyond ±2^53 is a marked string that
 * `stringifyJson` turns into its exact digits (as Triton writes them); otherwise it is rounded.
 */
export function toJsonData(tensor: WireTensor, exact = false): (number | boolean | string | null)[] {
  const { type, data } = tensor;
  if (type === 'string') return data as string[];
  const n = data.length;
  const out: (number | boolean | string | null)[] = new Array(n);
  if (type === 'bool') for (let i = 0; i < n; i++) out[i] = (data as Uint8Array)[i] !== 0;
  else if (type === 'float16') for (let i = 0; i < n; i++) out[i] = halfToNumber((data as Uint16Array)[i]!);
  else if (type === 'int64' || type === 'uint64') {
    for (let i = 0; i < n; i++) {
      const v = (data as BigInt64Array)[i]!;
      out[i] = exact && (v > SAFE || v < -SAFE) ? `${EXACT_INT}${v}` : Number(v);
    }
  }
  else {
    // JSON has no NaN or Infinity: they go out as null, as JSON.stringify would write them.
    for (let i = 0; i < n; i++) {
      const v = (data as Float32Array)[i]!;
      out[i] = Number.isFinite(v) ? v : null;
    }
  }
  return out;
}

/**
 * The JSON text of a tensor's flat values, as `stringifyJson(toJsonData(t, true))` writes them
 * (NaN and Infinity as null, int64 as exact digits), written directly: no array of boxed values
 * to build and walk. The hot half of every JSON answer.
 */
export function jsonDataText(tensor: WireTensor): string {
  const { type, data } = tensor;
  if (type === 'string' || type === 'bool' || type === 'float16') return JSON.stringify(toJsonData(tensor));
  if (type === 'float32' || type === 'float64') {
    const floats = data as Float32Array | Float64Array;
    for (let i = 0; i < floats.length; i++) {
      if (!Number.isFinite(floats[i]!)) return JSON.stringify(toJsonData(tensor));
    }
  }
  // A typed array joins its elements as Number#toString (BigInt#toString for int64) writes them:
  // JSON's own digits for every finite number, exact digits for every int64.
  return `[${(data as NumericData).join(',')}]`;
}

/** Elements of one slice of a large JSON answer: a few milliseconds of writing each. */
export const JSON_SLICE_ELEMENTS = 1 << 16;

/**
 * `jsonDataText` for a tensor of any size, as UTF-8 pieces. One of millions of values is written
 * a slice at a time, each turned into bytes at once, and the event loop runs between slices, so
 * that one large answer does not hold up every other request (a liveness probe waited seconds
 * behind a 44 MB answer).
 */
export async function jsonDataInSlices(tensor: WireTensor): Promise<Buffer[]> {
  const { data } = tensor;
  const pieces: Buffer[] = [];
  for (let start = 0; start < data.length || start === 0; start += JSON_SLICE_ELEMENTS) {
    if (start > 0) await new Promise<void>((resolve) => setImmediate(resolve));
    const end = Math.min(start + JSON_SLICE_ELEMENTS, data.length);
    const slice = Array.isArray(data) ? data.slice(start, end) : data.subarray(start, end);
    const text = jsonDataText({ type: tensor.type, dims: [end - start], data: slice }).slice(1, -1);
    pieces.push(Buffer.from(`${start === 0 ? '[' : ','}${text}`));
  }
  pieces.push(Buffer.from(']'));
  return pieces;
}

/** JSON text of a response, with the exact digits of the int64 values `toJsonData(t, true)` marked. */
export function stringifyJson(value: unknown): string {
  const text = JSON.stringify(value);
  return text.includes('\\u0001int64:') ? text.replace(EXACT_INT_JSON, '$1') : text;
}

/** Nests flat values into rows of the shape, for TF Serving responses. */
export function nest(values: unknown[], dims: number[]): unknown {
  if (dims.length === 0) return values[0];
  if (dims.length === 1) return values;
  const [rows, ...rest] = dims;
  const size = elementCount(rest);
  const out: unknown[] = [];
  for (let i = 0; i < rows!; i++) out.push(nest(values.slice(i * size, (i + 1) * size), rest));
  return out;
}

/** Why the given dims do not fit the model's declared ones (symbolic dims fit anything), if they don't. */
export function shapeMismatch(dims: number[], declared: Dim[] | null): string | undefined {
  if (declared === null) return undefined;
  if (dims.length !== declared.length) return `rank ${dims.length}, the model expects rank ${declared.length} [${declared.map((d) => d ?? '?').join(', ')}]`;
  for (let i = 0; i < dims.length; i++) {
    const d = declared[i];
    if (typeof d === 'number' && dims[i] !== d) return `dim ${i} is ${dims[i]}, the model expects ${d}`;
  }
  return undefined;
}

/** Concatenates same-typed tensors along dim 0. */
export function concatBatch(tensors: WireTensor[]): WireTensor {
  const first = tensors[0]!;
  const dims = [tensors.reduce((n, t) => n + t.dims[0]!, 0), ...first.dims.slice(1)];
  if (first.type === 'string') return { type: first.type, dims, data: tensors.flatMap((t) => t.data as string[]) };
  const out = BY_ORT.get(first.type)!.make(elementCount(dims)) as Float32Array;
  let offset = 0;
  for (const t of tensors) {
    out.set(t.data as Float32Array, offset);
    offset += t.data.length;
  }
  return { type: first.type, dims, data: out };
}

/** Splits a tensor along dim 0 into pieces of the given sizes; each piece owns its buffer. */
export function splitBatch(tensor: WireTensor, sizes: number[]): WireTensor[] {
  const rowSize = elementCount(tensor.dims.slice(1));
  let offset = 0;
  return sizes.map((n) => {
    const data = tensor.data.slice(offset * rowSize, (offset + n) * rowSize) as TensorData;
    offset += n;
    return { type: tensor.type, dims: [n, ...tensor.dims.slice(1)], data };
  });
}
