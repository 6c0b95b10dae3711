/** Generated inputs that fit a signature: convert's accuracy proof, and each runtime's warm-up and cost probe. */
import { seededRandom } from '../core/random.js';
import type { Signature } from '../onnx/inspect.js';
import { type OrtType, type TensorData, type WireTensor, ortTypeOfOnnx, zeros } from './tensors.js';

/**
 * Inputs for one sample: symbolic dims become `symbolic` (2 by default; a probe of one row
 * passes 1 for the batch dim), unknown ones 1; values seeded per dtype.
 */
export function sampleFeeds(signature: Signature, seed: number, symbolic: (dim: number) => number = () => 2): Record<string, WireTensor> {
  const next = seededRandom(seed);
  const feeds: Record<string, WireTensor> = {};
  for (const input of signature.inputs) {
    const type = ortTypeOfOnnx(input.dtype) as OrtType;
    const dims = (input.shape ?? []).map((d, i) => (typeof d === 'number' ? d : d === null ? 1 : symbolic(i)));
    const n = dims.reduce((a, b) => a * b, 1);
    let data: TensorData;
    if (type === 'float32') data = Float32Array.from({ length: n }, () => next() * 2 - 1);
    else if (type === 'float64') data = Float64Array.from({ length: n }, () => next() * 2 - 1);
    else if (type === 'int64') data = BigInt64Array.from({ length: n }, () => BigInt(Math.floor(next() * 8)));
    else if (type === 'int32') data = Int32Array.from({ length: n }, () => Math.floor(next() * 8));
    else if (type === 'bool') data = Uint8Array.from({ length: n }, () => (next() < 0.5 ? 1 : 0));
    else if (type === 'string') data = Array.from({ length: n }, (_, i) => `sample-${i}`);
    else data = zeros(type, n);
    feeds[input.name] = { type, dims, data };
  }
  return feeds;
}
