/** Human renderer for `maas export --format triton`. */
import type { Theme } from '../../core/output.js';
import { formatBytes } from '../../core/units.js';
import type { TritonExportResult } from '../../export/triton.js';

/** Triton's HTTP port when tritonserver is not told another (--http-port). */
const TRITON_HTTP_PORT = 8000;

function describePolicy(policy: TritonExportResult['versionPolicy']): string {
  if ('latest' in policy) return `latest ${policy.latest.num_versions}`;
  if ('all' in policy) return 'all';
  return `specific ${policy.specific.versions.join(', ')}`;
}

export function renderTritonExport(r: TritonExportResult, t: Theme): string {
  const refs = r.versions.map((v) => t.ref(`${r.model}@${v}`)).join(', ');
  const bytes = r.files.reduce((n, f) => n + f.size, 0);
  const batching = r.maxBatchSize > 0 ? `max_batch_size ${r.maxBatchSize}, dynamic batching` : 'max_batch_size 0 (no batching)';
  return [
    t.success(`✔ Exported ${refs} as a Triton model repository in ${t.path(r.repository)}`),
    `  ${r.model}/config.pbtxt  ${batching}, ${r.instanceGroup.count} × ${r.instanceGroup.kind}, version policy ${describePolicy(r.versionPolicy)}`,
    `  files         ${r.files.length} (${formatBytes(bytes)})${r.signed.length ? `, model.sig beside version ${r.signed.join(', ')}` : ''}`,
    `  warm-up       ${r.warmupSamples ? `${r.warmupSamples} stored sample${r.warmupSamples === 1 ? '' : 's'}` : 'none (no version has stored samples)'}`,
    `Next: ${t.code(`tritonserver --model-repository=${r.repository}`)}`,
    `  then the same KServe v2 requests as maas serve: POST http://HOST:${TRITON_HTTP_PORT}/v2/models/${r.model}/infer`,
  ].join('\n');
}
