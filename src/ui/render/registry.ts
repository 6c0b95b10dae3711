/** Human renderers for the registry commands. */
import type { DiffResult } from '../../registry/diff.js';
import type { GcResult } from '../../registry/gc.js';
import type { InitResult } from '../../registry/init.js';
import type { ListResult, ShowResult } from '../../registry/query.js';
import type { RegisterResult } from '../../registry/register.js';
import type { AccuracyReport } from '../../registry/manifest.js';
import type { RemoveResult } from '../../registry/remove.js';
import type { TagResult } from '../../registry/tag.js';
import type { VerifyResult } from '../../registry/verify.js';
import type { Signature } from '../../onnx/inspect.js';
import { formatBytes } from '../../core/units.js';
import { formatShape, shortDigest, table } from '../format.js';
import type { Theme } from '../../core/output.js';
import { formatChange, formatMs, machineLine, profileLines } from './bench.js';

const visible = (s: string) => s.replace(/\x1b\[[0-9;]*m/g, '').length;

export function renderInit(r: InitResult, t: Theme): string {
  const lines = [
    t.success(`✔ Created registry ${t.bold(r.name)} in ${t.path(r.root)}`),
    r.createdRepository ? `  new git repository` : `  inside the git repository at ${r.gitRoot}`,
    `  files: ${r.files.join(', ')}`,
    `  default device: ${r.device}${r.remote ? `, default remote: ${r.remote}` : ''}`,
  ];
  const prometheus = r.files.find((f) => f.endsWith('prometheus/prometheus.yml'));
  const grafana = r.files.find((f) => f.endsWith('grafana/maas.json'));
  if (prometheus) lines.push(`  monitoring: ${t.code(`prometheus --config.file=${prometheus}`)} scrapes maas serve on 127.0.0.1:8080 with its alert rules`);
  if (grafana) lines.push(`  dashboard: import ${t.path(grafana)} into Grafana`);
  for (const warning of r.warnings) lines.push(t.warn(`⚠ ${warning}`));
  lines.push(`Next: ${t.code('maas register model.onnx')}`);
  return lines.join('\n');
}

function renderSignature(s: Signature, t: Theme): string[] {
  const rows = [
    ...s.inputs.map((i) => [t.dim('in '), i.name, i.dtype, formatShape(i.shape)]),
    ...s.outputs.map((o) => [t.dim('out'), o.name, o.dtype, formatShape(o.shape)]),
  ];
  return table(rows, visible).split('\n').map((l) => `  ${l}`);
}

/** Why a conversion registered with --force is not proven, as `register` says it at once. */
function forcedLine(a: AccuracyReport): string {
  const constant = a.outputs.filter((o) => o.constant).map((o) => o.name);
  if (a.worst <= a.tolerance && constant.length) {
    return `⚠ Kept unproven (--force): ${constant.join(', ')} did not vary on the ${a.samples} inputs compared; convert with --samples of real requests to prove it`;
  }
  return `⚠ Kept beyond tolerance (--force): worst normalized error ${a.worst.toExponential(2)} over the tolerance ${a.tolerance}`;
}

export function renderRegister(r: RegisterResult, t: Theme): string {
  if (r.status === 'unchanged') {
    return [
      `${t.success('✔')} ${t.ref(r.ref)} already holds these bytes; nothing registered${r.alias ? ` (alias ${r.alias} → ${r.version})` : ''}.`,
      `  digest ${r.digest}`,
      ...(r.repaired ?? []).map((b) => t.warn(`  restored ${b.digest} from this file: it was ${b.was === 'absent' ? 'missing from' : 'damaged in'} the store`)),
      ...(r.forcedConversion ? [t.warn(forcedLine(r.forcedConversion.accuracy))] : []),
    ].join('\n');
  }
  return [
    t.success(`✔ Registered ${t.ref(r.ref)}${r.alias ? ` as ${r.alias}` : ''} (${formatBytes(r.size)}, ${r.files.length} file${r.files.length > 1 ? 's' : ''})`),
    `  digest       ${r.digest}`,
    `  graph        ${r.graphFingerprint}`,
    `  git tag      ${r.tag}`,
    ...(r.loadChecked ? [] : [t.warn('  not load-checked (--no-load-check)')]),
    ...(r.breaking
      ? [
          t.warn(`⚠ Breaking for clients of ${r.breaking.from}: ${r.breaking.changes.map((c) => c.message).join('; ')}`),
          `  A server that serves ${r.name} by name or by policy moves to ${r.ref}; \`maas diff ${r.breaking.from} ${r.ref}\` shows every change.`,
        ]
      : []),
    ...(r.forcedConversion ? [t.warn(forcedLine(r.forcedConversion.accuracy))] : []),
    ...renderSignature(r.signature, t),
    `Next: ${t.code(`maas show ${r.ref}`)} · ${t.code(`maas serve ${r.ref}`)}`,
  ].join('\n');
}

export function renderList(r: ListResult, t: Theme): string {
  if (r.models.length === 0) return `No models in ${r.registry}. Add one with ${t.code('maas register model.onnx')}.`;
  const rows = [[t.bold('MODEL'), t.bold('VERSION'), t.bold('ALIASES'), t.bold('SIZE'), t.bold('DIGEST'), t.bold('CREATED')]];
  for (const m of r.models) {
    for (const v of [...m.versions].reverse()) {
      rows.push([m.name, String(v.version), v.aliases.join(',') || t.dim('-'), formatBytes(v.size), shortDigest(v.digest), v.created.slice(0, 19).replace('T', ' ')]);
    }
  }
  return table(rows, visible);
}

export function renderShow(r: ShowResult, t: Theme): string {
  const opsets = r.opsetImports.map((o) => `${o.domain || 'ai.onnx'} ${o.version}`).join(', ');
  return [
    `${t.ref(r.ref)}${r.aliases.length ? ` (${r.aliases.join(', ')})` : ''}`,
    `  digest       ${r.digest}`,
    `  graph        ${r.graphFingerprint}`,
    `  manifest     ${r.manifestDigest}`,
    `  size         ${formatBytes(r.size)} in ${r.files.length} file${r.files.length > 1 ? 's' : ''}`,
    `  parameters   ${r.parameterCount.toLocaleString('en-US')} (${r.precisions.join(', ') || 'none'})`,
    `  onnx         IR ${r.irVersion}, opsets ${opsets}`,
    `  producer     ${[r.producer.name, r.producer.version].filter(Boolean).join(' ') || t.dim('unknown')}`,
    `  registered   ${r.registeredBy ? `${r.registeredBy.date} by ${r.registeredBy.author} <${r.registeredBy.email}> (git tag ${r.tag})` : t.warn(`git tag ${r.tag} missing`)}`,
    ...(r.message ? [`  message      ${r.message}`] : []),
    ...(r.conversion
      ? [
          `  converted    from ${r.conversion.source.file} (${r.conversion.source.digest}, ${formatBytes(r.conversion.source.size)}): ${r.conversion.steps.join(', ')}`,
          `  accuracy     worst normalized error ${r.conversion.accuracy.worst.toExponential(2)} (tolerance ${r.conversion.accuracy.tolerance}${r.conversion.forced ? ', forced' : ''}), cosine ≥ ${Math.min(...r.conversion.accuracy.outputs.map((o) => o.cosine)).toFixed(6)} on ${r.conversion.accuracy.samples} input${r.conversion.accuracy.samples === 1 ? '' : 's'}${r.conversion.accuracy.outputs.some((o) => o.constant) ? ` (constant, so unproven: ${r.conversion.accuracy.outputs.filter((o) => o.constant).map((o) => o.name).join(', ')})` : ''}`,
        ]
      : []),
    ...(r.loadChecked ? [] : [t.warn('  not load-checked at register time')]),
    '  signature',
    ...renderSignature(r.signature, t).map((l) => `  ${l}`),
    '  files',
    ...r.files.map((f) => `    ${f.path}  ${formatBytes(f.size)}  ${shortDigest(f.digest)}${f.present ? '' : t.warn('  (blob missing: maas pull)')}`),
    ...(r.profiles.length ? ['  latency', ...profileLines(r.profiles, t)] : []),
  ].join('\n');
}

export function renderTag(r: TagResult, t: Theme): string {
  if (r.version === undefined) return t.success(`✔ Removed alias ${r.name}@${r.alias} (was ${r.previous}).`);
  if (!r.changed) return `${r.name}@${r.alias} already points to version ${r.version}.`;
  return t.success(`✔ ${r.name}@${r.alias} → ${r.version}${r.previous === undefined ? '' : ` (was ${r.previous})`}`);
}

export function renderDiff(r: DiffResult, t: Theme): string {
  const lines = [`${t.ref(r.a.ref)} → ${t.ref(r.b.ref)}`];
  if (r.sameBytes) lines.push('  identical bytes');
  else lines.push(`  bytes        ${shortDigest(r.a.digest)} → ${shortDigest(r.b.digest)} (${formatBytes(r.a.size)} → ${formatBytes(r.b.size)})`);
  lines.push(r.sameGraph ? '  graph        same fingerprint' : `  graph        ${shortDigest(r.a.graphFingerprint)} → ${shortDigest(r.b.graphFingerprint)}`);
  for (const c of r.otherChanges) lines.push(`  ${c}`);
  const short = (digest: string | undefined) => (digest ? shortDigest(digest) : 'absent');
  for (const f of r.dataFiles) lines.push(`  data file    ${f.path} ${short(f.a)} → ${short(f.b)}`);
  if (r.signatureChanges.length === 0) lines.push('  signature    unchanged');
  for (const c of r.signatureChanges) lines.push(`  ${c.breaking ? t.error('BREAKING') : t.dim('ok      ')} ${c.message}`);
  for (const c of r.latency) {
    lines.push(`  latency      ${machineLine(c.machine, c.machineId, t)}`);
    for (const b of c.batches) {
      const change = (d: { a: number; b: number; changePct: number }) => `${formatMs(d.a)} → ${formatMs(d.b)} ms (${formatChange(d.changePct)})`;
      lines.push(`    batch ${String(b.batch).padEnd(4)} p50 ${change(b.p50Ms)}  p99 ${change(b.p99Ms)}`);
    }
  }
  if (r.breaking) lines.push(t.error(`✖ ${r.signatureChanges.filter((c) => c.breaking).length} breaking change(s) for clients of ${r.a.ref}`));
  if (r.regression) {
    const { worst, thresholdPct } = r.regression;
    const where = `at batch ${worst.batch}${r.latency.length > 1 ? ` (machine ${worst.machineId})` : ''}`;
    lines.push(r.regression.regressed
      ? t.error(`✖ latency regression: ${r.b.ref}'s p50 is ${formatChange(worst.changePct)} against ${r.a.ref} ${where}, beyond ${thresholdPct}%`)
      : t.success(`✔ latency within ${thresholdPct}% of ${r.a.ref} (largest p50 change ${formatChange(worst.changePct)} ${where})`));
  }
  return lines.join('\n');
}

const READ_ONLY_LINE = '  (the registry is not writable here: read without the write lock, so a write another process has under way may show half-done)';

export function renderVerify(r: VerifyResult, t: Theme): string {
  const lines: string[] = [];
  if (r.recovered) {
    lines.push(t.warn(`⚠ An interrupted write was ${r.recovered.outcome === 'completed' ? 'completed' : 'rolled back'} (${r.recovered.paths.join(', ')}).`));
  }
  for (const p of r.problems) lines.push(t.error(`✖ ${p.message}`));
  for (const w of r.warnings) {
    lines.push(t.warn(`⚠ ${w.files} partial file${w.files === 1 ? '' : 's'} of interrupted writes in ${w.path} (${formatBytes(w.bytes)}); remove ${w.files === 1 ? 'it' : 'them'} with ${t.code(w.fix)}.`));
  }
  const summary = `${r.versions} version${r.versions === 1 ? '' : 's'}, ${r.blobs} blob${r.blobs === 1 ? '' : 's'} (${formatBytes(r.bytes)}) checked`;
  lines.push(r.ok ? t.success(`✔ Registry is consistent: ${summary}.`) : t.error(`✖ ${r.problems.length} problem${r.problems.length === 1 ? '' : 's'}; ${summary}.`));
  if (r.readOnly) lines.push(t.dim(READ_ONLY_LINE));
  return lines.join('\n');
}

export function renderRemove(r: RemoveResult, t: Theme): string {
  return [
    t.success(`✔ Removed ${r.ref}${r.removedAliases.length ? ` and alias ${r.removedAliases.join(', ')}` : ''}.`),
    `  Its blobs stay until ${t.code('maas gc')}; the version number is not reused.`,
  ].join('\n');
}

export function renderGc(r: GcResult, t: Theme): string {
  const verb = r.dryRun ? 'Would remove' : 'Removed';
  const lines = r.removed.map((b) => `  ${shortDigest(b.digest)}  ${formatBytes(b.size)}`);
  lines.unshift(t.success(`✔ ${verb} ${r.removed.length} unreferenced blob${r.removed.length === 1 ? '' : 's'} (${formatBytes(r.freedBytes)}); ${r.kept} in use.`));
  if (r.staging.length) {
    lines.push(t.success(`✔ ${verb} ${r.staging.length} partial file${r.staging.length === 1 ? '' : 's'} of interrupted writes (${formatBytes(r.stagingBytes)}):`));
    for (const f of r.staging) lines.push(`  ${f.path}  ${formatBytes(f.size)}`);
  }
  if (r.readOnly) lines.push(t.dim(READ_ONLY_LINE));
  return lines.join('\n');
}
