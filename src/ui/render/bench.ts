/** Human renderers for latency profiles: `maas bench`, and the profile lines `show` and `diff` print. */
import type { Theme } from '../../core/output.js';
import { formatDuration } from '../../core/units.js';
import type { BenchResult } from '../../inference/bench.js';
import type { BatchProfile, MachineFingerprint, VersionProfile } from '../../registry/profiles.js';
import { table } from '../format.js';

const visible = (s: string) => s.replace(/\x1b\[[0-9;]*m/g, '').length;

/** Milliseconds with about three significant digits. */
export function formatMs(ms: number): string {
  return ms < 1 ? ms.toFixed(3) : ms < 100 ? ms.toFixed(2) : ms.toFixed(1);
}

/** A rate as a whole number with thousands separators. */
export function formatRate(perSecond: number): string {
  return Math.round(perSecond).toLocaleString('en-US');
}

/** A change in percent with its sign: +12.5%, -3.0%. */
export function formatChange(pct: number): string {
  return `${pct > 0 ? '+' : ''}${pct.toFixed(1)}%`;
}

/** BATCH P50 P90 P99 ROWS/S REQ/S, then one line per skipped batch size. */
export function profileTable(batches: BatchProfile[], t: Theme, indent = '  '): string[] {
  const measured = batches.filter((b) => b.status === 'ok');
  const lines: string[] = [];
  if (measured.length) {
    const rows = [[t.bold('BATCH'), t.bold('P50 MS'), t.bold('P90 MS'), t.bold('P99 MS'), t.bold('ROWS/S'), t.bold('REQ/S')]];
    for (const b of measured) rows.push([String(b.batch), formatMs(b.p50Ms), formatMs(b.p90Ms), formatMs(b.p99Ms), formatRate(b.rowsPerSec), formatRate(b.requestsPerSec)]);
    lines.push(...table(rows, visible).split('\n').map((l) => `${indent}${l}`));
  }
  for (const b of batches) if (b.status === 'skipped') lines.push(`${indent}${t.warn(`batch ${b.batch} skipped: ${b.reason}`)}`);
  return lines;
}

/** A fingerprint in a few words. */
export function describeMachine(machine: MachineFingerprint): string {
  const where = machine.mode === 'server' ? `through a server on ${machine.server ?? '?'}` : 'in-process';
  return `${machine.provider}, ${where}, ${machine.cpu} (${machine.cores} cores), onnxruntime ${machine.onnxruntime}, node ${machine.node}`;
}

export function machineLine(machine: MachineFingerprint, machineId: string, t: Theme): string {
  return `${describeMachine(machine)} ${t.dim(`(machine ${machineId})`)}`;
}

/** `show`'s lines for a version's profiles: per machine a heading, then a line per batch size. */
export function profileLines(profiles: VersionProfile[], t: Theme, indent = '    '): string[] {
  const lines: string[] = [];
  for (const p of profiles) {
    lines.push(`${indent}${machineLine(p.machine, p.machineId, t)}, ${p.at.slice(0, 19).replace('T', ' ')}, ${formatDuration(p.durationMs)} per batch size`);
    for (const b of p.batches) {
      lines.push(b.status === 'ok'
        ? `${indent}  batch ${String(b.batch).padEnd(4)} p50 ${formatMs(b.p50Ms)} ms  p90 ${formatMs(b.p90Ms)} ms  p99 ${formatMs(b.p99Ms)} ms  ${formatRate(b.rowsPerSec)} rows/s  ${formatRate(b.requestsPerSec)} req/s`
        : `${indent}  batch ${String(b.batch).padEnd(4)} ${t.warn(`skipped: ${b.reason}`)}`);
    }
  }
  return lines;
}

export function renderBench(r: BenchResult, t: Theme): string {
  const how = r.mode === 'server' ? `through ${r.server}` : 'in-process';
  const lines = [
    `${t.ref(r.ref)} ${how} on ${r.provider}${r.threads === undefined ? '' : `, ${r.threads} thread${r.threads === 1 ? '' : 's'}`}, ${formatDuration(r.durationMs)} per batch size, one request at a time`,
    ...profileTable(r.batches, t),
    `  machine ${machineLine(r.machine, r.machineId, t)}`,
  ];
  if (r.recorded) {
    lines.push(t.success(`✔ Recorded in ${t.path(r.recorded.path)}${r.recorded.replaced ? " (replacing this machine's earlier profile)" : ''}.`) + ` Next: ${t.code(`maas show ${r.ref}`)} · ${t.code(`maas diff ${r.name}@OTHER ${r.ref} --fail-on-regression 10%`)}`);
  } else {
    lines.push(t.warn('⚠ No batch size could be measured; nothing recorded.'));
  }
  return lines.join('\n');
}
