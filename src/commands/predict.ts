import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { text } from 'node:stream/consumers';
import { defineCommand } from '../core/define-command.js';
import { MaasError } from '../core/errors.js';
import { DEVICES, type Device } from '../registry/config.js';
import { registryOptions } from './shared.js';

export const predictCommand = defineCommand<Record<string, unknown>>({
  name: 'predict',
  summary: 'run one inference locally: a KServe v2 infer request in, the response out',
  args: ['<ref>'],
  options: [
    { flags: '-i, --input <file>', description: 'the request JSON file, or - for stdin' },
    { flags: '--device <device>', description: 'execution provider (default: maas.yaml)', choices: DEVICES },
  ],
  examples: [
    `maas predict mlp@prod --input request.json`,
    `echo '{"inputs":[{"name":"input","shape":[1,4],"datatype":"FP32","data":[1,2,3,4]}]}' | maas predict mlp --input -`,
  ],
  async run([ref], opts, ctx) {
    const input = opts.input as string | undefined;
    if (!input) throw new MaasError('MAAS_USAGE', 'predict needs --input', { hint: 'Pass --input request.json, or --input - to read the request from stdin.' });
    const request = input === '-' ? Buffer.from(await text(ctx.io.stdin)) : await readFile(resolve(ctx.cwd, input));
    const { predict } = await import('../serve/predict.js');
    return predict({ ref: ref!, request, device: opts.device as Device | undefined }, registryOptions(ctx));
  },
  render: (r) => JSON.stringify(r, null, 2),
});
