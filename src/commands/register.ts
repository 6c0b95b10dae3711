import { defineCommand } from '../core/define-command.js';
import { assertAlias, parseVersion } from '../registry/refs.js';
import type { RegisterResult } from '../registry/register.js';
import { renderRegister } from '../ui/render/registry.js';
import { byteProgress, conversionFrom, conversionOptions, registryOptions, stepProgress } from './shared.js';

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
    ...conversionOptions,
  ],
  examples: ['maas register model.onnx', 'maas register resnet.onnx --name resnet --version 2 --alias staging -m "retrained on v2 data"', 'maas register model.onnx --fp16 --keep-io-types   # registers the converted model, with its accuracy report'],
  async run([file], opts, ctx) {
    const { registerConverted } = await import('../convert/register.js');
    return registerConverted(
      {
        file: file!,
        name: opts.name as string | undefined,
        version: opts.version as number | undefined,
        alias: opts.alias as string | undefined,
        message: opts.message as string | undefined,
        loadCheck: opts.loadCheck as boolean,
        convert: { ...conversionFrom(opts), onStep: stepProgress(ctx) },
        onProgress: byteProgress(ctx),
      },
      registryOptions(ctx),
    );
  },
  render: renderRegister,
});
