/**
 * ModelInfer's request and response on the wire, by hand: the hot path of the gRPC transport.
 * @grpc/proto-loader (protobufjs) builds and converts a JS object per field; this reads the
 * protobuf bytes once, keeps raw contents as views of the message, and writes the response with
 * the raw outputs copied once. The other, rare calls keep proto-loader. Field numbers are those of
 * proto/open_inference_grpc.proto. Hostile bytes: every length and varint is bounded by the
 * message, and what does not parse is a MAAS_BAD_INPUT (INVALID_ARGUMENT), not a crash.
 */
import { badInput } from '../../inference/protocol.js';
import { WIRE } from '../../onnx/protobuf.js';
import type { InferInputTensor, InferTensorContents, ModelInferRequest, ModelInferResponse } from './codec.js';

const { varint: VARINT, fixed64: FIXED64, bytes: BYTES, fixed32: FIXED32 } = WIRE;

class Reader {
  constructor(private readonly buf: Buffer, public pos: number, private readonly end: number) {}

  get done(): boolean {
    return this.pos >= this.end;
  }

  varint(): bigint {
    let result = 0n;
    for (let shift = 0n; shift < 70n; shift += 7n) {
      if (this.pos >= this.end) throw badInput('the ModelInferRequest message is truncated');
      const byte = this.buf[this.pos++]!;
      result |= BigInt(byte & 0x7f) << shift;
      if (byte < 0x80) return result;
    }
    throw badInput('the ModelInferRequest message holds a varint longer than 10 bytes');
  }

  /** A varint known to be small (tags, lengths): numbers, no BigInt. */
  small(): number {
    let result = 0;
    for (let shift = 0; shift < 35; shift += 7) {
      if (this.pos >= this.end) throw badInput('the ModelInferRequest message is truncated');
      const byte = this.buf[this.pos++]!;
      result += (byte & 0x7f) * 2 ** shift;
      if (byte < 0x80) return result;
    }
    throw badInput('the ModelInferRequest message holds a tag or length that does not fit');
  }

  /** The span of a length-delimited field, as a view of the message (no copy). */
  span(): { start: number; end: number } {
    const length = this.small();
    const start = this.pos;
    if (start + length > this.end) throw badInput('a field of the ModelInferRequest message runs past its end');
    this.pos += length;
    return { start, end: this.pos };
  }

  bytes(): Buffer {
    const { start, end } = this.span();
    return this.buf.subarray(start, end);
  }

  string(): string {
    const { start, end } = this.span();
    return this.buf.toString('utf8', start, end);
  }

  sub(): Reader {
    const { start, end } = this.span();
    return new Reader(this.buf, start, end);
  }

  skip(wire: number): void {
    if (wire === VARINT) this.varint();
    else if (wire === FIXED64) this.advance(8);
    else if (wire === BYTES) this.span();
    else if (wire === FIXED32) this.advance(4);
    else throw badInput(`the ModelInferRequest message uses wire type ${wire}, which proto3 messages do not have`);
  }

  advance(n: number): void {
    if (this.pos + n > this.end) throw badInput('the ModelInferRequest message is truncated');
    this.pos += n;
  }

  fixed32(): Buffer {
    this.advance(4);
    return this.buf.subarray(this.pos - 4, this.pos);
  }

  fixed64(): Buffer {
    this.advance(8);
    return this.buf.subarray(this.pos - 8, this.pos);
  }
}

/** A repeated scalar field, packed (wire type 2) or one element per tag, as protobuf readers must accept. */
function repeated<T>(r: Reader, wire: number, element: number, read: (r: Reader) => T, into: T[]): void {
  if (wire === BYTES) {
    const packed = r.sub();
    while (!packed.done) into.push(read(packed));
  } else if (wire === element) {
    into.push(read(r));
  } else {
    r.skip(wire);
  }
}

const asInt64 = (r: Reader) => BigInt.asIntN(64, r.varint());
/** int64 dims: a number when it is a safe non-negative one; otherwise its text, which the shape check refuses. */
const dim = (r: Reader): number | string => {
  const v = asInt64(r);
  return v >= 0n && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : String(v);
};

function readContents(r: Reader): InferTensorContents {
  const c: Required<InferTensorContents> = { bool_contents: [], int_contents: [], int64_contents: [], uint_contents: [], uint64_contents: [], fp32_contents: [], fp64_contents: [], bytes_contents: [] };
  while (!r.done) {
    const tag = r.small();
    const field = Math.floor(tag / 8);
    const wire = tag & 7;
    switch (field) {
      case 1: repeated(r, wire, VARINT, (x) => x.varint() !== 0n, c.bool_contents); break;
      case 2: repeated(r, wire, VARINT, (x) => Number(BigInt.asIntN(32, x.varint())), c.int_contents); break;
      case 3: repeated(r, wire, VARINT, (x) => String(asInt64(x)), c.int64_contents); break;
      case 4: repeated(r, wire, VARINT, (x) => Number(BigInt.asUintN(32, x.varint())), c.uint_contents); break;
      case 5: repeated(r, wire, VARINT, (x) => String(BigInt.asUintN(64, x.varint())), c.uint64_contents); break;
      case 6: repeated(r, wire, FIXED32, (x) => x.fixed32().readFloatLE(0), c.fp32_contents); break;
      case 7: repeated(r, wire, FIXED64, (x) => x.fixed64().readDoubleLE(0), c.fp64_contents); break;
      case 8: if (wire === BYTES) c.bytes_contents.push(r.bytes()); else r.skip(wire); break;
      default: r.skip(wire);
    }
  }
  return c;
}

function readInput(r: Reader): InferInputTensor {
  const input: InferInputTensor = { name: '', datatype: '', shape: [], contents: null };
  while (!r.done) {
    const tag = r.small();
    const field = Math.floor(tag / 8);
    const wire = tag & 7;
    if (field === 1 && wire === BYTES) input.name = r.string();
    else if (field === 2 && wire === BYTES) input.datatype = r.string();
    else if (field === 3) repeated(r, wire, VARINT, dim, input.shape);
    else if (field === 5 && wire === BYTES) input.contents = readContents(r.sub());
    else r.skip(wire); // parameters (4), and fields a later protocol adds
  }
  return input;
}

/** A requested output: its name, and the keys of its parameters map (entries: key 1, value 2). */
function readOutput(r: Reader): { name: string; parameters: string[] } {
  let name = '';
  const parameters: string[] = [];
  while (!r.done) {
    const tag = r.small();
    if (tag === (1 << 3) + BYTES) name = r.string();
    else if (tag === (2 << 3) + BYTES) {
      const entry = r.sub();
      while (!entry.done) {
        const entryTag = entry.small();
        if (entryTag === (1 << 3) + BYTES) parameters.push(entry.string());
        else entry.skip(entryTag & 7);
      }
    } else r.skip(tag & 7);
  }
  return { name, parameters };
}

export function readModelInferRequest(buf: Buffer): ModelInferRequest {
  const request: ModelInferRequest = { model_name: '', model_version: '', id: '', inputs: [], outputs: [], raw_input_contents: [] };
  const r = new Reader(buf, 0, buf.length);
  while (!r.done) {
    const tag = r.small();
    const field = Math.floor(tag / 8);
    const wire = tag & 7;
    if (wire === BYTES && field === 1) request.model_name = r.string();
    else if (wire === BYTES && field === 2) request.model_version = r.string();
    else if (wire === BYTES && field === 3) request.id = r.string();
    else if (wire === BYTES && field === 5) request.inputs.push(readInput(r.sub()));
    else if (wire === BYTES && field === 6) request.outputs.push(readOutput(r.sub()));
    else if (wire === BYTES && field === 7) request.raw_input_contents.push(r.bytes());
    else r.skip(wire); // parameters (4)
  }
  return request;
}

/** Bytes a varint of a non-negative safe integer takes. */
function varintLength(value: number): number {
  let n = 1;
  for (let v = value; v >= 0x80; v = Math.floor(v / 128)) n++;
  return n;
}

/** A length-delimited field of `length` bytes, whole: tag, length and content. */
const fieldLength = (number: number, length: number): number => varintLength((number << 3) | BYTES) + varintLength(length) + length;

/** Writes into one buffer sized beforehand: no part is allocated on its own. */
class Writer {
  pos = 0;
  constructor(readonly buf: Buffer) {}

  varint(value: number): void {
    let v = value;
    while (v >= 0x80) {
      this.buf[this.pos++] = (v % 128) | 0x80;
      v = Math.floor(v / 128);
    }
    this.buf[this.pos++] = v;
  }

  head(number: number, length: number): void {
    this.varint((number << 3) | BYTES);
    this.varint(length);
  }

  /** A string field; proto3 leaves an empty one out. */
  text(number: number, value: string, length: number): void {
    if (length === 0) return;
    this.head(number, length);
    this.pos += this.buf.write(value, this.pos, 'utf8');
  }

  bytes(number: number, value: Uint8Array): void {
    this.head(number, value.length);
    this.buf.set(value, this.pos);
    this.pos += value.length;
  }
}

const textLength = (number: number, length: number): number => (length === 0 ? 0 : fieldLength(number, length));

export function writeModelInferResponse(response: ModelInferResponse): Buffer {
  const name = Buffer.byteLength(response.model_name);
  const version = Buffer.byteLength(response.model_version);
  const id = Buffer.byteLength(response.id);
  const outputs = response.outputs.map((o) => {
    const name = Buffer.byteLength(o.name);
    const datatype = Buffer.byteLength(o.datatype);
    const shape = o.shape.reduce((n, d) => n + varintLength(d), 0);
    return { o, name, datatype, shape, length: textLength(1, name) + textLength(2, datatype) + (o.shape.length ? fieldLength(3, shape) : 0) };
  });
  const total = textLength(1, name) + textLength(2, version) + textLength(3, id)
    + outputs.reduce((n, o) => n + fieldLength(5, o.length), 0)
    + response.raw_output_contents.reduce((n, raw) => n + fieldLength(6, raw.length), 0);
  const w = new Writer(Buffer.allocUnsafe(total));
  w.text(1, response.model_name, name);
  w.text(2, response.model_version, version);
  w.text(3, response.id, id);
  for (const { o, name, datatype, shape, length } of outputs) {
    w.head(5, length);
    w.text(1, o.name, name);
    w.text(2, o.datatype, datatype);
    if (o.shape.length) {
      w.head(3, shape);
      for (const d of o.shape) w.varint(d);
    }
  }
  for (const raw of response.raw_output_contents) w.bytes(6, raw);
  return w.buf;
}
