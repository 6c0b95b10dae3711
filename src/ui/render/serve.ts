/** Human renderers for serve, predict and doctor. */
import type { RunningServer } from '../../serve/server.js';
import type { DoctorResult } from '../../inference/doctor.js';
import { table } from '../format.js';
import type { Theme } from '../../core/output.js';

export function renderServing(r: Omit<RunningServer, 'close'>, t: Theme): string {
  const lines = r.models.map((m) => {
    const aliases = Object.entries(m.aliases).map(([a, v]) => `${a}→${v}`).join(', ');
    return `  ${t.ref(m.name)} versions ${m.versions.join(', ')}${aliases ? ` (${aliases})` : ''} ${m.provider === null ? t.dim('(loads on its first request)') : `on ${m.provider}`}`;
  });
  const security = r.tls ? ` (TLS${r.tls.mutual ? ', client certificates required' : ''})` : '';
  return [
    t.success(`✔ Serving on ${r.url}${r.grpc ? ` and gRPC ${r.grpc.address}` : ''}${security}`),
    ...lines,
    `  KServe v2: ${r.url}/v2/models/<name>/infer · TF Serving: ${r.url}/v1/models/<name>:predict · ${r.url}/metrics`,
    ...(r.grpc ? [`  gRPC: inference.GRPCInferenceService/ModelInfer on ${r.grpc.address}`] : []),
    ...(r.health ? [`  Probes (plain HTTP, no token): ${r.health.url}/v2/health/live and /v2/health/ready`] : []),
  ].join('\n');
}

export function renderDoctor(r: DoctorResult, t: Theme): string {
  const rows = r.providers.map((p) => [p.name, p.available ? t.success('yes') : t.error('no'), p.available ? `${p.loadMs} ms to load a model` : p.error ?? '']);
  const fixes = r.providers.filter((p) => !p.available && p.fix).map((p) => `  ${p.name}: ${p.fix}`);
  return [
    `maas ${r.maas} · node ${r.node} · onnxruntime-node ${r.onnxruntime} · ${r.platform} · ${r.cpus} cores`,
    table([[t.bold('PROVIDER'), t.bold('WORKS'), t.bold('DETAIL')], ...rows], (s) => s.replace(/\x1b\[[0-9;]*m/g, '').length),
    `--device auto would use: ${r.autoDevice}`,
    ...(fixes.length ? ['To enable:', ...fixes] : []),
  ].join('\n');
}
