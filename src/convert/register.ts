/**
 * `maas register` with conversion flags, or of a PyTorch / TensorFlow source: convert into a
 * scratch folder, then register the result with the original recorded as its source.
 */
import { readFileSync, statSync } from 'node:fs';
import { basename, extname, join } from 'node:path';
import { MaasError } from '../core/errors.js';
import { makeTempFolder, removeTempFolder } from '../core/fs.js';
import { normalizeWarmup } from '../inference/protocol.js';
import { MAX_WARMUP_BYTES } from '../registry/manifest.js';
import { assertAlias, assertModelName, suggestName } from '../registry/refs.js';
import { type RegisterOptions, type RegisterResult, checkedFile, registerModel } from '../registry/register.js';
import { findRegistryRoot, type RegistryOptions } from '../registry/registry.js';
import { type ConvertOptions, conversionSuffix, convertModel } from './convert.js';
import { exporterFor } from './export.js';

export type ConversionFlags = Pick<ConvertOptions, 'optimize' | 'int8' | 'int4' | 'int4Block' | 'int4Accuracy' | 'calibrate' | 'calibration' | 'fp16' | 'keepIoTypes' | 'fp16Block' | 'tolerance' | 'samples' | 'force' | 'latency' | 'onStep' | 'inputShape'>;

/** A `--warmup` file as register stores it: read, checked against the model's signature once it is known. */
function warmupFrom(file: string | undefined, cwd: string): RegisterOptions['warmup'] {
  if (file === undefined) return undefined;
  const path = checkedFile(file, cwd);
  if (statSync(path).size > MAX_WARMUP_BYTES) throw new MaasError('MAAS_USAGE', `${file} is larger than ${MAX_WARMUP_BYTES} bytes`, { hint: 'Warm-up takes a few requests, not a data set.' });
  const text = readFileSync(path, 'utf8');
  return (signature) => normalizeWarmup(text, signature, file);
}

export async function registerConverted(options: Omit<RegisterOptions, 'conversion' | 'warmup'> & { convert?: ConversionFlags | undefined; warmupFile?: string | undefined }, ctx: RegistryOptions): Promise<RegisterResult> {
  const { convert, warmupFile, ...rest } = options;
  const register: Omit<RegisterOptions, 'conversion'> = { ...rest, warmup: warmupFrom(warmupFile, ctx.cwd) };
  const original = checkedFile(options.file, ctx.cwd);
  const foreign = exporterFor(original) !== undefined;
  if (!foreign && !convert?.int8 && !convert?.int4 && !convert?.optimize && !convert?.fp16) return registerModel(register, ctx);
  // What a plain register would refuse first is refused before a conversion runs.
  const name = options.name ?? suggestName(basename(original));
  assertModelName(name);
  if (options.alias !== undefined) assertAlias(options.alias);
  findRegistryRoot(ctx);

  const dir = makeTempFolder('maas-register-');
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
    removeTempFolder(dir);
  }
}
