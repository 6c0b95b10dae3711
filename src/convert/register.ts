/**
 * `maas register` with conversion flags, or of a PyTorch / TensorFlow source: convert into a
 * scratch folder, then register the result with the original recorded as its source.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, extname, join } from 'node:path';
import { assertAlias, assertModelName, suggestName } from '../registry/refs.js';
import { type RegisterOptions, type RegisterResult, checkedFile, registerModel } from '../registry/register.js';
import { findRegistryRoot, type RegistryOptions } from '../registry/registry.js';
import { type ConvertOptions, conversionSuffix, convertModel } from './convert.js';
import { exporterFor } from './export.js';

export type ConversionFlags = Pick<ConvertOptions, 'optimize' | 'int8' | 'fp16' | 'keepIoTypes' | 'tolerance' | 'samples' | 'force' | 'onStep' | 'inputShape'>;

export async function registerConverted(options: Omit<RegisterOptions, 'conversion'> & { convert?: ConversionFlags | undefined }, ctx: RegistryOptions): Promise<RegisterResult> {
  const { convert, ...register } = options;
  const original = checkedFile(options.file, ctx.cwd);
  const foreign = exporterFor(original) !== undefined;
  if (!foreign && !convert?.int8 && !convert?.optimize && !convert?.fp16) return registerModel(register, ctx);
  // What a plain register would refuse first is refused before a conversion runs.
  const name = options.name ?? suggestName(basename(original));
  assertModelName(name);
  if (options.alias !== undefined) assertAlias(options.alias);
  findRegistryRoot(ctx);

  const dir = mkdtempSync(join(tmpdir(), 'maas-register-'));
  try {
    const suffix = conversionSuffix(convert ?? {});
    const output = join(dir, `${basename(original, extname(original))}${suffix ? `.${suffix}` : ''}.onnx`);
    const result = await convertModel({ source: original, output, ...convert }, ctx);
    const source = result.exportedFrom ?? result.source;
    return await registerModel({
      ...register,
      file: result.output.path,
      name,
      conversion: {
        source: { file: basename(original), digest: source.digest, size: source.size, graphFingerprint: result.source.graphFingerprint },
        steps: result.steps,
        accuracy: result.accuracy,
        forced: result.forced,
      },
    }, ctx);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
