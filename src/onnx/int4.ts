/**
 * int4 weights for large MatMuls, as onnxruntime's MatMulNBits (com.microsoft) computes them:
 * each output column's weights in blocks of `blockSize` along K, each block 4-bit asymmetric with
 * its own float scale and 4-bit zero point (w ≈ (q - zp) · scale). Packed as the kernel reads them:
 *
 *   B            uint8 [N, blocks, blockSize / 2], two values a byte, the lower index in the low nibble
 *   scales       float [N · blocks]
 *   zero_points  uint8 [N · ceil(blocks / 2)], two a byte, low nibble first
 *
 * A K that is not a multiple of the block is padded with zeros (q = zp). `accuracyLevel` is
 * MatMulNBits' own: 0 unset, 1 float32, 2 float16, 3 bfloat16, 4 int8 activations (fastest on CPU).
 */
import { MaasError } from '../core/errors.js';
import { DataType } from './dtypes.js';
import { type EditModel, type EditNode, allGraphs, floatWeights, requireOpset, uniqueName } from './edit.js';
import { removeUnused } from './quantize.js';
import { inferTypes } from './types.js';

export interface Int4Options {
  blockSize: number;
  accuracyLevel: number;
  /** weights with fewer elements stay float32: their int4 blocks would cost more than they save. */
  minElements: number;
}

export interface Int4Report {
  blockSize: number;
  accuracyLevel: number;
  quantized: { name: string; k: number; n: number }[];
  skipped: { name: string; reason: string }[];
}

/** Packs a [K, N] float weight; exported for the tests, which dequantize it back. */
export function packInt4(values: Float32Array, k: number, n: number, blockSize: number): { b: Uint8Array; scales: Float32Array; zeroPoints: Uint8Array; blocks: number } {
  const blocks = Math.ceil(k / blockSize);
  const b = new Uint8Array(n * blocks * (blockSize / 2));
  const scales = new Float32Array(n * blocks);
  const zeroBytes = Math.ceil(blocks / 2);
  const zeroPoints = new Uint8Array(n * zeroBytes);
  const q = new Uint8Array(blockSize);
  for (let col = 0; col < n; col++) {
    for (let blk = 0; blk < blocks; blk++) {
      const v = new Float32Array(blockSize);
      let min = 0;
      let max = 0;
      for (let i = 0; i < blockSize; i++) {
        const row = blk * blockSize + i;
        v[i] = row < k ? values[row * n + col]! : 0;
        if (v[i]! < min) min = v[i]!;
        if (v[i]! > max) max = v[i]!;
      }
      // The block's range, or a little less: clipping the extremes can cost less than coarser steps everywhere.
      let best = { error: Number.POSITIVE_INFINITY, scale: 1, zp: 0 };
      for (const shrink of CLIP_RATIOS) {
        const lo = min * shrink;
        const hi = max * shrink;
        const scale = hi > lo ? (hi - lo) / 15 : 1;
        const zp = Math.max(0, Math.min(15, Math.round(-lo / scale)));
        let error = 0;
        for (let i = 0; i < blockSize; i++) {
          const d = (Math.max(0, Math.min(15, Math.round(v[i]! / scale) + zp)) - zp) * scale - v[i]!;
          error += d * d;
        }
        if (error < best.error) best = { error, scale, zp };
      }
      const { scale, zp } = best;
      for (let i = 0; i < blockSize; i++) q[i] = Math.max(0, Math.min(15, Math.round(v[i]! / scale) + zp));
      const base = (col * blocks + blk) * (blockSize / 2);
      for (let j = 0; j < blockSize / 2; j++) b[base + j] = q[2 * j]! | (q[2 * j + 1]! << 4);
      scales[col * blocks + blk] = scale;
      zeroPoints[col * zeroBytes + (blk >> 1)]! |= blk & 1 ? zp << 4 : zp;
    }
  }
  return { b, scales, zeroPoints, blocks };
}

/** Fractions of a block's range tried for its scale; the one with the least squared error is kept. */
const CLIP_RATIOS = [1, 0.95, 0.9, 0.85, 0.8, 0.75];

const bytesOf = (a: ArrayBufferView) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);

export function quantizeInt4(model: EditModel, options: Int4Options): Int4Report {
  if (options.blockSize < 16 || (options.blockSize & (options.blockSize - 1)) !== 0) {
    throw new MaasError('MAAS_USAGE', `int4 block size ${options.blockSize} is not a power of two of at least 16, which MatMulNBits needs`);
  }
  const report: Int4Report = { blockSize: options.blockSize, accuracyLevel: options.accuracyLevel, quantized: [], skipped: [] };
  const graphs = [...allGraphs(model.graph)];
  for (const { graph, outer } of graphs) {
    const types = inferTypes(graph);
    const weights = floatWeights(model, graph, outer);
    const out: EditNode[] = [];
    for (const node of graph.nodes) {
      const name = node.inputs[1] ?? '';
      const w = weights.get(name);
      const plain = node.op === 'MatMul' && (node.domain === '' || node.domain === 'ai.onnx') && types.get(node.inputs[0] ?? '') === DataType.FLOAT;
      if (!plain || !w) {
        out.push(node);
        continue;
      }
      if (w.dims.length !== 2) {
        report.skipped.push({ name, reason: `a ${w.dims.length}-d weight (MatMulNBits takes 2-d)` });
        out.push(node);
        continue;
      }
      const [k, n] = [w.dims[0]!, w.dims[1]!];
      if (k * n < options.minElements) {
        report.skipped.push({ name, reason: `${k}×${n} is under ${options.minElements} elements` });
        out.push(node);
        continue;
      }
      const packed = packInt4(w.values(), k, n, options.blockSize);
      const added = [
        { name: uniqueName(model, `${name}_int4`), dataType: DataType.UINT8, dims: [n, packed.blocks, options.blockSize / 2], raw: bytesOf(packed.b) },
        { name: uniqueName(model, `${name}_int4_scales`), dataType: DataType.FLOAT, dims: [n * packed.blocks], raw: bytesOf(packed.scales) },
        { name: uniqueName(model, `${name}_int4_zero_points`), dataType: DataType.UINT8, dims: [packed.zeroPoints.length], raw: bytesOf(packed.zeroPoints) },
      ];
      graph.initializers.push(...added);
      out.push({
        op: 'MatMulNBits', domain: 'com.microsoft', name: uniqueName(model, `${node.name || node.outputs[0]}_int4`),
        inputs: [node.inputs[0]!, ...added.map((t) => t.name)], outputs: [...node.outputs],
        attributes: [
          { name: 'K', value: BigInt(k) }, { name: 'N', value: BigInt(n) }, { name: 'bits', value: 4n },
          { name: 'block_size', value: BigInt(options.blockSize) }, { name: 'accuracy_level', value: BigInt(options.accuracyLevel) },
        ],
      });
      report.quantized.push({ name, k, n });
    }
    graph.nodes = out;
  }
  for (const { graph } of graphs.reverse()) removeUnused(graph);
  if (report.quantized.length === 0) {
    throw new MaasError('MAAS_MODEL_INVALID', 'nothing to quantize to int4: no large float32 MatMul weight found', {
      hint: report.skipped.length ? `Skipped: ${report.skipped.slice(0, 5).map((s) => `${s.name} (${s.reason})`).join('; ')}.` : 'int4 applies to MatMul weights stored as initializers or Constant nodes.',
    });
  }
  requireOpset(model, 'com.microsoft', 1);
  return report;
}
