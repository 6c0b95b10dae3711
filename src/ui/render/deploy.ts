/** Human renderers for deploy, undeploy and ps. */
import type { Theme } from '../../core/output.js';
import { formatBytes, formatDuration } from '../../core/units.js';
import type { VersionStatus } from '../../inference/manager.js';
import type { DeployResult, PsResult, UndeployResult } from '../../serve/deploy.js';
import { table } from '../format.js';

const plain = (s: string) => s.replace(/\x1b\[[0-9;]*m/g, '').length;

function stateText(s: VersionStatus, t: Theme): string {
  return s.state === 'READY' ? t.success(s.state) : s.state === 'UNAVAILABLE' ? t.warn(s.state) : s.state;
}

export function renderDeploy(r: DeployResult, t: Theme): string {
  const how = r.via === 'registry' ? 'it had the version already' : `pushed to ${r.pushed!.remote} and pulled by the server from ${r.source}`;
  return [
    t.success(`✔ ${t.ref(`${r.name}@${r.version}`)} is loaded on ${r.server}`),
    `  ${how}`,
    `  manifest ${r.manifestDigest}`,
    ...r.versions.map((s) => `  ${s.name}@${s.version} ${stateText(s, t)}${s.device ? ` on ${s.device}` : ''}${s.resident_bytes !== null ? `, ${formatBytes(s.resident_bytes)} resident` : ''}${s.reason ? ` (${s.reason})` : ''}`),
  ].join('\n');
}

export function renderUndeploy(r: UndeployResult, t: Theme): string {
  return [
    t.success(`✔ Unloaded ${t.ref(r.name)} from ${r.server}: ${r.versions.map((s) => s.version).join(', ')}`),
    `  it answers 503 until loaded again (\`maas deploy ${r.name}@VERSION --to ${r.server}\`)`,
  ].join('\n');
}

function keepAlive(s: VersionStatus): string {
  if (s.pinned) return 'pinned';
  if (s.keep_alive_ms_left === null) return s.state === 'READY' ? 'forever' : '-';
  return `${formatDuration(s.keep_alive_ms_left)} left`;
}

export function renderPs(r: PsResult, t: Theme): string {
  if (r.models.length === 0) return `Nothing loaded on ${r.server}. \`maas ps --all\` lists what it could load.`;
  const rows = r.models.map((s) => [
    t.ref(s.name), s.version, stateText(s, t), s.device ?? '-',
    s.resident_bytes === null ? '-' : formatBytes(s.resident_bytes),
    `${s.in_flight}${s.queued ? ` +${s.queued} queued` : ''}`,
    s.idle_ms === null ? '-' : formatDuration(s.idle_ms),
    keepAlive(s),
  ]);
  return table([['MODEL', 'VERSION', 'STATE', 'DEVICE', 'MEMORY', 'IN FLIGHT', 'IDLE', 'KEEP-ALIVE'].map((h) => t.bold(h)), ...rows], plain);
}
