/** Human renderer for convert: sizes, what changed, and the accuracy proof. */
import type { ConvertResult } from '../../convert/convert.js';
import { formatBytes } from '../../core/units.js';
import { table } from '../format.js';
import type { Theme } from '../../core/output.js';

/** `52 % smaller`, or plainly that it grew: scales and Dequantize nodes can outweigh tiny weights. */
function sizeChange(before: number, after: number): string {
  const percent = Math.round((Math.abs(after - before) / before) * 100);
  if (percent === 0) return 'about the same size';
  return after < before ? `${percent} % smaller` : `grew by ${percent} %`;
}

export function renderConvert(r: ConvertResult, t: Theme): string {
  const a = r.accuracy;
  const rows = a.outputs.map((o) => [o.name, o.maxAbsError.toExponential(2), o.normalizedError.toExponential(2), o.cosine.toFixed(6) + (o.constant ? '  constant on these inputs: proves nothing' : '')]);
  return [
    (r.forced ? t.warn(a.outputs.every((o) => o.constant) ? '⚠ Kept unproven (--force): no output varied on these inputs: ' : '⚠ Kept beyond tolerance (--force): ') : t.success('✔ ')) + `Converted ${r.source.ref ?? t.path(r.source.path)} → ${t.path(r.output.path)}`,
    `  steps        ${r.steps.join(', ')}`,
    `  size         ${formatBytes(r.source.size)} → ${formatBytes(r.output.size)} (${sizeChange(r.source.size, r.output.size)})`,
    ...(r.quantize ? [`  quantized    ${r.quantize.quantized.length} weight(s)${r.quantize.skipped.length ? `, skipped ${r.quantize.skipped.map((s) => `${s.name} (${s.reason})`).join(', ')}` : ''}`] : []),
    `  graph        ${r.source.graphFingerprint.slice(7, 19)} → ${r.output.graphFingerprint.slice(7, 19)}`,
    ...(r.latency ? [`  latency      p50 ${r.latency.originalP50Ms.toFixed(3)} ms → ${r.latency.convertedP50Ms.toFixed(3)} ms (${r.latency.ratio.toFixed(2)}×) at batch 1 on this machine's ${r.latency.provider}`] : []),
    `  accuracy on ${a.samples} input${a.samples === 1 ? '' : 's'} (tolerance ${a.tolerance}):`,
    ...table([['  output', 'max |Δ|', 'normalized', 'cosine'], ...rows.map((row) => [`  ${row[0]}`, ...row.slice(1)])]).split('\n'),
  ].join('\n');
}
