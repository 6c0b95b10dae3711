import { defineCommand } from '../core/define-command.js';
import { renderList } from '../ui/render/registry.js';
import { registryOptions } from './shared.js';

export const listCommand = defineCommand({
  name: 'list',
  summary: 'list models, their versions and aliases',
  args: ['[name]'],
  examples: ['maas list', 'maas list mlp --json'],
  async run([name], _opts, ctx) {
    const { listModels } = await import('../registry/query.js');
    return listModels({ name }, registryOptions(ctx));
  },
  render: renderList,
});
