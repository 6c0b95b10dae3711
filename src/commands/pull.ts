import { defineCommand } from '../core/define-command.js';
import { renderPull } from '../ui/render/remote.js';
import { byteProgress, importAsOptions, plainHttpOption, registryOptions } from './shared.js';

export const pullCommand = defineCommand({
  name: 'pull',
  summary: 'fetch a version from an OCI registry or layout, verifying every digest, into this registry',
  args: ['<remote>'],
  options: { ...importAsOptions, plainHttp: plainHttpOption },
  examples: ['maas pull oci://ghcr.io/acme/mlp:2', 'maas pull oci-layout:./export:2 --name mlp-copy'],
  async run([remote], opts, ctx) {
    const { pull } = await import('../remote/transfer.js');
    return pull(
      { remote: remote!, name: opts.name, version: opts.version, plainHttp: opts.plainHttp, onProgress: byteProgress(ctx) },
      registryOptions(ctx),
    );
  },
  render: renderPull,
});
