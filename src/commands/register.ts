import { defineCommand } from '../core/define-command.js';
import { OPTIMIZE_LEVELS, type OptimizeLevel } from '../onnx/load-check.js';
import { assertAlias, parseVersion } from '../registry/refs.js';
import type { RegisterResult } from '../registry/register.js';
import { renderRegister } from '../ui/render/registry.js';
import { byteProgress, registryOptions, tolerance } from './shared.js';

export const registerCommand = defineCommand<RegisterResult>({
  name: 'register',
  summary: 'check, fingerprint and store an ONNX file as an immutable version',
  args: ['<file>'],
  options: [
    { flags: '--name <name>', description: 'model name (default: from the file name)' },
    { flags: '--version <n>', description: 'version number (default: the next integer)', parse: parseVersion },
    { flags: '--alias <alias>', description: 'also point this alias (e.g. prod) at the version', parse: (a) => (assertAlias(a), a) },
    { flags: '-m, --message <text>', description: 'a note stored with the version' },
    { flags: '--no-load-check', description: 'skip loading the model in onnxruntime (custom operators)' },
    { flags: '--optimize <level>', description: "register onnxruntime's optimised graph (basic or extended); the original is recorded as its source", choices: OPTIMIZE_LEVELS },
    { flags: '--fp16', description: 'float16 weights and math (ops without float16 kernels stay float32 behind Casts), about 2× smaller' },
    { flags: '--keep-io-types', description: 'with --fp16: inputs and outputs stay float32' },
    { flags: '--int8', description: 'register int8 weights (per-channel); refused beyond --tolerance unless --force' },
    { flags: '--tolerance <x>', description: 'largest accepted max |Δ| / max |original| for a conversion (int8: 0.05)', parse: tolerance },
    { flags: '--samples <file>', description: 'KServe v2 infer request(s) to compare on, besides 4 seeded inputs' },
    { flags: '--force', description: 'register a conversion even beyond the tolerance' },
  ],
  examples: ['maas register model.onnx', 'maas register resnet.onnx --name resnet --version 2 --alias staging -m "retrained on v2 data"'],
  async run([file], opts, ctx) {
    const { registerModel } = await import('../registry/register.js');
    return registerModel(
      {
        file: file!,
        name: opts.name as string | undefined,
        version: opts.version as number | undefined,
        alias: opts.alias as string | undefined,
        message: opts.message as string | undefined,
        loadCheck: opts.loadCheck as boolean,
        convert: { optimize: opts.optimize as OptimizeLevel | undefined, int8: Boolean(opts.int8), fp16: Boolean(opts.fp16), keepIoTypes: Boolean(opts.keepIoTypes), tolerance: opts.tolerance as number | undefined, samples: opts.samples as string | undefined, force: Boolean(opts.force) },
        onProgress: byteProgress(ctx),
      },
      registryOptions(ctx),
    );
  },
  render: renderRegister,
});
