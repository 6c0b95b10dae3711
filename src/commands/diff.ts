import { defineCommand, option } from '../core/define-command.js';
import { EXIT_CODES } from '../core/errors.js';
import { renderDiff } from '../ui/render/registry.js';
import { registryOptions } from './shared.js';

export const diffCommand = defineCommand({
  name: 'diff',
  summary: 'compare two versions: bytes, graph fingerprint, signature; names breaking changes',
  args: ['<a>', '<b>'],
  options: { failOnBreaking: option.flag('--fail-on-breaking', `exit ${EXIT_CODES.checkFailed} when clients of <a> would break on <b>`) },
  examples: ['maas diff mlp@1 mlp@2', 'maas diff mlp@prod mlp --fail-on-breaking'],
  async run([a, b], _opts, ctx) {
    const { diffVersions } = await import('../registry/diff.js');
    return diffVersions({ a: a!, b: b! }, registryOptions(ctx));
  },
  render: renderDiff,
  exitCode: (r, opts) => (opts.failOnBreaking && r.breaking ? EXIT_CODES.checkFailed : EXIT_CODES.ok),
});
