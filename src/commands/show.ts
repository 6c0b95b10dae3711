import { defineCommand } from '../core/define-command.js';
import { renderShowAttested } from '../ui/render/trust.js';
import { registryOptions } from './shared.js';

export const showCommand = defineCommand({
  name: 'show',
  summary: 'show a version: signature, fingerprints, files, who registered and signed it and when',
  args: ['<ref>'],
  examples: ['maas show mlp', 'maas show mlp@2', 'maas show mlp@prod --json'],
  async run([ref], _opts, ctx) {
    const { showAttested } = await import('../trust/attest.js');
    return showAttested({ ref: ref! }, registryOptions(ctx));
  },
  render: renderShowAttested,
});
