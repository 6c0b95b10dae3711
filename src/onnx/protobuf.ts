/**
 * A minimal protobuf wire-format reader and writer, enough for ONNX.
 *
 * The reader never loads a message whole: it walks fields by file offset, so a 2 GB model's
 * weights are visited as spans and hashed in chunks, never held in memory.
 */
import { closeSync, constants, fstatSync, openSync, readSync } from 'node:fs';

export const WIRE = { varint: 0, fixed64: 1, bytes: 2, fixed32: 5 } as const;

export interface Span {
  offset: number;
  length: number;
}

/** Random access to the bytes of a protobuf message. */
export interface ByteSource {
  readonly size: number;
  read(offset: number, length: number): Buffer;
}

export class BufferSource implements ByteSource {
  constructor(private readonly buffer: Buffer) {}
  get size(): number {
    return this.buffer.length;
  }
  read(offset: number, length: number): Buffer {
    return this.buffer.subarray(offset, offset + length);
  }
}

const WINDOW_BYTES = 1 << 16;

/** Reads a file through a small window so many tiny field reads cost few syscalls. */
export class FileSource implements ByteSource {
  readonly size: number;
  private readonly fd: number;
  private window: Buffer = Buffer.alloc(0);
  private windowStart = 0;

  /** Refuses what is not a regular file: non-blocking, so that a FIFO cannot hang the open. */
  constructor(path: string) {
    this.fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
    const stat = fstatSync(this.fd);
    if (!stat.isFile()) {
      closeSync(this.fd);
      throw new ProtobufError(`${path} is not a regular file`);
    }
    this.size = stat.size;
  }

  read(offset: number, length: number): Buffer {
    if (offset + length > this.size) throw new ProtobufError(`read past the end of the file at byte ${offset}`);
    if (offset >= this.windowStart && offset + length <= this.windowStart + this.window.length) {
      return this.window.subarray(offset - this.windowStart, offset - this.windowStart + length);
    }
    if (length > WINDOW_BYTES) return this.readExactly(offset, length);
    this.window = this.readExactly(offset, Math.min(WINDOW_BYTES, this.size - offset));
    this.windowStart = offset;
    return this.window.subarray(0, length);
  }

  close(): void {
    closeSync(this.fd);
  }

  private readExactly(offset: number, length: number): Buffer {
    const out = Buffer.allocUnsafe(length);
    let done = 0;
    while (done < length) {
      const n = readSync(this.fd, out, done, length - done, offset + done);
      if (n === 0) throw new ProtobufError(`unexpected end of file at byte ${offset + done}`);
      done += n;
    }
    return out;
  }
}

export class ProtobufError extends Error {
  override readonly name = 'ProtobufError';
}

export interface Field {
  number: number;
  wireType: number;
  /** varint, fixed32 and fixed64 values (fixed ones as raw unsigned bits). */
  int: bigint;
  /** where a length-delimited value lies in the source. */
  span: Span;
}

const MAX_VARINT_BYTES = 10;

function readVarint(source: ByteSource, offset: number, end: number): { value: bigint; next: number } {
  let value = 0n;
  let shift = 0n;
  for (let i = 0; i < MAX_VARINT_BYTES; i++) {
    if (offset + i >= end) throw new ProtobufError(`truncated varint at byte ${offset}`);
    const byte = source.read(offset + i, 1)[0]!;
    value |= BigInt(byte & 0x7f) << shift;
    if ((byte & 0x80) === 0) return { value, next: offset + i + 1 };
    shift += 7n;
  }
  throw new ProtobufError(`malformed varint at byte ${offset}`);
}

/** Walks the fields of the message stored in `span`, validating the wire format as it goes. */
export function* fields(source: ByteSource, span: Span = { offset: 0, length: source.size }): Generator<Field> {
  const end = span.offset + span.length;
  let pos = span.offset;
  while (pos < end) {
    const key = readVarint(source, pos, end);
    const number = Number(key.value >> 3n);
    const wireType = Number(key.value & 7n);
    if (number === 0) throw new ProtobufError(`invalid field number 0 at byte ${pos}`);
    pos = key.next;
    const field: Field = { number, wireType, int: 0n, span: { offset: pos, length: 0 } };
    switch (wireType) {
      case WIRE.varint: {
        const v = readVarint(source, pos, end);
        field.int = v.value;
        pos = v.next;
        break;
      }
      case WIRE.fixed64:
        if (pos + 8 > end) throw new ProtobufError(`truncated fixed64 at byte ${pos}`);
        field.int = source.read(pos, 8).readBigUInt64LE(0);
        pos += 8;
        break;
      case WIRE.fixed32:
        if (pos + 4 > end) throw new ProtobufError(`truncated fixed32 at byte ${pos}`);
        field.int = BigInt(source.read(pos, 4).readUInt32LE(0));
        pos += 4;
        break;
      case WIRE.bytes: {
        const len = readVarint(source, pos, end);
        const length = Number(len.value);
        if (len.next + length > end) {
          throw new ProtobufError(`field ${number} claims ${length} bytes at byte ${len.next}, past the end of its message`);
        }
        field.span = { offset: len.next, length };
        pos = len.next + length;
        break;
      }
      default:
        throw new ProtobufError(`unsupported wire type ${wireType} for field ${number} at byte ${pos}`);
    }
    yield field;
  }
}

export function readString(source: ByteSource, field: Field): string {
  return source.read(field.span.offset, field.span.length).toString('utf8');
}

/** Reads repeated varints, packed (one length-delimited field) or not (one field each); more than `max` is an error. */
export function readVarints(source: ByteSource, field: Field, max = Number.POSITIVE_INFINITY, what = `field ${field.number}`): bigint[] {
  if (field.wireType !== WIRE.bytes) return [field.int];
  const out: bigint[] = [];
  const end = field.span.offset + field.span.length;
  let pos = field.span.offset;
  while (pos < end) {
    if (out.length >= max) throw new ProtobufError(`${what} at byte ${field.span.offset} holds more than ${max} values`);
    const v = readVarint(source, pos, end);
    out.push(v.value);
    pos = v.next;
  }
  return out;
}

/** Interprets a varint as the int64 it encodes (two's complement). */
export function toInt64(value: bigint): bigint {
  return BigInt.asIntN(64, value);
}

/** Encodes messages as a list of parts, so a multi-GB bytes field can be streamed, not built. */
export interface StreamedBytes {
  length: number;
  chunks: () => Iterable<Buffer>;
}
export type Part = Buffer | StreamedBytes;

export function varintBytes(value: number | bigint): Buffer {
  let v = BigInt.asUintN(64, BigInt(value));
  const out: number[] = [];
  while (v >= 0x80n) {
    out.push(Number(v & 0x7fn) | 0x80);
    v >>= 7n;
  }
  out.push(Number(v));
  return Buffer.from(out);
}

function partLength(part: Part): number {
  return Buffer.isBuffer(part) ? part.length : part.length;
}

export class ProtoWriter {
  readonly parts: Part[] = [];

  get length(): number {
    return this.parts.reduce((sum, part) => sum + partLength(part), 0);
  }

  varint(number: number, value: number | bigint): this {
    this.parts.push(varintBytes((number << 3) | WIRE.varint), varintBytes(value));
    return this;
  }

  float(number: number, value: number): this {
    const b = Buffer.alloc(4);
    b.writeFloatLE(value);
    this.parts.push(varintBytes((number << 3) | WIRE.fixed32), b);
    return this;
  }

  /** A field whose value is already encoded for its wire type (fixed32/fixed64 copies). */
  raw(number: number, wireType: number, value: Buffer): this {
    this.parts.push(varintBytes((number << 3) | wireType), value);
    return this;
  }

  bytes(number: number, value: Buffer | StreamedBytes): this {
    this.parts.push(varintBytes((number << 3) | WIRE.bytes), varintBytes(partLength(value)), value);
    return this;
  }

  string(number: number, value: string): this {
    return this.bytes(number, Buffer.from(value, 'utf8'));
  }

  message(number: number, message: ProtoWriter): this {
    this.parts.push(varintBytes((number << 3) | WIRE.bytes), varintBytes(message.length), ...message.parts);
    return this;
  }

  packedVarints(number: number, values: readonly (number | bigint)[]): this {
    return this.bytes(number, Buffer.concat(values.map(varintBytes)));
  }

  packedFloats(number: number, values: readonly number[]): this {
    const b = Buffer.alloc(values.length * 4);
    values.forEach((v, i) => b.writeFloatLE(v, i * 4));
    return this.bytes(number, b);
  }

  /** The whole message in memory; only for messages without streamed parts. */
  toBuffer(): Buffer {
    return Buffer.concat(this.parts.map((part) => {
      if (Buffer.isBuffer(part)) return part;
      throw new Error('toBuffer() on a message with streamed bytes; use chunks()');
    }));
  }

  *chunks(): Generator<Buffer> {
    for (const part of this.parts) {
      if (Buffer.isBuffer(part)) yield part;
      else yield* part.chunks();
    }
  }
}
