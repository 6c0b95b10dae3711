/** Human renderers for push and pull. */
import type { PackResult } from '../../remote/archive.js';
import type { ModelcarResult } from '../../remote/modelcar.js';
import type { PullResult, PushResult } from '../../remote/transfer.js';
import { formatBytes } from '../../core/units.js';
import { shortDigest } from '../format.js';
import type { Theme } from '../../core/output.js';

export function renderPush(r: PushResult, t: Theme): string {
  return [
    t.success(`✔ Pushed ${t.ref(r.ref)} to ${r.remote} as ${r.tags.join(', ')}`),
    `  manifest ${r.manifestDigest}`,
    `  ${r.blobs - r.blobsSkipped} of ${r.blobs} blobs sent (${formatBytes(r.bytesSent)}), ${r.blobsSkipped} already there, in ${(r.durationMs / 1000).toFixed(1)} s`,
    ...(r.referrers ? [`  ${r.referrers.pushed + r.referrers.present} attestation${r.referrers.pushed + r.referrers.present === 1 ? '' : 's'} (signatures, provenance, SBOM) as referrers via the ${r.referrers.via}, ${r.referrers.present} already there`] : []),
    ...(r.gitRemote ? [`  git commits and tag pushed to ${r.gitRemote}`] : []),
    ...(r.modelcar ? [renderModelcar(r.modelcar)] : []),
  ].join('\n');
}

function renderModelcar(m: ModelcarResult): string {
  const what = m.status === 'present' ? 'already there' : `${formatBytes(m.bytesSent)} sent${m.layer ? `, /models layer ${formatBytes(m.layer.size)}` : ''}`;
  return `  modelcar ${m.repository}:${m.tags.join(', ')} (${m.digest}), ${m.base ? `on ${m.base.name}` : 'no base'}, ${m.platforms.join(' ')}; ${what}`;
}

export function renderPull(r: PullResult, t: Theme, verb: 'Pulled' | 'Imported' = 'Pulled'): string {
  const head = r.status === 'unchanged'
    ? `${t.success('✔')} ${t.ref(r.ref)} is already here with manifest ${shortDigest(r.manifestDigest)}; ${r.blobsFetched ? 'its missing blobs were fetched' : 'nothing changed'}.`
    : t.success(`✔ ${verb} ${r.remote} as ${t.ref(r.ref)}`);
  const came = Object.entries(r.attestations).map(([kind, n]) => `${n} ${kind}${n === 1 ? '' : 's'}`);
  return [
    head,
    `  manifest ${r.manifestDigest}`,
    `  ${r.blobsFetched} blob(s) fetched (${formatBytes(r.bytesFetched)}), every digest verified`,
    ...(came.length ? [`  with ${came.join(', ')} (referrers)`] : []),
  ].join('\n');
}

export function renderPack(r: PackResult, t: Theme): string {
  return [
    t.success(`✔ Packed ${t.ref(r.ref)} into ${t.path(r.archive)} (${formatBytes(r.archiveBytes)})`),
    `  manifest ${r.manifestDigest}, tags ${r.tags.join(', ')}`,
    `Next: ${t.code(`maas import ${r.archive}`)} on the receiving side`,
  ].join('\n');
}
