import { defineCommand, option } from '../core/define-command.js';
import { renderDeploy } from '../ui/render/deploy.js';
import { byteProgress, plainHttpOption, registryOptions, requiredServer, serverOptions, serverTarget } from './shared.js';

export const deployCommand = defineCommand({
  name: 'deploy',
  summary: "load a version on a running `maas serve` (pushing it first to a remote the server pulls from, when the server lacks it)",
  args: ['<ref>'],
  options: {
    to: option.string('--to <url>', 'the server, as `maas serve` printed it (http://host:port or https://...); required', { env: 'MAAS_SERVER' }),
    ...serverOptions,
    remote: option.string('--remote <remote>', 'where to push when the server lacks the version (oci://host/repo or a named remote)', { defaultText: "maas.yaml's defaults.remote" }),
    plainHttp: plainHttpOption,
  },
  examples: [
    'maas deploy mlp@2 --to http://127.0.0.1:8080',
    'maas deploy mlp@prod --to https://models.internal:8080 --token "$MAAS_TOKEN" --tls-ca ca.pem --remote oci://registry.internal/team --json',
  ],
  async run([ref], opts, ctx) {
    const { deploy } = await import('../serve/deploy.js');
    return deploy({ ref: ref!, server: serverTarget(requiredServer(opts.to), opts, ctx), remote: opts.remote, plainHttp: opts.plainHttp, onProgress: byteProgress(ctx) }, registryOptions(ctx));
  },
  render: renderDeploy,
});
