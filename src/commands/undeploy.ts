import { defineCommand, option } from '../core/define-command.js';
import { renderUndeploy } from '../ui/render/deploy.js';
import { requiredServer, serverOptions, serverTarget } from './shared.js';

export const undeployCommand = defineCommand({
  name: 'undeploy',
  summary: 'unload a model (NAME) or one version (NAME@VERSION) from a running `maas serve`, after its requests finish',
  args: ['<ref>'],
  options: {
    to: option.string('--to <url>', 'the server, as `maas serve` printed it; required', { env: 'MAAS_SERVER' }),
    ...serverOptions,
  },
  examples: ['maas undeploy mlp@1 --to http://127.0.0.1:8080', 'maas undeploy mlp --to https://models.internal:8080 --token "$MAAS_TOKEN"'],
  async run([ref], opts, ctx) {
    const { undeploy } = await import('../serve/deploy.js');
    return undeploy({ ref: ref!, server: serverTarget(requiredServer(opts.to), opts, ctx) });
  },
  render: renderUndeploy,
});
