import { defineCommand } from '../core/define-command.js';
import { parseVersion } from '../registry/refs.js';
import type { PullResult } from '../remote/transfer.js';
import { renderPull } from '../ui/render/remote.js';
import { byteProgress, plainHttpOption, registryOptions } from './shared.js';

export const pullCommand = defineCommand<PullResult>({
  name: 'pull',
  summary: 'fetch a version from an OCI registry or layout, verifying every digest, into this registry',
  args: ['<remote>'],
  options: [
    { flags: '--name <name>', description: 'model name here (default: the name it was pushed with)' },
    { flags: '--version <n>', description: 'version number here (default: the one it was pushed with)', parse: parseVersion },
    plainHttpOption,
  ],
  examples: ['maas pull oci://ghcr.io/acme/mlp:2', 'maas pull oci-layout:./export:2 --name mlp-copy'],
  async run([remote], opts, ctx) {
    const { pull } = await import('../remote/transfer.js');
    return pull(
      { remote: remote!, name: opts.name as string | undefined, version: opts.version as number | undefined, plainHttp: Boolean(opts.plainHttp), onProgress: byteProgress(ctx) },
      registryOptions(ctx),
    );
  },
  render: renderPull,
});
