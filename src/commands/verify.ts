import { defineCommand } from '../core/define-command.js';
import { EXIT_CODES } from '../core/errors.js';
import { renderVerify } from '../ui/render/registry.js';
import { byteProgress, registryOptions } from './shared.js';

export const verifyCommand = defineCommand({
  name: 'verify',
  summary: 're-hash every blob against its manifest; finish or undo interrupted writes',
  args: ['[ref]'],
  examples: ['maas verify', 'maas verify mlp@2 --json'],
  async run([ref], _opts, ctx) {
    const { verifyRegistry } = await import('../registry/verify.js');
    return verifyRegistry({ ref, onProgress: byteProgress(ctx) }, registryOptions(ctx));
  },
  render: renderVerify,
  exitCode: (r) => (r.ok ? EXIT_CODES.ok : EXIT_CODES.checkFailed),
});
