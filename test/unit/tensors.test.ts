import { describe, expect, it } from 'vitest';
import { JSON_SLICE_ELEMENTS, concatBatch, fromBinary, fromJsonData, halfToNumber, jsonDataInSlices, jsonDataText, nest, numberToHalf, shapeMismatch, splitBatch, stringifyJson, toBinary, toJsonData, type WireTensor } from '../../src/inference/tensors.js';
import { isBatchable } from '../../src/inference/runtime.js';

describe('tensor conversion', () => {
  it('accepts flat and nested JSON data and checks the element count', () => {
    expect(Array.from(fromJsonData('x', 'float32', [2, 2], [[1, 2], [3, 4]]) as Float32Array)).toEqual([1, 2, 3, 4]);
    expect(Array.from(fromJsonData('x', 'int64', [2], [-5, 7]) as BigInt64Array)).toEqual([-5n, 7n]);
    expect(() => fromJsonData('x', 'float32', [2, 2], [1, 2, 3])).toThrow("input 'x': shape [2, 2] needs 4 elements, data has 3");
    // Nested data follows the shape: outer lists its leading dims, the innermost the rest, flat.
    expect(Array.from(fromJsonData('x', 'float32', [2, 2, 2], [[1, 2, 3, 4], [5, 6, 7, 8]]) as Float32Array)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(Array.from(fromJsonData('x', 'float32', [2, 2, 2], [[[1, 2], [3, 4]], [[5, 6], [7, 8]]]) as Float32Array)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(() => fromJsonData('x', 'float32', [2, 4], [[1, 2, 3], [5, 6, 7, 8, 9]])).toThrow("input 'x': nested data does not follow shape [2, 4]: a list at depth 1 holds 3 values, not 4");
    expect(() => fromJsonData('x', 'float32', [2, 4], [[1, 2], [3, 4], [5, 6], [7, 8]])).toThrow('a list at depth 0 holds 4 lists, not 2 lists');
    expect(() => fromJsonData('x', 'float32', [2, 2, 2], [[[1, 2], [3, 4]], [5, 6, 7, 8]])).toThrow('a list at depth 1 holds 4 values, not 2 lists');
    expect(() => fromJsonData('x', 'int32', [2, 2], [[1, 2], 3, 4])).toThrow('a list at depth 0 holds 3 values and lists, not 2 lists');
  });

  it('rejects elements of the wrong kind or out of range', () => {
    expect(() => fromJsonData('x', 'bool', [1], [1])).toThrow('expected true or false');
    expect(() => fromJsonData('x', 'uint8', [1], [256])).toThrow('an integer in [0, 255]');
    expect(() => fromJsonData('x', 'int32', [1], [1.5])).toThrow('an integer in');
    expect(() => fromJsonData('x', 'float32', [1], ['1'])).toThrow('expected a number');
    expect(() => fromJsonData('x', 'int64', [1], [2 ** 60])).toThrow('element 0 is beyond ±2^53, which a JSON number cannot carry exactly; send INT64 values that large in binary: KServe v2\'s binary tensor extension');
    expect(() => fromJsonData('x', 'int64', [1], [JSON.parse('9007199254740993')])).toThrow('beyond ±2^53');
    expect(() => fromJsonData('x', 'int64', [1], [1.5])).toThrow('an integer (int64)');
    expect(() => fromJsonData('x', 'int32', [1], [JSON.parse('1e999')])).toThrow('element 0 is Infinity (beyond float64)');
    expect(() => fromJsonData('x', 'uint64', [1], [-1])).toThrow('an integer (uint64)');
    expect(() => fromJsonData('x', 'string', [1], [3])).toThrow('expected a string');
    expect(() => fromJsonData('x', 'float16', [1], [1])).toThrow('FP16 data cannot be sent as JSON');
    // float32 beyond its range would become Infinity; float64 takes it.
    expect(() => fromJsonData('x', 'float32', [2], [1, 1e39])).toThrow("element 1 is 1e+39, expected a number within float32's range");
    expect(() => fromJsonData('x', 'float32', [1, 1], [[-1e39]])).toThrow("within float32's range");
    expect(Array.from(fromJsonData('x', 'float64', [1], [1e39]) as Float64Array)).toEqual([1e39]);
    expect(Array.from(fromJsonData('x', 'float32', [1], [3.4028235e38]) as Float32Array)).toEqual([3.4028234663852886e38]);
  });

  it('reads and writes binary tensors, BYTES with uint32 length prefixes', () => {
    const strings = { type: 'string' as const, dims: [2], data: ['ab', 'ü'] };
    const bytes = toBinary(strings);
    expect(bytes).toEqual(Buffer.from([2, 0, 0, 0, 0x61, 0x62, 2, 0, 0, 0, 0xc3, 0xbc]));
    expect(fromBinary('s', 'string', [2], bytes)).toEqual(['ab', 'ü']);
    expect(() => fromBinary('s', 'string', [3], bytes)).toThrow('needs 3 elements, binary data has 2');
    expect(() => fromBinary('s', 'string', [1], bytes.subarray(0, 5))).toThrow('runs past');
    const floats = Buffer.from(new Float32Array([1, 2, 3]).buffer);
    expect(Array.from(fromBinary('f', 'float32', [3], Buffer.concat([Buffer.alloc(1), floats]).subarray(1)) as Float32Array)).toEqual([1, 2, 3]);
    expect(() => fromBinary('f', 'float32', [4], floats)).toThrow('needs 16 bytes, its binary data holds 12');
  });

  it('refuses BYTES that onnxruntime would change: not UTF-8, or holding a NUL', () => {
    const prefixed = (...elements: Buffer[]) => Buffer.concat(elements.flatMap((e) => [Buffer.from(new Uint32Array([e.length]).buffer), e]));
    expect(fromBinary('s', 'string', [2], prefixed(Buffer.from('\ufeffé'), Buffer.from('ok')))).toEqual(['\ufeffé', 'ok']); // a BOM is kept
    expect(() => fromBinary('s', 'string', [1], prefixed(Buffer.from([0xff, 0xfe])))).toThrow("input 's': BYTES element 0 is not valid UTF-8");
    expect(() => fromBinary('s', 'string', [2], prefixed(Buffer.from('x'), Buffer.from('a\0b')))).toThrow("input 's': BYTES element 1 holds a NUL character");
    expect(() => fromJsonData('s', 'string', [1], ['é\u0000'])).toThrow('holds a NUL character');
    expect(fromJsonData('s', 'string', [2], [Buffer.from('gRPC'), 'json'])).toEqual(['gRPC', 'json']); // bytes_contents arrive as bytes
    expect(() => fromJsonData('s', 'string', [1], [Buffer.from([0xc3])])).toThrow('not valid UTF-8');
  });

  it('writes JSON values: booleans, half floats, int64 as numbers, non-finite as null', () => {
    expect(toJsonData({ type: 'bool', dims: [2], data: Uint8Array.from([1, 0]) })).toEqual([true, false]);
    expect(toJsonData({ type: 'float16', dims: [3], data: Uint16Array.from([0x3c00, 0xc000, 0x7c00]) })).toEqual([1, -2, Infinity]);
    expect(toJsonData({ type: 'float32', dims: [2], data: Float32Array.from([NaN, 1]) })).toEqual([null, 1]);
    expect(halfToNumber(0x0001)).toBeCloseTo(5.96e-8, 9);
  });

  it('writes the JSON text of every datatype as JSON.stringify of its values would, int64 exact', () => {
    const tensors: WireTensor[] = [
      { type: 'float32', dims: [5], data: Float32Array.from([0.1, -0, 1e-7, 3.4e38, -2]) },
      { type: 'float32', dims: [3], data: Float32Array.from([1, NaN, -Infinity]) },
      { type: 'float64', dims: [3], data: Float64Array.from([Math.PI, 5e-324, Infinity]) },
      { type: 'int64', dims: [3], data: BigInt64Array.from([-(2n ** 63n), 0n, 2n ** 53n + 1n]) },
      { type: 'uint64', dims: [1], data: BigUint64Array.from([2n ** 64n - 1n]) },
      { type: 'int32', dims: [2], data: Int32Array.from([-7, 2 ** 31 - 1]) },
      { type: 'uint8', dims: [2], data: Uint8Array.from([0, 255]) },
      { type: 'bool', dims: [2], data: Uint8Array.from([2, 0]) },
      { type: 'float16', dims: [2], data: Uint16Array.from([0x3c00, 0x7e00]) },
      { type: 'string', dims: [2], data: ['a "quoted"\n', 'é'] },
      { type: 'float32', dims: [0], data: new Float32Array(0) },
    ];
    for (const tensor of tensors) expect(jsonDataText(tensor)).toBe(stringifyJson(toJsonData(tensor, true)));
    expect(jsonDataText(tensors[3]!)).toBe('[-9223372036854775808,0,9007199254740993]');
    expect(JSON.parse(jsonDataText(tensors[1]!))).toEqual([1, null, null]);
  });

  it('writes a large JSON answer in slices, the same text, letting the event loop run between them', async () => {
    const n = JSON_SLICE_ELEMENTS * 3 + 5;
    const floats = Float32Array.from({ length: n }, (_, i) => i / 7);
    floats[JSON_SLICE_ELEMENTS + 1] = NaN; // a slice with non-finite values, beside ones without
    const tensors: WireTensor[] = [
      { type: 'float32', dims: [n], data: floats },
      { type: 'int64', dims: [n], data: BigInt64Array.from({ length: n }, (_, i) => BigInt(i) * 9007199254740993n) },
      { type: 'float16', dims: [n], data: Uint16Array.from({ length: n }, (_, i) => i % 0x7c00) },
      { type: 'bool', dims: [n], data: Uint8Array.from({ length: n }, (_, i) => i % 2) },
      { type: 'string', dims: [n], data: Array.from({ length: n }, (_, i) => `s"${i}`) },
    ];
    for (const tensor of tensors) {
      let otherWorkRan = false;
      const writing = jsonDataInSlices(tensor);
      setImmediate(() => (otherWorkRan = true));
      expect(Buffer.concat(await writing).toString()).toBe(jsonDataText(tensor));
      expect(otherWorkRan, tensor.type).toBe(true);
    }
  });

  it('rounds numbers to float16 bits straight from float64, to nearest even', () => {
    // Every finite half round-trips, every midpoint goes to the even neighbour, and a hair off
    // a midpoint goes to the nearer one (through float32 that hair is lost: a double rounding).
    for (let bits = 0; bits < 0x7c00; bits++) {
      const value = halfToNumber(bits);
      expect(numberToHalf(value)).toBe(bits);
      expect(numberToHalf(-value)).toBe(bits | 0x8000);
      if (bits === 0x7bff) continue;
      const step = halfToNumber(bits + 1) - value;
      const mid = value + step / 2;
      if (numberToHalf(mid) !== (bits % 2 === 0 ? bits : bits + 1)) expect.fail(`tie above ${bits.toString(16)}`);
      if (numberToHalf(mid + step / 1e6) !== bits + 1 || numberToHalf(mid - step / 1e6) !== bits) expect.fail(`near tie above ${bits.toString(16)}`);
    }
    expect(numberToHalf(1 + 2 ** -11 + 2 ** -40)).toBe(0x3c01);
    expect(numberToHalf(65519.99)).toBe(0x7bff);
    for (const beyond of [65520, -65520, 1e300, Infinity, NaN]) expect(numberToHalf(beyond)).toBeUndefined();
    expect(numberToHalf(2 ** -26)).toBe(0);
    expect(numberToHalf(-0)).toBe(0x8000);
  });

  it('takes FP16 as JSON numbers only when asked (TF Serving, our own clients)', () => {
    expect(Array.from(fromJsonData('h', 'float16', [1, 3], [[1, -2, 0.1]], { float16Numbers: true }) as Uint16Array)).toEqual([0x3c00, 0xc000, 0x2e66]);
    expect(() => fromJsonData('h', 'float16', [1], [7e4], { float16Numbers: true })).toThrow("input 'h': element 0 is 70000, expected a number within float16's range (±65504)");
    expect(() => fromJsonData('h', 'float16', [1], [true], { float16Numbers: true })).toThrow('element 0 is true, expected a number (float16)');
    expect(() => fromJsonData('h', 'float16', [1], [1])).toThrow('FP16 data cannot be sent as JSON');
  });

  it('concatenates and splits along the batch dim', () => {
    const a = { type: 'float32' as const, dims: [1, 2], data: Float32Array.from([1, 2]) };
    const b = { type: 'float32' as const, dims: [2, 2], data: Float32Array.from([3, 4, 5, 6]) };
    const merged = concatBatch([a, b]);
    expect(merged.dims).toEqual([3, 2]);
    const [x, y] = splitBatch(merged, [1, 2]);
    expect(Array.from(x!.data as Float32Array)).toEqual([1, 2]);
    expect(y!.dims).toEqual([2, 2]);
    expect(concatBatch([{ type: 'string', dims: [1], data: ['a'] }, { type: 'string', dims: [1], data: ['b'] }]).data).toEqual(['a', 'b']);
  });

  it('nests rows and checks shapes against the signature', () => {
    expect(nest([1, 2, 3, 4, 5, 6], [2, 3])).toEqual([[1, 2, 3], [4, 5, 6]]);
    expect(nest([7], [])).toBe(7);
    expect(shapeMismatch([1, 4], ['batch', 4])).toBeUndefined();
    expect(shapeMismatch([1, 5], ['batch', 4])).toBe('dim 1 is 5, the model expects 4');
    expect(shapeMismatch([4], ['batch', 4])).toContain('rank 1, the model expects rank 2');
  });

  it('batches only models whose every input and output has a free first dim', () => {
    const spec = (shape: (number | string | null)[] | null) => ({ name: 'x', dtype: 'float32', shape });
    expect(isBatchable({ inputs: [spec(['n', 4])], outputs: [spec([null, 2])] })).toBe(true);
    expect(isBatchable({ inputs: [spec([1, 4])], outputs: [spec(['n', 2])] })).toBe(false);
    expect(isBatchable({ inputs: [spec(['n', 4])], outputs: [spec([])] })).toBe(false);
  });
});
