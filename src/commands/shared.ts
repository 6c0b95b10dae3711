/** Glue every command uses: registry options from the context, progress bars for byte streams. */
import type { CommandContext } from '../core/context.js';
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
