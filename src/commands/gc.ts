import { defineCommand, option } from '../core/define-command.js';
import { renderGc } from '../ui/render/registry.js';
import { registryOptions } from './shared.js';

export const gcCommand = defineCommand({
  name: 'gc',
  summary: 'delete blobs that no version references',
  options: { dryRun: option.flag('-n, --dry-run', 'list what would be deleted, delete nothing') },
  examples: ['maas gc --dry-run', 'maas gc'],
  async run(_args, opts, ctx) {
    const { collectGarbage } = await import('../registry/gc.js');
    return collectGarbage({ dryRun: opts.dryRun }, registryOptions(ctx));
  },
  render: renderGc,
});
