import { defineCommand } from '../core/define-command.js';
import { renderTrustedImport } from '../ui/render/trust.js';
import { byteProgress, importAsOptions, registryOptions, requireSignatureOptions } from './shared.js';

export const importCommand = defineCommand({
  name: 'import',
  summary: 'add a version from a `maas pack` tarball, checking every path and digest (and its signature when asked)',
  args: ['<file>'],
  options: { ...importAsOptions, ...requireSignatureOptions },
  examples: ['maas import mlp-2.tar', 'maas import mlp-2.tar --name mlp-from-vendor --json', 'maas import mlp-2.tar --require-signature --key publisher.pub.pem'],
  async run([file], opts, ctx) {
    const { importTrusted } = await import('../trust/attest.js');
    return importTrusted(
      {
        file: file!, name: opts.name, version: opts.version, onProgress: byteProgress(ctx),
        trust: { requireSignature: opts.requireSignature, key: opts.key, trustedKeys: opts.trustedKeys, trustedCa: opts.trustedCa },
      },
      registryOptions(ctx),
    );
  },
  render: renderTrustedImport,
});
