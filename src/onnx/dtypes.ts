/** ONNX TensorProto.DataType: the wire enum, the name users see, and the element size in bytes. */
interface DtypeInfo {
  name: string;
  /** bytes per element; 0 for strings, fractional for packed 4- and 2-bit types. */
  bytes: number;
}

const DTYPES: Record<number, DtypeInfo> = {
  1: { name: 'float32', bytes: 4 },
  2: { name: 'uint8', bytes: 1 },
  3: { name: 'int8', bytes: 1 },
  4: { name: 'uint16', bytes: 2 },
  5: { name: 'int16', bytes: 2 },
  6: { name: 'int32', bytes: 4 },
  7: { name: 'int64', bytes: 8 },
  8: { name: 'string', bytes: 0 },
  9: { name: 'bool', bytes: 1 },
  10: { name: 'float16', bytes: 2 },
  11: { name: 'float64', bytes: 8 },
  12: { name: 'uint32', bytes: 4 },
  13: { name: 'uint64', bytes: 8 },
  14: { name: 'complex64', bytes: 8 },
  15: { name: 'complex128', bytes: 16 },
  16: { name: 'bfloat16', bytes: 2 },
  17: { name: 'float8e4m3fn', bytes: 1 },
  18: { name: 'float8e4m3fnuz', bytes: 1 },
  19: { name: 'float8e5m2', bytes: 1 },
  20: { name: 'float8e5m2fnuz', bytes: 1 },
  21: { name: 'uint4', bytes: 0.5 },
  22: { name: 'int4', bytes: 0.5 },
  23: { name: 'float4e2m1', bytes: 0.5 },
  24: { name: 'float8e8m0', bytes: 1 },
  25: { name: 'uint2', bytes: 0.25 },
  26: { name: 'int2', bytes: 0.25 },
};

export const DataType = {
  FLOAT: 1,
  UINT8: 2,
  INT8: 3,
  INT32: 6,
  INT64: 7,
  STRING: 8,
  BOOL: 9,
  FLOAT16: 10,
  DOUBLE: 11,
} as const;

export function dtypeName(code: number): string {
  return DTYPES[code]?.name ?? `unknown(${code})`;
}

export function dtypeBytes(code: number): number {
  return DTYPES[code]?.bytes ?? 0;
}

/** ModelPack's `config.precision` vocabulary, for the dtypes that have a name there. */
const MODELPACK_PRECISION: Record<string, string> = {
  float32: 'float32', float64: 'float64', float16: 'float16', bfloat16: 'bfloat16',
  float8e4m3fn: 'float8_e4m3', float8e5m2: 'float8_e5m2', complex64: 'complex64', complex128: 'complex128',
  int8: 'int8', int16: 'int16', int32: 'int32', int64: 'int64',
  uint8: 'uint8', uint16: 'uint16', uint32: 'uint32', uint64: 'uint64', bool: 'bool',
};

export function modelPackPrecision(dtype: string): string | undefined {
  return MODELPACK_PRECISION[dtype];
}
