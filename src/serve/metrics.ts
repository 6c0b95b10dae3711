/** Prometheus metrics for `/metrics` (prom-client), labelled by served model and version only. */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { RuntimeObserver } from '../inference/runtime.js';

export interface ServeMetrics {
  registry: Registry;
  request(labels: { model: string; version: string; protocol: string; code: string }, seconds: number): void;
  observer(model: string, version: number): RuntimeObserver;
  loaded(model: string, version: number, seconds: number): void;
  setQueueDepth(read: () => { model: string; version: number; depth: number }[]): void;
}

const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

export function createMetrics(): ServeMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  // prom-client names these gauges *_total, which Prometheus reserves for counters (promtool rejects them).
  for (const name of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total']) registry.removeSingleMetric(name);
  const requests = new Counter({ name: 'maas_requests_total', help: 'requests (REST and gRPC) by model, version, protocol and status code', labelNames: ['model', 'version', 'protocol', 'code'], registers: [registry] });
  const latency = new Histogram({ name: 'maas_request_duration_seconds', help: 'request latency, REST and gRPC', labelNames: ['model', 'version', 'protocol', 'code'], buckets: LATENCY_BUCKETS, registers: [registry] });
  const inference = new Histogram({ name: 'maas_inference_duration_seconds', help: 'onnxruntime session.run time per batch', labelNames: ['model', 'version'], buckets: LATENCY_BUCKETS, registers: [registry] });
  const batches = new Histogram({ name: 'maas_batch_size', help: 'rows per executed batch', labelNames: ['model', 'version'], buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256], registers: [registry] });
  const merged = new Histogram({ name: 'maas_batch_requests', help: 'requests merged per executed batch', labelNames: ['model', 'version'], buckets: [1, 2, 4, 8, 16, 32, 64], registers: [registry] });
  const load = new Gauge({ name: 'maas_model_load_seconds', help: 'time to load a model version into its workers', labelNames: ['model', 'version'], registers: [registry] });
  let readDepth: () => { model: string; version: number; depth: number }[] = () => [];
  new Gauge({
    name: 'maas_queue_depth', help: 'requests waiting for a worker', labelNames: ['model', 'version'], registers: [registry],
    collect() {
      this.reset();
      for (const { model, version, depth } of readDepth()) this.set({ model, version: String(version) }, depth);
    },
  });
  // Children bound to their labels, kept per series (model → version → protocol → code): prom-client
  // checks and hashes a label object on every call otherwise, and a joined key costs a string a request.
  type Child = { count: ReturnType<typeof requests.labels>; time: ReturnType<typeof latency.labels> };
  const children = new Map<string, Map<string, Map<string, Map<string, Child>>>>();
  const level = <V>(map: Map<string, V>, key: string, make: () => V): V => {
    let value = map.get(key);
    if (value === undefined) map.set(key, (value = make()));
    return value;
  };
  return {
    registry,
    request({ model, version, protocol, code }, seconds) {
      const byCode = level(level(level(children, model, () => new Map()), version, () => new Map()), protocol, () => new Map<string, Child>());
      const child = level(byCode, code, () => ({ count: requests.labels(model, version, protocol, code), time: latency.labels(model, version, protocol, code) }));
      child.count.inc();
      child.time.observe(seconds);
    },
    observer: (model, version) => {
      const labels = [model, String(version)];
      const rows = batches.labels(...labels);
      const count = merged.labels(...labels);
      const run = inference.labels(...labels);
      return {
        batch: (r, c) => {
          rows.observe(r);
          count.observe(c);
        },
        inference: (ms) => run.observe(ms / 1000),
      };
    },
    loaded: (model, version, seconds) => load.set({ model, version: String(version) }, seconds),
    setQueueDepth: (read) => (readDepth = read),
  };
}
