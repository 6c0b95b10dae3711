import { defineCommand, option } from '../core/define-command.js';
import { renderPack } from '../ui/render/remote.js';
import { registryOptions } from './shared.js';

export const packCommand = defineCommand({
  name: 'pack',
  summary: 'write a version as an OCI image layout tarball for offline hand-over',
  args: ['<ref>'],
  options: { output: option.string('-o, --output <file>', 'the .tar to write', { required: true }) },
  examples: ['maas pack mlp@2 -o mlp-2.tar', 'maas import mlp-2.tar   # on the other side'],
  async run([ref], opts, ctx) {
    const { packVersion } = await import('../remote/archive.js');
    return packVersion({ ref: ref!, output: opts.output! }, registryOptions(ctx));
  },
  render: renderPack,
});
