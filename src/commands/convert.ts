import { defineCommand } from '../core/define-command.js';
import { OPTIMIZE_LEVELS, type OptimizeLevel } from '../onnx/load-check.js';
import type { ConvertResult } from '../onnx/convert.js';
import { renderConvert } from '../ui/render/convert.js';
import { registryOptions, tolerance } from './shared.js';

export const convertCommand = defineCommand<ConvertResult>({
  name: 'convert',
  summary: 'optimise and/or quantise a model to int8, and prove the outputs still match',
  args: ['<source>'],
  options: [
    { flags: '--optimize <level>', description: "onnxruntime's graph optimiser: basic or extended", choices: OPTIMIZE_LEVELS },
    { flags: '--fp16', description: 'float16 weights and math (ops without float16 kernels stay float32 behind Casts), about 2× smaller' },
    { flags: '--keep-io-types', description: 'with --fp16: inputs and outputs stay float32' },
    { flags: '--int8', description: 'int8 weights for MatMul/Gemm/Conv (per-channel), about 4× smaller' },
    { flags: '--tolerance <x>', description: 'largest accepted max |Δ| / max |original| over all outputs (int8: 0.05)', parse: tolerance },
    { flags: '--samples <file>', description: 'KServe v2 infer request(s) to compare on, besides 4 seeded inputs' },
    { flags: '--force', description: 'keep the result even beyond the tolerance' },
    { flags: '-o, --output <file>', description: 'where to write (default: SOURCE.int8.onnx here)' },
  ],
  examples: ['maas convert model.onnx --int8', 'maas convert mlp@2 --optimize extended --int8 -o mlp-int8.onnx --json'],
  async run([source], opts, ctx) {
    const { convertModel } = await import('../onnx/convert.js');
    return convertModel(
      { source: source!, output: opts.output as string | undefined, optimize: opts.optimize as OptimizeLevel | undefined, int8: Boolean(opts.int8), fp16: Boolean(opts.fp16), keepIoTypes: Boolean(opts.keepIoTypes), tolerance: opts.tolerance as number | undefined, samples: opts.samples as string | undefined, force: Boolean(opts.force) },
      registryOptions(ctx),
    );
  },
  render: renderConvert,
});
