/** What `convert` and `register` offer and assume, for their option tables (light: `maas --help` reads it). */
import type { OptimizeLevel } from '../onnx/load-check.js';

export const OPTIMIZE_LEVELS = ['basic', 'extended'] as const satisfies readonly OptimizeLevel[];

/** The largest accepted normalized error per conversion: int8 weights move outputs by around a percent. */
export const DEFAULT_TOLERANCE = { int8: 0.05, fp16: 0.01, optimize: 1e-4 } as const;

/** Seeded inputs every conversion is proven on, besides --samples. */
export const SEEDED_SAMPLES = 4;

/** Kept float32 by `--fp16` unless `--fp16-block` says otherwise: where float16's range and precision hurt (LayerNorm statistics, reductions, Softmax inputs). */
export const DEFAULT_FP16_BLOCK = ['LayerNormalization', 'ReduceMean', 'ReduceSum', 'ReduceSumSquare', 'ReduceL2', 'ReduceLogSumExp', 'Softmax', 'LogSoftmax', 'Pow', 'Sqrt', 'Exp', 'Log', 'Erf', 'Reciprocal'];
