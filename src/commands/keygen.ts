import { defineCommand, option } from '../core/define-command.js';
import { renderKeygen } from '../ui/render/trust.js';

export const keygenCommand = defineCommand({
  name: 'keygen',
  summary: 'make an ECDSA key pair to sign models with (key.pem, and key.pub.pem for verifiers)',
  options: {
    output: option.string('-o, --output <file>', 'the private key to write; its public half goes beside it as NAME.pub.pem', { default: 'key.pem' }),
    curve: option.choice('--curve <curve>', ['P-256', 'P-384'] as const, 'the curve', { default: 'P-256' }),
    force: option.flag('--force', 'replace existing key files'),
  },
  examples: ['maas keygen -o key.pem', 'maas keygen -o ci-signing.pem --curve P-384'],
  async run(_args, opts, ctx) {
    const { keygen } = await import('../trust/sign.js');
    return keygen({ output: opts.output, curve: opts.curve, force: opts.force }, ctx.cwd);
  },
  render: renderKeygen,
});
