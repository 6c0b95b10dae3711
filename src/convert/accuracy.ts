/**
 * Proof that a converted model still answers the same: original and converted run on the same
 * seeded inputs (generated from the signature) and every output is compared.
 */
import { MaasError, messageOf } from '../core/errors.js';
import { oneShotRuntime } from '../inference/config.js';
import { SEEDED_SAMPLES } from './config.js';
import { withRuntimes } from '../inference/runtime.js';
import { sampleFeeds } from '../inference/samples.js';
import { type TensorData, type WireTensor, halfToNumber } from '../inference/tensors.js';
import { toHalf } from '../onnx/fp16.js';
import { type Signature, inspectModel } from '../onnx/inspect.js';
import type { AccuracyReport, OutputAccuracy } from '../registry/manifest.js';

/** Numbers of a float tensor; float16 arrives as raw bits. */
function numbers(t: WireTensor): number[] {
  return t.type === 'float16' ? Array.from(t.data as Uint16Array, halfToNumber) : Array.from(t.data as Float32Array, Number);
}

/** The same sample for a model whose inputs became float16. */
function asInputsOf(feeds: Record<string, WireTensor>, signature: Signature): Record<string, WireTensor> {
  const out: Record<string, WireTensor> = {};
  for (const [name, t] of Object.entries(feeds)) {
    const wanted = signature.inputs.find((i) => i.name === name)?.dtype;
    out[name] = wanted === 'float16' && t.type === 'float32'
      ? { type: 'float16', dims: t.dims, data: Uint16Array.from(t.data as Float32Array, toHalf) }
      : { ...t, data: t.data.slice() as TensorData };
  }
  return out;
}

/**
 * The smallest scale an error is measured against: an output whose values are all near zero (a
 * sigmoid map with nothing detected) would otherwise turn a 1e-7 difference into a large ratio.
 */
const NORMALIZATION_FLOOR = 1e-3;

/** The original's smallest and largest value of an output over every input compared. */
type Range = { min: number; max: number };

function compare(name: string, a: WireTensor, b: WireTensor, range: Range): OutputAccuracy {
  const x = numbers(a);
  const y = numbers(b);
  for (const v of x) {
    range.min = Math.min(range.min, v);
    range.max = Math.max(range.max, v);
  }
  let maxAbs = 0;
  let maxRef = 0;
  let dot = 0;
  let nx = 0;
  let ny = 0;
  for (let i = 0; i < x.length; i++) {
    maxAbs = Math.max(maxAbs, Math.abs(x[i]! - (y[i] ?? NaN)));
    maxRef = Math.max(maxRef, Math.abs(x[i]!));
    dot += x[i]! * y[i]!;
    nx += x[i]! * x[i]!;
    ny += y[i]! * y[i]!;
  }
  const cosine = nx === 0 && ny === 0 ? 1 : dot / (Math.sqrt(nx) * Math.sqrt(ny) || 1);
  return { name, maxAbsError: maxAbs, normalizedError: maxAbs / Math.max(maxRef, NORMALIZATION_FLOOR), cosine };
}

/** Runs both models on `samples` seeded inputs and compares every output. */
export async function compareModels(
  original: string,
  converted: string,
  signature: Signature,
  options: { samples?: number; tolerance: number; extraSamples?: Record<string, WireTensor>[] },
): Promise<AccuracyReport> {
  const seededCount = options.samples ?? SEEDED_SAMPLES;
  const extra = options.extraSamples ?? [];
  const inputs = [...Array.from({ length: seededCount }, (_, s) => ({ feeds: sampleFeeds(signature, 1234 + s), seeded: true })), ...extra.map((feeds) => ({ feeds, seeded: false }))];
  const convertedSignature = inspectModel(converted).signature;
  const specs = [
    { name: 'original', version: 0, signature, modelPath: original },
    { name: 'converted', version: 0, signature: convertedSignature, modelPath: converted },
  ];
  return withRuntimes(specs, oneShotRuntime('cpu', inputs.length), async ([a, b]) => {
    const worst = new Map<string, OutputAccuracy>();
    const outputs = signature.outputs.map((o) => o.name);
    const ranges = new Map(outputs.map((name) => [name, { min: Infinity, max: -Infinity }]));
    let samples = 0;
    let refused: string | undefined;
    for (const [i, { feeds, seeded }] of inputs.entries()) {
      let ra: Record<string, WireTensor>;
      try {
        ra = await a!.infer({ feeds: asInputsOf(feeds, signature), outputs });
      } catch (error) {
        // Generated values may not suit a model (a minimum length, an index range): real samples then decide.
        const why = messageOf(error).replace(/^onnxruntime failed on original@0: /, '');
        if (!seeded) throw new MaasError('MAAS_BAD_INPUT', `the original model fails on sample ${i - seededCount + 1} of --samples: ${why}`, { hint: 'Give requests the original model answers.' });
        refused ??= why;
        continue;
      }
      let rb: Record<string, WireTensor>;
      try {
        rb = await b!.infer({ feeds: asInputsOf(feeds, convertedSignature), outputs });
      } catch (error) {
        throw new MaasError('MAAS_CONVERSION_FAILED', `the converted model fails where the original runs (${seeded ? `seeded input ${i + 1}` : `sample ${i - seededCount + 1}`}): ${messageOf(error).replace(/^onnxruntime failed on converted@0: /, '')}`, {
          hint: 'Nothing was written. This is a defect of the conversion, not of your model; please report it.',
        });
      }
      samples++;
      for (const name of outputs) {
        const c = compare(name, ra[name]!, rb[name]!, ranges.get(name)!);
        const prev = worst.get(name);
        if (!prev || c.normalizedError > prev.normalizedError) worst.set(name, { ...c, cosine: Math.min(c.cosine, prev?.cosine ?? 1) });
      }
    }
    if (samples === 0) {
      throw new MaasError('MAAS_USAGE', `the model refuses every generated input (${refused}), so the conversion cannot be checked`, {
        hint: 'Pass --samples FILE with a few real KServe v2 infer requests (JSON, a JSON array or JSON Lines); nothing was written.',
      });
    }
    // A detector that finds nothing in noise answers zeros whatever its weights: no proof either way.
    const list = [...worst.values()].map((o) => {
      const range = ranges.get(o.name)!;
      return range.max - range.min <= NORMALIZATION_FLOOR ? { ...o, constant: true } : o;
    });
    const worstError = Math.max(0, ...list.map((o) => o.normalizedError));
    const informative = list.some((o) => !o.constant);
    return { samples, outputs: list, worst: worstError, tolerance: options.tolerance, passed: informative && worstError <= options.tolerance };
  });
}
