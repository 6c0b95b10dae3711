import { defineCommand, option } from '../core/define-command.js';
import { EXIT_CODES } from '../core/errors.js';
import { renderVerifyAll } from '../ui/render/trust.js';
import { byteProgress, registryOptions, trustOptions } from './shared.js';

export const verifyCommand = defineCommand({
  name: 'verify',
  summary: 're-hash every blob against its manifest; finish or undo interrupted writes; with --signatures, check who signed each version',
  args: ['[ref]'],
  options: {
    signatures: option.flag('--signatures', 'also require each version to carry a signature that verifies with the trusted keys'),
    ...trustOptions,
  },
  examples: ['maas verify', 'maas verify mlp@2 --json', 'maas verify mlp@2 --signatures --key key.pub.pem', 'maas verify --signatures --trusted-keys keys/'],
  async run([ref], opts, ctx) {
    const { verifyRegistry } = await import('../registry/verify.js');
    const registry = await verifyRegistry({ ref, onProgress: byteProgress(ctx) }, registryOptions(ctx));
    if (!opts.signatures) return registry;
    const { verifySignatures } = await import('../trust/attest.js');
    const signatures = await verifySignatures({ ref, trust: { key: opts.key, trustedKeys: opts.trustedKeys, trustedCa: opts.trustedCa } }, registryOptions(ctx));
    return { ...registry, ok: registry.ok && signatures.ok, signatures };
  },
  render: renderVerifyAll,
  exitCode: (r) => (r.ok ? EXIT_CODES.ok : EXIT_CODES.checkFailed),
});
