import { defineCommand, option } from '../core/define-command.js';
import { renderConvert } from '../ui/render/convert.js';
import { conversionFrom, conversionOptions, registryOptions, stepProgress } from './shared.js';

export const convertCommand = defineCommand({
  name: 'convert',
  summary: 'optimise a model, or turn it into float16 or int8 weights, and prove the outputs still match',
  args: ['<source>'],
  options: {
    ...conversionOptions,
    output: option.string('-o, --output <file>', 'where to write', { defaultText: 'here, SOURCE.fp16.onnx and the like; NAME-vVERSION.fp16.onnx for a registered version' }),
  },
  examples: ['maas convert model.onnx --int8', 'maas convert mlp@2 --optimize extended --int8 -o mlp-int8.onnx --json'],
  async run([source], opts, ctx) {
    const { convertModel } = await import('../convert/convert.js');
    return convertModel(
      { source: source!, output: opts.output, ...conversionFrom(opts), onStep: stepProgress(ctx) },
      registryOptions(ctx),
    );
  },
  render: renderConvert,
});
