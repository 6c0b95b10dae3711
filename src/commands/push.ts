import { defineCommand, option } from '../core/define-command.js';
import { renderPush } from '../ui/render/remote.js';
import { byteProgress, plainHttpOption, registryOptions } from './shared.js';

export const pushCommand = defineCommand({
  name: 'push',
  summary: 'send a version to an OCI registry (oci://host/repo) or an OCI image layout (oci-layout:PATH)',
  args: ['<ref>', '[remote]'],
  options: {
    alias: option.flag('--alias', 'also tag every alias that points at the version'),
    plainHttp: plainHttpOption,
    git: option.flag('--git', "also push the registry's commits and the version's git tag to its git remote"),
    sbom: option.flag('--sbom', "also attach the version's CycloneDX AI BOM as a referrer (made and stored with the version if it has none)"),
  },
  examples: ['maas push mlp@2 oci://ghcr.io/acme/mlp', 'maas push mlp@prod oci://127.0.0.1:5000/team/mlp --alias --json', 'maas push mlp@2 oci-layout:./export'],
  async run([ref, remote], opts, ctx) {
    const { push } = await import('../remote/transfer.js');
    if (opts.sbom) await (await import('../trust/sbom.js')).storeSbom(ref!, registryOptions(ctx));
    return push({ ref: ref!, remote, aliases: opts.alias, plainHttp: opts.plainHttp, git: opts.git, onProgress: byteProgress(ctx) }, registryOptions(ctx));
  },
  render: renderPush,
});
