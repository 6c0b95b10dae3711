import { defineCommand, option } from '../core/define-command.js';
import { renderTag } from '../ui/render/registry.js';
import { registryOptions } from './shared.js';

export const tagCommand = defineCommand({
  name: 'tag',
  summary: 'point an alias (prod, staging) at a version; every move is a git commit',
  args: ['<ref>', '<alias>'],
  options: { delete: option.flag('-d, --delete', 'remove the alias') },
  examples: ['maas tag mlp@2 prod', 'maas tag mlp staging --delete', 'git log -- models/mlp/aliases.json'],
  async run([ref, alias], opts, ctx) {
    const { tagVersion } = await import('../registry/tag.js');
    return tagVersion({ ref: ref!, alias: alias!, delete: opts.delete }, registryOptions(ctx));
  },
  render: renderTag,
});
