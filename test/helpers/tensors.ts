/** A [2, 2] sample of every datatype the fixtures' all_types model takes, in JSON, typed and binary form. */
import type * as ort from 'onnxruntime-node';

/** Values for a [2, 2] tensor of each type, in JSON and in the typed form onnxruntime takes. */
export const SAMPLES: Record<string, { json: unknown[]; typed: () => ort.Tensor['data'] }> = {
  bool: { json: [true, false, false, true], typed: () => Uint8Array.from([1, 0, 0, 1]) },
  uint8: { json: [0, 1, 254, 255], typed: () => Uint8Array.from([0, 1, 254, 255]) },
  uint16: { json: [0, 1, 65534, 65535], typed: () => Uint16Array.from([0, 1, 65534, 65535]) },
  uint32: { json: [0, 1, 4294967294, 4294967295], typed: () => Uint32Array.from([0, 1, 4294967294, 4294967295]) },
  uint64: { json: [0, 1, 2 ** 40, 2 ** 53 - 1], typed: () => BigUint64Array.from([0n, 1n, 2n ** 40n, 2n ** 53n - 1n]) },
  int8: { json: [-128, -1, 0, 127], typed: () => Int8Array.from([-128, -1, 0, 127]) },
  int16: { json: [-32768, -1, 0, 32767], typed: () => Int16Array.from([-32768, -1, 0, 32767]) },
  int32: { json: [-2147483648, -1, 0, 2147483647], typed: () => Int32Array.from([-2147483648, -1, 0, 2147483647]) },
  int64: { json: [-(2 ** 53) + 1, -1, 0, 2 ** 53 - 1], typed: () => BigInt64Array.from([-(2n ** 53n) + 1n, -1n, 0n, 2n ** 53n - 1n]) },
  float16: { json: [1, -2, 0.5, 65504], typed: () => Uint16Array.from([0x3c00, 0xc000, 0x3800, 0x7bff]) },
  float32: { json: [1.5, -2.25, 0, 1024.125], typed: () => Float32Array.from([1.5, -2.25, 0, 1024.125]) },
  float64: { json: [1e-300, -2.5, 0, 1e300], typed: () => Float64Array.from([1e-300, -2.5, 0, 1e300]) },
  string: { json: ['', 'héllo', 'a b', '日本'], typed: () => ['', 'héllo', 'a b', '日本'] },
};
export const DATATYPE: Record<string, string> = {
  bool: 'BOOL', uint8: 'UINT8', uint16: 'UINT16', uint32: 'UINT32', uint64: 'UINT64', int8: 'INT8', int16: 'INT16', int32: 'INT32', int64: 'INT64',
  float16: 'FP16', float32: 'FP32', float64: 'FP64', string: 'BYTES',
};

export function binaryOf(type: string): Buffer {
  const data = SAMPLES[type]!.typed();
  if (Array.isArray(data)) {
    return Buffer.concat(data.flatMap((s: string) => {
      const b = Buffer.from(s);
      const len = Buffer.alloc(4);
      len.writeUInt32LE(b.length);
      return [len, b];
    }));
  }
  const view = data as Uint8Array;
  return Buffer.from(view.buffer, view.byteOffset, view.byteLength);
}
