import { defineCommand, option } from '../core/define-command.js';
import { renderConvert } from '../ui/render/convert.js';
import { withAttested } from '../ui/render/trust.js';
import { conversionFrom, conversionOptions, registryOptions, signKeyOption, stepProgress } from './shared.js';

export const convertCommand = defineCommand({
  name: 'convert',
  summary: 'optimise a model, or turn it into float16 or int8 weights, and prove the outputs still match',
  args: ['<source>'],
  options: {
    ...conversionOptions,
    signKey: signKeyOption,
    output: option.string('-o, --output <file>', 'where to write', { defaultText: 'here, SOURCE.fp16.onnx and the like; NAME-vVERSION.fp16.onnx for a registered version' }),
  },
  examples: ['maas convert model.onnx --int8', 'maas convert mlp@2 --optimize extended --int8 -o mlp-int8.onnx --json'],
  async run([source], opts, ctx) {
    const { convertAttested } = await import('../trust/converted.js');
    return convertAttested(
      { source: source!, output: opts.output, ...conversionFrom(opts), onStep: stepProgress(ctx), signing: { key: opts.signKey } },
      registryOptions(ctx),
    );
  },
  render: withAttested(renderConvert),
});
