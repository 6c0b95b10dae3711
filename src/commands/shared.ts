/** Glue every command uses: registry options from the context, progress bars for byte streams. */
import type { CommandContext } from '../core/context.js';
import type { OptionSpec } from '../core/define-command.js';
import { MaasError } from '../core/errors.js';
import type { ConvertOptions } from '../convert/convert.js';
import { parseVersion } from '../registry/refs.js';
import { OPTIMIZE_LEVELS, type OptimizeLevel } from '../onnx/load-check.js';
import type { RegistryOptions } from '../registry/registry.js';
import type { OnBytes } from '../registry/store.js';

export function registryOptions(ctx: CommandContext): RegistryOptions {
  return { cwd: ctx.cwd, env: ctx.env, registry: ctx.globals.registry, now: ctx.now };
}

/** A progress bar per byte stream, closed when the stream reports its last byte. */
export function byteProgress(ctx: CommandContext): (label: string, totalBytes: number) => OnBytes {
  return (label, totalBytes) => {
    const bar = ctx.out.progress(label, totalBytes);
    if (totalBytes === 0) bar.stop();
    return (done) => {
      bar.update(done);
      if (done >= totalBytes) bar.stop();
    };
  };
}

/** One spinner per step of a long job, replaced as the job moves on. */
export function stepProgress(ctx: CommandContext): (label: string | undefined) => void {
  let current: { stop(): void } | undefined;
  return (label) => {
    current?.stop();
    current = label === undefined ? undefined : ctx.out.step(label);
  };
}

/** `--name` / `--version` for a version arriving from elsewhere (pull, import). */
export const importAsOptions: OptionSpec[] = [
  { flags: '--name <name>', description: 'model name here (default: the one it was pushed or packed with)' },
  { flags: '--version <n>', description: 'version number here (default: the one it was pushed or packed with)', parse: parseVersion },
];

/** `--plain-http`, shared by the commands that talk to a registry. */
export const plainHttpOption = { flags: '--plain-http', description: 'speak HTTP, not HTTPS, to a registry that is not on loopback' };

/** `--tolerance`: a conversion's largest accepted normalized error. */
function tolerance(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0) throw new MaasError('MAAS_USAGE', `--tolerance expects a number ≥ 0, got '${value}'`, { hint: 'For example --tolerance 0.02 (2% of the largest output value).' });
  return n;
}

/** The conversion flags `convert` and `register` share. */
export const conversionOptions: OptionSpec[] = [
  { flags: '--optimize <level>', description: "onnxruntime's graph optimiser: basic or extended", choices: OPTIMIZE_LEVELS },
  { flags: '--fp16', description: 'float16 weights and math (ops without float16 kernels stay float32 behind Casts), about 2× smaller' },
  { flags: '--keep-io-types', description: 'with --fp16: inputs and outputs stay float32' },
  { flags: '--int8', description: 'int8 weights for MatMul/Gemm/Conv (per-channel), about 4× smaller' },
  { flags: '--tolerance <x>', description: 'largest accepted max |Δ| / max |original| over all outputs (int8 0.05, fp16 0.01)', parse: tolerance },
  { flags: '--samples <file>', description: 'KServe v2 infer request(s) to compare on, besides 4 seeded inputs' },
  { flags: '--force', description: 'keep a conversion even beyond the tolerance' },
  { flags: '--input-shape <dims>', description: 'for a TorchScript (.pt) source: one input shape, e.g. 1,3,224,224 (dim 0 becomes the batch)' },
];

export function conversionFrom(opts: Record<string, unknown>): Pick<ConvertOptions, 'optimize' | 'int8' | 'fp16' | 'keepIoTypes' | 'tolerance' | 'samples' | 'force' | 'inputShape'> {
  return {
    optimize: opts.optimize as OptimizeLevel | undefined,
    int8: Boolean(opts.int8),
    fp16: Boolean(opts.fp16),
    keepIoTypes: Boolean(opts.keepIoTypes),
    tolerance: opts.tolerance as number | undefined,
    samples: opts.samples as string | undefined,
    force: Boolean(opts.force),
    inputShape: opts.inputShape as string | undefined,
  };
}
