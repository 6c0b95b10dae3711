import { defineCommand, option } from '../core/define-command.js';
import { EXIT_CODES, MaasError } from '../core/errors.js';
import { renderDiff } from '../ui/render/registry.js';
import { registryOptions } from './shared.js';

/** `10%`, `2.5%` or `10`: a percentage ≥ 0. */
function parsePercent(text: string): number {
  const match = /^\s*(\d+(?:\.\d+)?)\s*%?\s*$/.exec(text);
  if (!match) throw new MaasError('MAAS_USAGE', `--fail-on-regression expects a percentage such as 10%, got '${text.slice(0, 40)}'`, { hint: 'For example --fail-on-regression 10%.' });
  return Number(match[1]);
}

export const diffCommand = defineCommand({
  name: 'diff',
  summary: 'compare two versions: bytes, graph fingerprint, signature, latency profiles; names breaking changes and regressions',
  args: ['<a>', '<b>'],
  options: {
    failOnBreaking: option.flag('--fail-on-breaking', `exit ${EXIT_CODES.checkFailed} when clients of <a> would break on <b>`),
    failOnRegression: option.custom('--fail-on-regression <pct>', `exit ${EXIT_CODES.checkFailed} when <b>'s p50 latency at a batch size is more than this much above <a>'s, on a machine that profiled both (maas bench); exit ${EXIT_CODES.usage} when none did`, parsePercent),
  },
  examples: ['maas diff mlp@1 mlp@2', 'maas diff mlp@prod mlp --fail-on-breaking', 'maas bench mlp@1 && maas bench mlp@2 && maas diff mlp@1 mlp@2 --fail-on-regression 10%'],
  async run([a, b], opts, ctx) {
    const { diffVersions } = await import('../registry/diff.js');
    return diffVersions({ a: a!, b: b!, regressionPct: opts.failOnRegression }, registryOptions(ctx));
  },
  render: renderDiff,
  exitCode: (r, opts) => ((opts.failOnBreaking && r.breaking) || r.regression?.regressed ? EXIT_CODES.checkFailed : EXIT_CODES.ok),
});
