/** What `convert` and `register` offer and assume, for their option tables (light: `maas --help` reads it). */
import type { OptimizeLevel } from '../onnx/load-check.js';
import type { Int8Mode } from '../onnx/quantize.js';

export const OPTIMIZE_LEVELS = ['basic', 'extended'] as const satisfies readonly OptimizeLevel[];

/** The largest accepted normalized error per conversion: int8 weights move outputs by around a percent. */
export const DEFAULT_TOLERANCE = { int8: 0.05, int4: 0.1, fp16: 0.01, optimize: 1e-4 } as const;

/** Seeded inputs every conversion is proven on, besides --samples. */
export const SEEDED_SAMPLES = 4;

/** Kept float32 by `--fp16` unless `--fp16-block` says otherwise: where float16's range and precision hurt (LayerNorm statistics, reductions, Softmax inputs). */
export const DEFAULT_FP16_BLOCK = ['LayerNormalization', 'ReduceMean', 'ReduceSum', 'ReduceSumSquare', 'ReduceL2', 'ReduceLogSumExp', 'Softmax', 'LogSoftmax', 'Pow', 'Sqrt', 'Exp', 'Log', 'Erf', 'Reciprocal'];

/** `--int8`'s modes, the default first. */
export const INT8_MODES = ['dynamic', 'static', 'weight-only'] as const satisfies readonly Int8Mode[];

/** How int8 static reads activation ranges off the calibration data. */
export const CALIBRATION_METHODS = ['minmax', 'percentile'] as const;
export type CalibrationMethod = (typeof CALIBRATION_METHODS)[number];

/** Block sizes onnxruntime 1.30's CPU MatMulNBits runs (checked in the tests). */
export const INT4_BLOCK_SIZES = [16, 32, 64, 128, 256] as const;

/** `--int4`'s defaults: MatMulNBits blocks of 32 along K, its accuracy level 4 (int8 activations: fastest on CPU), weights of at least 4096 elements. */
export const INT4_DEFAULTS = { blockSize: 32, accuracyLevel: 4, minElements: 4096 } as const;

/** How long convert times each model (batch 1, after a warm-up) for its latency line. */
export const LATENCY_CHECK_MS = 1000;
