import { defineCommand, option } from '../core/define-command.js';
import { renderRemove } from '../ui/render/registry.js';
import { registryOptions } from './shared.js';

export const rmCommand = defineCommand({
  name: 'rm',
  summary: 'remove a version (blobs stay until maas gc; the number is never reused)',
  args: ['<ref>'],
  options: { force: option.flag('-f, --force', 'also drop aliases that point at it') },
  examples: ['maas rm mlp@1', 'maas rm mlp@2 --force && maas gc'],
  async run([ref], opts, ctx) {
    const { removeVersion } = await import('../registry/remove.js');
    return removeVersion({ ref: ref!, force: opts.force }, registryOptions(ctx));
  },
  render: renderRemove,
});
