import { defineCommand, option } from '../core/define-command.js';
import { assertAlias, parseVersion } from '../registry/refs.js';
import { renderRegister } from '../ui/render/registry.js';
import { withAttested } from '../ui/render/trust.js';
import { byteProgress, conversionFrom, conversionOptions, registryOptions, signKeyOption, stepProgress } from './shared.js';

export const registerCommand = defineCommand({
  name: 'register',
  summary: 'check, fingerprint and store an ONNX file as an immutable version',
  args: ['<file>'],
  options: {
    name: option.string('--name <name>', 'model name', { defaultText: 'from the file name' }),
    version: option.custom('--version <n>', 'version number', parseVersion, { defaultText: 'the next integer' }),
    alias: option.string('--alias <alias>', 'also point this alias (e.g. prod) at the version', { parse: (a) => (assertAlias(a), a) }),
    message: option.string('-m, --message <text>', 'a note stored with the version'),
    warmup: option.string('--warmup <file>', 'KServe v2 infer requests (JSON, a JSON array or JSON Lines) each load runs before serving', { defaultText: 'a generated request' }),
    loadCheck: option.flag('--no-load-check', 'skip loading the model in onnxruntime (custom operators)'),
    ...conversionOptions,
    signKey: signKeyOption,
  },
  examples: ['maas register model.onnx', 'maas register resnet.onnx --name resnet --version 2 --alias staging -m "retrained on v2 data"', 'maas register model.onnx --fp16 --keep-io-types   # registers the converted model, with its accuracy report'],
  async run([file], opts, ctx) {
    const { registerAttested } = await import('../trust/converted.js');
    return registerAttested(
      {
        file: file!,
        name: opts.name,
        version: opts.version,
        alias: opts.alias,
        message: opts.message,
        warmupFile: opts.warmup,
        loadCheck: opts.loadCheck,
        convert: { ...conversionFrom(opts), onStep: stepProgress(ctx) },
        onProgress: byteProgress(ctx),
        signing: { key: opts.signKey },
      },
      registryOptions(ctx),
    );
  },
  render: withAttested(renderRegister),
});
