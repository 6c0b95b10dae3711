/**
 * Calibration for int8 static: the float model runs on the user's samples with the activations
 * around its MatMul, Gemm and Conv nodes exposed as extra outputs, and each activation's range is
 * kept: its min and max, or (percentile) the 0.01 % and 99.99 % points, which ignore the rare
 * outliers that would waste most of the 256 levels.
 */
import { readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { MaasError } from '../core/errors.js';
import { makeTempFolder, removeTempFolder } from '../core/fs.js';
import type { CalibrationMethod } from './config.js';
import { oneShotRuntime } from '../inference/config.js';
import { decodeInferRequest, parseRequests } from '../inference/protocol.js';
import { withRuntimes } from '../inference/runtime.js';
import { DataType } from '../onnx/dtypes.js';
import { openModel, writeModel } from '../onnx/edit.js';
import { inspectModel } from '../onnx/inspect.js';
import { type ValueRange, quantizableActivations } from '../onnx/quantize.js';


/** Values kept per activation for the percentile method: a strided sample of every run's values. */
const PERCENTILE_SAMPLE = 1 << 20;
/** A calibration file is a few hundred requests, not a data set. */
const MAX_CALIBRATION_BYTES = 256 << 20;

/** One activation's running range and, for percentiles, a bounded sample of its values. */
class Observed {
  min = Number.POSITIVE_INFINITY;
  max = Number.NEGATIVE_INFINITY;
  readonly sample: number[] = [];

  add(values: Float32Array, keep: boolean): void {
    for (let i = 0; i < values.length; i++) {
      const v = values[i]!;
      if (v < this.min) this.min = v;
      if (v > this.max) this.max = v;
    }
    if (keep) {
      const stride = Math.max(1, Math.ceil(values.length / (PERCENTILE_SAMPLE / 16)));
      for (let i = 0; i < values.length && this.sample.length < PERCENTILE_SAMPLE; i += stride) this.sample.push(values[i]!);
    }
  }

  range(method: CalibrationMethod): ValueRange {
    if (method === 'minmax' || this.sample.length < 100) return { min: this.min, max: this.max };
    const sorted = Float32Array.from(this.sample).sort();
    const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
    return { min: at(0.0001), max: at(0.9999) };
  }
}

export async function calibrate(modelPath: string, samplesFile: string | undefined, options: { method: CalibrationMethod; cwd: string; onStep?: (label: string | undefined) => void }): Promise<Map<string, ValueRange>> {
  if (samplesFile === undefined) {
    throw new MaasError('MAAS_USAGE', 'int8 static needs calibration data', { hint: 'Pass --calibrate samples.jsonl: a few dozen to a few hundred KServe v2 infer requests like real traffic (JSON, a JSON array or JSON Lines).' });
  }
  const path = resolve(options.cwd, samplesFile);
  let size: number;
  try {
    size = statSync(path).size;
  } catch {
    throw new MaasError('MAAS_FILE_NOT_FOUND', `--calibrate ${samplesFile} does not exist`, { hint: 'Give a file of KServe v2 infer requests.' });
  }
  if (size > MAX_CALIBRATION_BYTES) throw new MaasError('MAAS_USAGE', `--calibrate ${samplesFile} is larger than ${MAX_CALIBRATION_BYTES} bytes`, { hint: 'A few hundred representative requests are enough.' });
  const signature = inspectModel(modelPath).signature;
  const requests = parseRequests(readFileSync(path, 'utf8'), `--calibrate ${samplesFile}`);
  const samples = requests.map((request, i) => {
    try {
      return decodeInferRequest(request, Buffer.alloc(0), signature).feeds;
    } catch (error) {
      throw new MaasError('MAAS_BAD_INPUT', `calibration request ${i + 1} in ${samplesFile}: ${(error as Error).message}`, { hint: 'Each request must fit the model\'s signature (maas show NAME@V lists it).' });
    }
  });
  if (samples.length === 0) throw new MaasError('MAAS_USAGE', `--calibrate ${samplesFile} holds no request`, { hint: 'Give at least one KServe v2 infer request; a few dozen are better.' });

  // The model with every activation to measure as an extra output.
  const work = makeTempFolder('maas-calibrate-');
  try {
    const exposed = join(work, 'exposed.onnx');
    const model = openModel(modelPath);
    let names: string[];
    let inputs: string[];
    try {
      const outputs = new Set(model.graph.outputs.map((o) => o.name));
      const graphInputs = new Set(model.graph.inputs.map((i) => i.name));
      const wanted = quantizableActivations(model);
      // Graph inputs are measured on the feeds; onnxruntime cannot return an input as an output.
      inputs = wanted.filter((n) => graphInputs.has(n));
      names = wanted.filter((n) => !outputs.has(n) && !graphInputs.has(n));
      model.graph.outputs.push(...names.map((name) => ({ name, dataType: DataType.FLOAT })));
      writeModel(model, exposed);
    } finally {
      model.close();
    }
    const fetches = [...new Set([...signature.outputs.map((o) => o.name), ...names])];
    const observed = new Map([...fetches, ...inputs].map((n) => [n, new Observed()]));
    options.onStep?.(`Calibrating on ${samples.length} request${samples.length === 1 ? '' : 's'}…`);
    await withRuntimes([{ name: 'calibration', version: 0, signature, modelPath: exposed }], oneShotRuntime('cpu', 1), async ([runtime]) => {
      for (const feeds of samples) {
        for (const name of inputs) if (feeds[name]?.type === 'float32') observed.get(name)!.add(feeds[name].data as Float32Array, options.method === 'percentile');
        const outputs = await runtime!.infer({ feeds, outputs: fetches });
        for (const [name, tensor] of Object.entries(outputs)) {
          if (tensor.type === 'float32') observed.get(name)!.add(tensor.data as Float32Array, options.method === 'percentile');
        }
      }
    });
    const ranges = new Map<string, ValueRange>();
    for (const [name, o] of observed) if (Number.isFinite(o.min)) ranges.set(name, o.range(options.method));
    return ranges;
  } finally {
    removeTempFolder(work);
  }
}
