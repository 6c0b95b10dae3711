import { defineCommand } from '../core/define-command.js';
import { renderPull } from '../ui/render/remote.js';
import { byteProgress, importAsOptions, registryOptions } from './shared.js';

export const importCommand = defineCommand({
  name: 'import',
  summary: 'add a version from a `maas pack` tarball, checking every path and digest',
  args: ['<file>'],
  options: importAsOptions,
  examples: ['maas import mlp-2.tar', 'maas import mlp-2.tar --name mlp-from-vendor --json'],
  async run([file], opts, ctx) {
    const { importArchive } = await import('../remote/archive.js');
    return importArchive({ file: file!, name: opts.name, version: opts.version, onProgress: byteProgress(ctx) }, registryOptions(ctx));
  },
  render: renderPull,
});
