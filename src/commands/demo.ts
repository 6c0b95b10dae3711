import { defineCommand } from '../core/define-command.js';
import { EXIT_CODES } from '../core/errors.js';
import type { DemoResult } from '../registry/demo.js';
import { renderRegister, renderShow, renderVerify } from '../ui/render/registry.js';
import { byteProgress } from './shared.js';

export const demoCommand = defineCommand<DemoResult>({
  name: 'demo',
  summary: 'run the main job on built-in defaults: a local registry and the bundled fixture model',
  args: ['[dir]'],
  examples: ['maas demo', 'maas demo /tmp/maas-demo --json'],
  async run([dir = 'maas-demo'], _opts, ctx) {
    const { runDemo } = await import('../registry/demo.js');
    return runDemo({ dir, onProgress: byteProgress(ctx) }, ctx);
  },
  render: (r, t) =>
    [
      `${r.createdRegistry ? 'Created' : 'Using'} registry ${t.path(r.registry)}`,
      renderRegister(r.register, t),
      '',
      renderShow(r.show, t),
      '',
      renderVerify(r.verify, t),
      `Next: ${t.code(`cd ${r.registry} && maas list`)}`,
    ].join('\n'),
  exitCode: (r) => (r.verify.ok ? EXIT_CODES.ok : EXIT_CODES.checkFailed),
});
