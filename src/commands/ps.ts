import { defineCommand, option } from '../core/define-command.js';
import { SERVING_DEFAULTS } from '../inference/config.js';
import { renderPs } from '../ui/render/deploy.js';
import { serverOptions, serverTarget } from './shared.js';

export const psCommand = defineCommand({
  name: 'ps',
  summary: 'what a running `maas serve` has loaded: version, device, memory, requests in flight, idle time, keep-alive',
  options: {
    server: option.string('--server <url>', 'the server, as `maas serve` printed it', { default: `http://${SERVING_DEFAULTS.host}:${SERVING_DEFAULTS.port}`, env: 'MAAS_SERVER' }),
    ...serverOptions,
    all: option.flag('--all', 'also the versions it could load but has not'),
  },
  examples: ['maas ps', 'maas ps --server https://models.internal:8080 --token "$MAAS_TOKEN" --json'],
  async run(_args, opts, ctx) {
    const { listServer } = await import('../serve/deploy.js');
    return listServer({ server: serverTarget(opts.server, opts, ctx), all: opts.all });
  },
  render: renderPs,
});
