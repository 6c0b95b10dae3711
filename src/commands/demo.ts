import { defineCommand } from '../core/define-command.js';
import { EXIT_CODES } from '../core/errors.js';
import { renderRegister, renderShow, renderVerify } from '../ui/render/registry.js';
import { renderPush } from '../ui/render/remote.js';
import { byteProgress } from './shared.js';

export const demoCommand = defineCommand({
  name: 'demo',
  summary: 'run the main job on built-in defaults: register the bundled model, serve it locally, push it to an OCI layout',
  args: ['[dir]'],
  examples: ['maas demo', 'maas demo /tmp/maas-demo --json'],
  async run([dir = 'maas-demo'], _opts, ctx) {
    const { runDemo } = await import('../demo.js');
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
      '',
      `${r.serve.status === 200 ? t.success('✔') : t.error('✖')} Served mlp@prod on ${r.serve.url}: POST /v2/models/mlp/infer → ${r.serve.status}`,
      `  ${JSON.stringify((r.serve.response as { outputs?: unknown }).outputs ?? r.serve.response)}`,
      '',
      renderPush(r.push, t),
      `Next: ${t.code(`cd ${r.registry} && maas serve mlp@prod`)} · ${t.code(`skopeo inspect --raw oci:${r.registry}.oci:prod`)}`,
    ].join('\n'),
  exitCode: (r) => (r.verify.ok && r.serve.status === 200 ? EXIT_CODES.ok : EXIT_CODES.checkFailed),
});
