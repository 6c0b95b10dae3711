/** What `convert` and `register` offer and assume, for their option tables (light: `maas --help` reads it). */
import type { OptimizeLevel } from '../onnx/load-check.js';

export const OPTIMIZE_LEVELS = ['basic', 'extended'] as const satisfies readonly OptimizeLevel[];

/** The largest accepted normalized error per conversion: int8 weights move outputs by around a percent. */
export const DEFAULT_TOLERANCE = { int8: 0.05, fp16: 0.01, optimize: 1e-4 } as const;

/** Seeded inputs every conversion is proven on, besides --samples. */
export const SEEDED_SAMPLES = 4;
