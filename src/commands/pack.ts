import { defineCommand } from '../core/define-command.js';
import { MaasError } from '../core/errors.js';
import type { PackResult } from '../remote/archive.js';
import { renderPack } from '../ui/render/remote.js';
import { registryOptions } from './shared.js';

export const packCommand = defineCommand<PackResult>({
  name: 'pack',
  summary: 'write a version as an OCI image layout tarball for offline hand-over',
  args: ['<ref>'],
  options: [{ flags: '-o, --output <file>', description: 'the .tar to write' }],
  examples: ['maas pack mlp@2 -o mlp-2.tar', 'maas import mlp-2.tar   # on the other side'],
  async run([ref], opts, ctx) {
    const output = opts.output as string | undefined;
    if (!output) throw new MaasError('MAAS_USAGE', 'pack needs --output', { hint: `maas pack ${ref} -o model.tar` });
    const { packVersion } = await import('../remote/archive.js');
    return packVersion({ ref: ref!, output }, registryOptions(ctx));
  },
  render: renderPack,
});
