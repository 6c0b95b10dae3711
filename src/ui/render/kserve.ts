/** Human renderer for `maas export --format kserve`: the YAML itself without -o, a summary of the files with it. */
import type { Theme } from '../../core/output.js';
import { formatBytes } from '../../core/units.js';
import type { KServeExportResult } from '../../export/kserve.js';

export function renderKServeExport(r: KServeExportResult, t: Theme): string {
  if (r.files.length === 0) return r.yaml.trimEnd();
  const car = r.modelcar;
  const sent = car.status === 'pushed' ? `pushed (${formatBytes((r.pushed?.bytesSent ?? 0) + (r.pushed?.modelcar?.bytesSent ?? 0))} sent)` : 'already on the remote';
  const apply = r.files.filter((f) => f.endsWith('.yaml')).map((f) => `-f ${f}`).join(' ');
  return [
    t.success(`✔ Exported ${t.ref(r.ref)} as the InferenceService ${r.name}${r.namespace ? ` in ${r.namespace}` : ''}`),
    ...r.files.map((f) => `  ${t.path(f)}`),
    `  storageUri  ${r.storageUri}`,
    `  modelcar    ${sent}${car.base ? `, on ${car.base}` : ''}; it holds manifest ${r.manifestDigest}`,
    `  runtime     ${r.servingRuntime ?? 'the one KServe picks for onnx + v2'}, protocol v2`,
    ...(r.runtimeImage ? [`Build the runtime image first: ${t.code(`docker build -t ${r.runtimeImage} ${r.files[0]!.replace(/\/[^/]+$/, '')} && docker push ${r.runtimeImage}`)}`] : []),
    `Next: ${t.code(`kubectl apply ${apply}`)}, then POST ${r.inferPath} on its URL, as on maas serve`,
  ].join('\n');
}
