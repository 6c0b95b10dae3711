import { describe, expect, it } from 'vitest';
import { BufferSource, ProtobufError, ProtoWriter, fields, readString, readVarints, toInt64 } from '../../src/onnx/protobuf.js';

describe('protobuf wire format', () => {
  it('round-trips varints, negative int64, strings, floats and nested messages', () => {
    const inner = new ProtoWriter().string(1, 'héllo').float(2, 1.5);
    const bytes = new ProtoWriter().varint(1, 300).varint(2, -1n).message(3, inner).packedVarints(4, [1, 2, 300]).toBuffer();
    const source = new BufferSource(bytes);
    const got = [...fields(source)];
    expect(got.map((f) => f.number)).toEqual([1, 2, 3, 4]);
    expect(got[0]!.int).toBe(300n);
    expect(toInt64(got[1]!.int)).toBe(-1n);
    const nested = [...fields(source, got[2]!.span)];
    expect(readString(source, nested[0]!)).toBe('héllo');
    expect(nested[1]!.wireType).toBe(5);
    expect(readVarints(source, got[3]!)).toEqual([1n, 2n, 300n]);
  });

  it('reports a length-delimited field that runs past its message', () => {
    const bytes = new ProtoWriter().string(1, 'abcdef').toBuffer().subarray(0, 5);
    expect(() => [...fields(new BufferSource(bytes))]).toThrow(ProtobufError);
  });

  it('rejects a varint that never ends and field number 0', () => {
    expect(() => [...fields(new BufferSource(Buffer.from([0x08, 0xff, 0xff])))]).toThrow(/truncated varint/);
    expect(() => [...fields(new BufferSource(Buffer.from([0x00, 0x01])))]).toThrow(/field number 0/);
  });

  it('streams bytes fields it was given as chunks without building them', () => {
    const chunk = Buffer.alloc(4, 7);
    const w = new ProtoWriter().bytes(9, { length: 12, *chunks() { yield chunk; yield chunk; yield chunk; } });
    const out = Buffer.concat([...w.chunks()]);
    expect(out.length).toBe(w.length);
    const [f] = [...fields(new BufferSource(out))];
    expect(f!.span.length).toBe(12);
    expect(() => w.toBuffer()).toThrow(/streamed/);
  });
});
