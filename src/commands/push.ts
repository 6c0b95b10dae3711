import { defineCommand, option } from '../core/define-command.js';
import { MaasError } from '../core/errors.js';
import { renderPush } from '../ui/render/remote.js';
import { byteProgress, modelcarBaseOption, plainHttpOption, registryOptions } from './shared.js';

export const pushCommand = defineCommand({
  name: 'push',
  summary: 'send a version to an OCI registry (oci://host/repo) or an OCI image layout (oci-layout:PATH)',
  args: ['<ref>', '[remote]'],
  options: {
    alias: option.flag('--alias', 'also tag every alias that points at the version'),
    plainHttp: plainHttpOption,
    git: option.flag('--git', "also push the registry's commits and the version's git tag to its git remote"),
    sbom: option.flag('--sbom', "also attach the version's CycloneDX AI BOM as a referrer (made and stored with the version if it has none)"),
    modelcar: option.flag('--modelcar', 'also push a KServe modelcar: an image with the model under /models, tagged <tag>-modelcar'),
    modelcarBase: modelcarBaseOption,
  },
  examples: [
    'maas push mlp@2 oci://ghcr.io/acme/mlp',
    'maas push mlp@prod oci://127.0.0.1:5000/team/mlp --alias --json',
    'maas push mlp@2 oci-layout:./export',
    'maas push mlp@2 oci://ghcr.io/acme/mlp --modelcar --modelcar-base oci://ghcr.io/acme/busybox:1.37   # also ghcr.io/acme/mlp:2-modelcar',
  ],
  async run([ref, remote], opts, ctx) {
    // From MAAS_MODELCAR_BASE it is a setting for when --modelcar is given; from the command line, a forgotten --modelcar.
    if (opts.modelcarBase !== undefined && !opts.modelcar && opts.modelcarBase !== ctx.env.MAAS_MODELCAR_BASE) {
      throw new MaasError('MAAS_USAGE', '--modelcar-base is the base of the modelcar that --modelcar pushes', { hint: 'Add --modelcar, or leave --modelcar-base out.' });
    }
    const { push } = await import('../remote/transfer.js');
    if (opts.sbom) await (await import('../trust/sbom.js')).storeSbom(ref!, registryOptions(ctx));
    return push(
      { ref: ref!, remote, aliases: opts.alias, plainHttp: opts.plainHttp, git: opts.git, modelcar: opts.modelcar, modelcarBase: opts.modelcarBase, onProgress: byteProgress(ctx) },
      registryOptions(ctx),
    );
  },
  render: renderPush,
});
