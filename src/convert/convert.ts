/**
 * `maas convert`: optimise and/or quantise a model, then prove it: original and converted run
 * on the same seeded inputs and a conversion beyond tolerance is refused (exit 8) unless forced.
 */
import { copyFileSync, existsSync, readFileSync, realpathSync, renameSync, statSync } from 'node:fs';
import { basename, dirname, extname, join, resolve } from 'node:path';
import { MaasError } from '../core/errors.js';
import { checkOutputFile, makeFolders, makeTempFolder, removeTempFolder, writingTo } from '../core/fs.js';
import { type EditModel, openModel, writeModel } from '../onnx/edit.js';
import { type Fp16Report, checkFp16Block, convertFloat16 } from '../onnx/fp16.js';
import { type Signature, inspectModel } from '../onnx/inspect.js';
import { type OptimizeLevel, checkServes, optimizeModel } from '../onnx/load-check.js';
import { type Int4Report, quantizeInt4 } from '../onnx/int4.js';
import { type Int8Mode, type QuantizeReport, quantizeInt8 } from '../onnx/quantize.js';
import { calibrate } from './calibrate.js';
import { int8Saturates } from './cpu.js';
import type { AccuracyReport } from '../registry/manifest.js';
import { formatRef, parseRef } from '../registry/refs.js';
import { Registry, type RegistryOptions } from '../registry/registry.js';
import { ownedFolderOf } from '../registry/layout.js';
import { modelPath } from '../registry/serve-cache.js';
import { hashFile } from '../registry/store.js';
import { decodeInferRequest, parseRequests } from '../inference/protocol.js';
import { profileModel } from '../inference/bench.js';
import type { WireTensor } from '../inference/tensors.js';
import { compareModels } from './accuracy.js';
import { type CalibrationMethod, DEFAULT_FP16_BLOCK, DEFAULT_TOLERANCE, INT4_DEFAULTS, LATENCY_CHECK_MS } from './config.js';
import { exportToOnnx, exporterFor } from './export.js';

export interface ConvertOptions {
  source: string;
  output?: string | undefined;
  optimize?: OptimizeLevel | undefined;
  int8?: Int8Mode | undefined;
  /** 4-bit block-wise MatMul weights (MatMulNBits). */
  int4?: boolean;
  int4Block?: number | undefined;
  int4Accuracy?: number | undefined;
  /** int8 static: KServe v2 infer requests to measure activation ranges on. */
  calibrate?: string | undefined;
  calibration?: CalibrationMethod | undefined;
  fp16?: boolean;
  /** with fp16: inputs and outputs stay float32, with Casts at the boundaries. */
  keepIoTypes?: boolean;
  /** with fp16: op types kept float32 (default: config.ts's DEFAULT_FP16_BLOCK). */
  fp16Block?: string[] | undefined;
  /** a file of KServe v2 infer requests (one, or an array) to compare on, besides the seeded inputs. */
  samples?: string | undefined;
  /** largest accepted normalized error (max |Δ| / max |original|) over every output. */
  tolerance?: number | undefined;
  force?: boolean;
  /** for a TorchScript source: one input's shape, e.g. `1,3,224,224`. */
  inputShape?: string | undefined;
  /** false: skip timing the original and converted models. */
  latency?: boolean;
  /** told when each step starts (a spinner on a TTY); called with undefined when done. */
  onStep?: (label: string | undefined) => void;
}

export interface ConvertResult {
  /** `ref`: NAME@VERSION when the source was a registered version. */
  source: { path: string; ref?: string; digest: string; size: number; graphFingerprint: string };
  output: { path: string; digest: string; size: number; graphFingerprint: string };
  steps: string[];
  quantize: QuantizeReport | undefined;
  int4: Int4Report | undefined;
  fp16: Fp16Report | undefined;
  accuracy: AccuracyReport;
  /** batch-1 latency of original and converted on this machine's CPU, unless --no-latency. */
  latency?: LatencyChange;
  forced: boolean;
  /** set when the source was a PyTorch or TensorFlow file, exported to ONNX first. */
  exportedFrom?: { path: string; digest: string; size: number; exporter: string } | undefined;
}

/**
 * A file path, or NAME@VERSION in the registry; `stem` names the output: the file's own name,
 * or `NAME-vVERSION` for a registered version (its file in the store is named by its digest).
 */
async function sourcePath(source: string, ctx: RegistryOptions): Promise<{ path: string; stem: string; ref?: string }> {
  const path = resolve(ctx.cwd, source);
  if (existsSync(path)) return { path, stem: basename(path, '.onnx') };
  if (!/^[a-z0-9][a-z0-9._-]*(@[a-z0-9]+)?$/.test(source)) {
    throw new MaasError('MAAS_FILE_NOT_FOUND', `${source} does not exist`, { hint: 'Pass an .onnx file or a registered NAME@VERSION.' });
  }
  const registry = await Registry.open(ctx);
  const { name, version } = registry.resolve(parseRef(source));
  return { path: modelPath(registry, registry.readVersion(name, version)), stem: `${name}-v${version}`, ref: formatRef(name, version) };
}

export async function convertModel(options: ConvertOptions, ctx: RegistryOptions): Promise<ConvertResult> {
  const foreign = exporterFor(resolve(ctx.cwd, options.source));
  if (!options.int8 && !options.int4 && !options.optimize && !options.fp16 && !foreign) {
    throw new MaasError('MAAS_USAGE', 'nothing to do: name a conversion', { hint: 'Pass --optimize basic|extended, --fp16, --int8 [dynamic|static|weight-only] or --int4.' });
  }
  if ([options.int8, options.fp16, options.int4].filter(Boolean).length > 1) {
    throw new MaasError('MAAS_USAGE', '--int8, --int4 and --fp16 are alternatives', { hint: 'Pick one: int8 (about 4× smaller, faster on CPU when dynamic), int4 (about 7× smaller for large MatMuls) or float16 (about 2×).' });
  }
  if (options.calibrate !== undefined && options.int8 !== 'static') {
    throw new MaasError('MAAS_USAGE', '--calibrate is for --int8 static', { hint: 'maas convert model.onnx --int8 static --calibrate samples.jsonl' });
  }
  if (options.fp16Block) checkFp16Block(options.fp16Block);
  const work = makeTempFolder('maas-convert-');
  try {
    const steps: string[] = [];
    const step = options.onStep ?? (() => {});
    let input: string;
    let stem: string;
    let exportedFrom: ConvertResult['exportedFrom'];
    let ref: string | undefined;
    if (foreign) {
      const original = resolve(ctx.cwd, options.source);
      step(`Exporting with ${foreign}…`);
      stem = basename(original, extname(original));
      input = join(work, `${stem}.onnx`);
      const exported = await exportToOnnx(original, input, { inputShape: options.inputShape, env: ctx.env });
      exportedFrom = { path: original, ...(statSync(original).isFile() ? await hashFile(original) : { digest: '', size: 0 }), exporter: exported.exporter };
      steps.push(`export with ${exported.exporter}`);
    } else {
      ({ path: input, stem, ref } = await sourcePath(options.source, ctx));
    }
    const info = inspectModel(input);
    const suffix = conversionSuffix(options);
    const output = resolve(ctx.cwd, options.output ?? `${stem}${suffix ? `.${suffix}` : ''}.onnx`);
    const sourceFiles = [input, ...info.externalDataFiles.map((file) => join(dirname(input), file))];
    checkOutput(output, sourceFiles);
    let current = input;
    if (options.optimize) {
      step(`Optimizing with onnxruntime (${options.optimize})…`);
      const next = join(work, 'optimized.onnx');
      await optimizeModel(current, next, options.optimize);
      current = next;
      steps.push(`optimize ${options.optimize}`);
    }
    let fp16: Fp16Report | undefined;
    if (options.fp16) {
      step('Converting to float16…');
      const next = join(work, 'fp16.onnx');
      fp16 = rewrite(current, next, (model) => convertFloat16(model, { keepIoTypes: Boolean(options.keepIoTypes), block: options.fp16Block ?? DEFAULT_FP16_BLOCK }));
      await checkRewrite(next, 'float16', '--fp16-block');
      current = next;
      steps.push(`fp16${options.keepIoTypes ? ' (float32 inputs and outputs)' : ''}${fp16.blocked.length ? `, ${fp16.blocked.join(', ')} kept float32` : ''}`);
    }
    let quantize: QuantizeReport | undefined;
    if (options.int8) {
      const mode = options.int8;
      step(`Quantizing to int8 (${mode})…`);
      const next = join(work, 'int8.onnx');
      const ranges = mode === 'static' ? await calibrate(current, options.calibrate, { method: options.calibration ?? 'minmax', cwd: ctx.cwd, onStep: step }) : undefined;
      const reduceRange = int8Saturates();
      quantize = rewrite(current, next, (model) => quantizeInt8(model, { mode, reduceRange, ranges }));
      await checkRewrite(next, `int8 ${mode}`, '--int8 weight-only');
      current = next;
      steps.push(INT8_STEP[mode] + (reduceRange ? ', 7-bit weights (no VNNI: full-range int8 would saturate)' : ''));
    }
    let int4: Int4Report | undefined;
    if (options.int4) {
      step('Quantizing MatMul weights to int4…');
      const next = join(work, 'int4.onnx');
      const settings = { ...INT4_DEFAULTS, blockSize: options.int4Block ?? INT4_DEFAULTS.blockSize, accuracyLevel: options.int4Accuracy ?? INT4_DEFAULTS.accuracyLevel };
      int4 = rewrite(current, next, (model) => quantizeInt4(model, settings));
      await checkRewrite(next, 'int4', '--int4-block');
      current = next;
      steps.push(`int4 MatMul weights (MatMulNBits, blocks of ${settings.blockSize}, accuracy level ${settings.accuracyLevel})`);
    }
    const tolerance = options.tolerance ?? (options.int8 ? DEFAULT_TOLERANCE.int8 : options.int4 ? DEFAULT_TOLERANCE.int4 : options.fp16 ? DEFAULT_TOLERANCE.fp16 : DEFAULT_TOLERANCE.optimize);
    step('Comparing outputs on seeded inputs…');
    const extraSamples = options.samples ? readSamples(resolve(ctx.cwd, options.samples), info.signature) : [];
    // Static ranges hold for inputs like the calibration data, not for random ones: it is checked on that data.
    const calibration = options.int8 === 'static' && options.calibrate ? readSamples(resolve(ctx.cwd, options.calibrate), info.signature) : undefined;
    const accuracy = await compareModels(input, current, info.signature, calibration ? { tolerance, samples: 0, extraSamples: [...calibration, ...extraSamples] } : { tolerance, extraSamples });
    step(undefined);
    if (!accuracy.passed && !options.force && accuracy.outputs.every((o) => o.constant)) {
      throw new MaasError('MAAS_ACCURACY_FAILED', `the original model answers ${accuracy.samples === 1 ? 'its input' : `all ${accuracy.samples} inputs`} with outputs that do not vary (${accuracy.outputs.map((o) => o.name).join(', ')}), so they cannot show whether the conversion kept its accuracy`, {
        hint: 'Nothing was written. Pass --samples FILE with real requests (KServe v2 JSON, a JSON array or JSON Lines), or --force to keep it unproven.',
        details: { accuracy },
      });
    }
    if (!accuracy.passed && !options.force) {
      throw new MaasError('MAAS_ACCURACY_FAILED', `the converted model differs by ${accuracy.worst.toPrecision(3)} (normalized max error), above the tolerance ${tolerance}`, {
        hint: 'Nothing was written. Raise --tolerance if that is acceptable, or pass --force to keep it anyway.',
        details: { accuracy },
      });
    }
    const latency = options.latency === false || current === input ? undefined : await latencyChange(input, current, info.signature, step);
    // An export with nothing after it: the exported file is both the source and the result.
    placeOutput(current, output, current === input);
    const [src, out] = await Promise.all([hashFile(input), hashFile(output)]);
    // What the source weighs on disk: its external data too (the converted file keeps its weights inside).
    const sourceBytes = sourceFiles.reduce((n, file) => n + statSync(file).size, 0);
    return {
      source: { path: input, ...(ref ? { ref } : {}), ...src, size: sourceBytes, graphFingerprint: info.graphFingerprint },
      output: { path: output, ...out, graphFingerprint: inspectModel(output).graphFingerprint },
      steps,
      quantize,
      int4,
      fp16,
      accuracy,
      ...(latency ? { latency } : {}),
      forced: !accuracy.passed,
      ...(exportedFrom ? { exportedFrom } : {}),
    };
  } finally {
    options.onStep?.(undefined);
    removeTempFolder(work);
  }
}

/** User samples: KServe v2 infer requests (JSON, a JSON array, JSON Lines), checked against the model's signature like the server does. */
function readSamples(path: string, signature: Signature): Record<string, WireTensor>[] {
  return parseRequests(readFileSync(path, 'utf8'), `--samples ${path}`).map((request) => decodeInferRequest(request, Buffer.alloc(0), signature).feeds);
}

const INT8_STEP: Record<Int8Mode, string> = {
  dynamic: 'int8 dynamic (per-channel int8 weights, activations quantized at run time)',
  static: 'int8 static (QDQ, activation ranges from calibration)',
  'weight-only': 'int8 weights (per-channel, DequantizeLinear)',
};

export interface LatencyChange {
  batch: number;
  originalP50Ms: number;
  convertedP50Ms: number;
  /** converted / original: below 1 is faster. */
  ratio: number;
  provider: string;
}

/** Both models timed the way `maas bench` times them, batch 1, briefly: what a conversion costs or saves at serving time. */
async function latencyChange(original: string, converted: string, signature: Signature, step: (label: string | undefined) => void): Promise<LatencyChange | undefined> {
  step('Timing the original and the converted model…');
  const options = { device: 'cpu' as const, batches: [1], durationMs: LATENCY_CHECK_MS };
  const before = await profileModel({ path: original, signature }, options);
  const after = await profileModel({ path: converted, signature: inspectModel(converted).signature }, options);
  step(undefined);
  const [a, b] = [before.batches[0], after.batches[0]];
  if (a?.status !== 'ok' || b?.status !== 'ok') return undefined;
  return { batch: 1, originalP50Ms: a.p50Ms, convertedP50Ms: b.p50Ms, ratio: b.p50Ms / a.p50Ms, provider: after.provider };
}

/** Opens `input`, lets `change` rewrite it in place, writes the result to `output`. */
function rewrite<T>(input: string, output: string, change: (model: EditModel) => T): T {
  const model = openModel(input);
  try {
    const result = change(model);
    writeModel(model, output);
    return result;
  } finally {
    model.close();
  }
}

/**
 * A rewrite whose output onnxruntime refuses is maas's defect, not the user's model: the message
 * names the rewrite and, where onnxruntime says, the node and op, and nothing is written.
 */
export async function checkRewrite(path: string, rewriteName: string, flag: string): Promise<void> {
  try {
    await checkServes(path);
  } catch (error) {
    if (!(error instanceof MaasError) || error.code !== 'MAAS_MODEL_INVALID') throw error;
    const node = /node \(?'?([^)'\s]+)/i.exec(error.message)?.[1];
    const op = /Op(?:type)? \(([^)]+)\)/i.exec(error.message)?.[1];
    const why = error.message.replace(/^onnxruntime cannot load \S+: /, '');
    throw new MaasError('MAAS_CONVERSION_FAILED', `the ${rewriteName} rewrite produced a graph onnxruntime refuses${node ? ` at node ${node}` : ''}${op ? ` (${op})` : ''}: ${why}`, {
      hint: `This is a maas defect, not your model; nothing was written. Please report it with the model's op list (maas show).${op ? ` Meanwhile ${flag} ${op} may avoid it.` : ''}`,
    });
  }
}

/** `basic.int8`, `fp16`...: what a converted file's name says about it. */
export function conversionSuffix(options: Pick<ConvertOptions, 'optimize' | 'int8' | 'int4' | 'fp16'>): string {
  const int8 = options.int8 === undefined ? undefined : options.int8 === 'dynamic' ? 'int8' : `int8-${options.int8}`;
  return [options.optimize, options.fp16 ? 'fp16' : undefined, int8, options.int4 ? 'int4' : undefined].filter(Boolean).join('.');
}

/** Refused before any work: an -o that would replace the model being converted, a folder, or a path through a file. */
function checkOutput(output: string, sourceFiles: string[]): void {
  const real = (path: string) => (existsSync(path) ? realpathSync(path) : path);
  if (sourceFiles.map(real).includes(real(output))) {
    throw new MaasError('MAAS_USAGE', `-o ${output} is the model being converted`, { hint: 'Write the converted model to a new file: maas never replaces its source.' });
  }
  checkOutputFile(output);
  // A registry's own folders hold its immutable versions: a file written there would corrupt one.
  const owned = ownedFolderOf(join(real(dirname(output)), basename(output)));
  if (owned !== undefined) {
    throw new MaasError('MAAS_USAGE', `-o ${output} is inside the registry's ${basename(owned)}/ folder, which only maas writes`, { hint: 'Write it elsewhere; to convert into the registry, give register the conversion flags: maas register model.onnx --int8.' });
  }
}

/** Puts the result into place atomically: rename, or copy next to the target and rename. */
function placeOutput(from: string, to: string, keepSource: boolean): void {
  writingTo(to, () => makeFolders(dirname(to)));
  if (!keepSource) {
    try {
      renameSync(from, to);
      return;
    } catch {
      /* another filesystem */
    }
  }
  const temp = `${to}.tmp-${process.pid}`;
  copyFileSync(from, temp);
  renameSync(temp, to);
}
