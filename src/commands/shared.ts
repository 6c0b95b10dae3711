/** Glue every command uses: registry options from the context, progress bars for byte streams. */
import type { CommandContext } from '../core/context.js';
import { MaasError } from '../core/errors.js';
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

/** `--plain-http`, shared by the commands that talk to a registry. */
export const plainHttpOption = { flags: '--plain-http', description: 'speak HTTP, not HTTPS, to a registry that is not on loopback' };

/** `--tolerance`: a conversion's largest accepted normalized error. */
export function tolerance(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0) throw new MaasError('MAAS_USAGE', `--tolerance expects a number ≥ 0, got '${value}'`, { hint: 'For example --tolerance 0.02 (2% of the largest output value).' });
  return n;
}
