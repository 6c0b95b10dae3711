import { defineCommand } from '../core/define-command.js';
import { renderShow } from '../ui/render/registry.js';
import { registryOptions } from './shared.js';

export const showCommand = defineCommand({
  name: 'show',
  summary: 'show a version: signature, fingerprints, files, who registered it and when',
  args: ['<ref>'],
  examples: ['maas show mlp', 'maas show mlp@2', 'maas show mlp@prod --json'],
  async run([ref], _opts, ctx) {
    const { showModel } = await import('../registry/query.js');
    return showModel({ ref: ref! }, registryOptions(ctx));
  },
  render: renderShow,
});
