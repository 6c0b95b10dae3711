/** Prometheus metrics for `/metrics` (prom-client), labelled by served model and version only. */
import { Counter, Gauge, Histogram, type Metric, Registry, collectDefaultMetrics } from 'prom-client';
import type { MemoryBudget, ServeEvent } from '../inference/manager.js';
import type { RuntimeObserver } from '../inference/runtime.js';
import { ServeStatistics } from './statistics.js';

export interface ServeMetrics {
  registry: Registry;
  /** the same runs again as Triton's statistics extension reports them. */
  statistics: ServeStatistics;
  /** one answered request: `labels` as the transport filled them in, `code` its status. */
  request(labels: { model: string; version: string; protocol: string }, code: string, seconds: number): void;
  observer(model: string, version: number): RuntimeObserver;
  /** a model's life cycle: loads, failures, unloads and evictions by reason, resident bytes. */
  lifecycle(event: ServeEvent): void;
  setQueueDepth(read: () => { model: string; version: number; depth: number }[]): void;
  setBudget(budget: MemoryBudget | undefined): void;
}

/** Unload reasons that are evictions: the server chose to make room or to let an idle version go. */
const EVICTIONS = new Set(['memory', 'max_models', 'keep_alive']);

const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

export function createMetrics(): ServeMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  // prom-client names these gauges *_total, which Prometheus reserves for counters (promtool rejects them).
  for (const name of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total']) registry.removeSingleMetric(name);
  const requests = new RequestSeries();
  // Both read the same series when scraped: a request's count is its latency observation's count.
  new Counter({
    name: 'maas_requests_total', help: 'requests (REST and gRPC) by model, version, protocol and status code', labelNames: REQUEST_LABELS, registers: [registry],
    collect() {
      this.reset();
      for (const series of requests.all()) this.inc(series.labels, series.count);
    },
  });
  registry.registerMetric(requests.histogram('maas_request_duration_seconds', 'request latency, REST and gRPC') as unknown as Metric);
  const inference = new Histogram({ name: 'maas_inference_duration_seconds', help: 'onnxruntime session.run time per batch', labelNames: ['model', 'version'], buckets: LATENCY_BUCKETS, registers: [registry] });
  const batches = new Histogram({ name: 'maas_batch_size', help: 'rows per executed batch', labelNames: ['model', 'version'], buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256], registers: [registry] });
  const merged = new Histogram({ name: 'maas_batch_requests', help: 'requests merged per executed batch', labelNames: ['model', 'version'], buckets: [1, 2, 4, 8, 16, 32, 64], registers: [registry] });
  const load = new Gauge({ name: 'maas_model_load_seconds', help: 'time the last load of a model version took, warm-up included', labelNames: ['model', 'version'], registers: [registry] });
  const loads = new Counter({ name: 'maas_model_loads_total', help: 'model version loads', labelNames: ['model', 'version'], registers: [registry] });
  const loadFailures = new Counter({ name: 'maas_model_load_failures_total', help: 'model version loads that failed', labelNames: ['model', 'version'], registers: [registry] });
  const unloads = new Counter({ name: 'maas_model_unloads_total', help: 'model version unloads by reason (memory, max_models, keep_alive, request, policy)', labelNames: ['model', 'version', 'reason'], registers: [registry] });
  const evictions = new Counter({ name: 'maas_model_evictions_total', help: 'unloads the server chose, by reason (memory, max_models, keep_alive)', labelNames: ['model', 'reason'], registers: [registry] });
  const resident = new Gauge({ name: 'maas_model_resident_bytes', help: "the process's resident-size growth measured around a loaded version's load", labelNames: ['model', 'version'], registers: [registry] });
  const loaded = new Gauge({ name: 'maas_models_loaded', help: 'model versions loaded now', registers: [registry] });
  const swapWaits = new Counter({ name: 'maas_swap_waits_total', help: 'version swaps the memory budget made wait: the old version unloaded before the new one loaded', labelNames: ['model'], registers: [registry] });
  const budgetBytes = new Gauge({ name: 'maas_memory_budget_bytes', help: '--memory-budget, where set', registers: [registry] });
  const budgetModels = new Gauge({ name: 'maas_max_loaded_models', help: '--max-loaded-models, where set', registers: [registry] });
  let readDepth: () => { model: string; version: number; depth: number }[] = () => [];
  new Gauge({
    name: 'maas_queue_depth', help: 'requests waiting for a worker', labelNames: ['model', 'version'], registers: [registry],
    collect() {
      this.reset();
      for (const { model, version, depth } of readDepth()) this.set({ model, version: String(version) }, depth);
    },
  });
  const statistics = new ServeStatistics();
  return {
    registry,
    statistics,
    request: (labels, code, seconds) => requests.observe(labels.model, labels.version, labels.protocol, code, seconds),
    observer: (model, version) => {
      const labels = [model, String(version)];
      const rows = batches.labels(...labels);
      const count = merged.labels(...labels);
      const run = inference.labels(...labels);
      const triton = statistics.of(model, version).observer;
      return {
        batch: (batch) => {
          rows.observe(batch.rows);
          count.observe(batch.requests);
          run.observe(batch.inferMs / 1000);
          triton.batch(batch);
        },
        settled: triton.settled,
      };
    },
    lifecycle(event) {
      if (event.event === 'loaded') {
        const labels = { model: event.model, version: String(event.version) };
        load.set(labels, event.loadMs / 1000);
        loads.inc(labels);
        resident.set(labels, event.residentBytes);
        loaded.inc();
      } else if (event.event === 'unloaded') {
        const labels = { model: event.model, version: String(event.version) };
        unloads.inc({ ...labels, reason: event.reason });
        if (EVICTIONS.has(event.reason)) evictions.inc({ model: event.model, reason: event.reason });
        resident.remove(labels);
        loaded.dec();
      } else if (event.event === 'load-failed') {
        loadFailures.inc({ model: event.model, version: String(event.version) });
      } else if (event.event === 'swap-wait') {
        swapWaits.inc({ model: event.model });
      }
    },
    setQueueDepth: (read) => (readDepth = read),
    setBudget(budget) {
      if (budget?.bytes !== undefined) budgetBytes.set(budget.bytes);
      else registry.removeSingleMetric('maas_memory_budget_bytes');
      if (budget?.models !== undefined) budgetModels.set(budget.models);
      else registry.removeSingleMetric('maas_max_loaded_models');
    },
  };
}

const REQUEST_LABELS = ['model', 'version', 'protocol', 'code'] as const;

interface Series {
  labels: Record<(typeof REQUEST_LABELS)[number], string>;
  /** observations per bucket of LATENCY_BUCKETS (not cumulative), then one for +Inf. */
  buckets: Float64Array;
  sum: number;
  count: number;
}

/**
 * Request latency by model, version, protocol and code, kept by hand: prom-client validates and
 * hashes a label object on every observe, a few microseconds a request on a model that runs in
 * ten. Here a request is four map lookups, a bucket search and three additions; the registry
 * reads the series as a histogram (and the request counter as its counts) when scraped.
 */
class RequestSeries {
  private readonly byModel = new Map<string, Map<string, Map<string, Map<string, Series>>>>();

  observe(model: string, version: string, protocol: string, code: string, seconds: number): void {
    const byCode = level(level(level(this.byModel, model), version), protocol);
    let series = byCode.get(code);
    if (series === undefined) byCode.set(code, (series = { labels: { model, version, protocol, code }, buckets: new Float64Array(LATENCY_BUCKETS.length + 1), sum: 0, count: 0 }));
    let bucket = 0;
    while (bucket < LATENCY_BUCKETS.length && seconds > LATENCY_BUCKETS[bucket]!) bucket++;
    series.buckets[bucket]!++;
    series.sum += seconds;
    series.count++;
  }

  *all(): Generator<Series> {
    for (const versions of this.byModel.values()) for (const protocols of versions.values()) for (const codes of protocols.values()) yield* codes.values();
  }

  /** What prom-client's registry asks of a metric: its values as a histogram's, buckets cumulative. */
  histogram(name: string, help: string) {
    return {
      name, help, type: 'histogram', aggregator: 'sum',
      reset: () => this.byModel.clear(),
      get: async () => {
        const values: { labels: Record<string, string | number>; value: number; metricName: string }[] = [];
        for (const { labels, buckets, sum, count } of this.all()) {
          let cumulative = 0;
          LATENCY_BUCKETS.forEach((le, i) => values.push({ labels: { le, ...labels }, value: (cumulative += buckets[i]!), metricName: `${name}_bucket` }));
          values.push({ labels: { le: '+Inf', ...labels }, value: count, metricName: `${name}_bucket` }, { labels, value: sum, metricName: `${name}_sum` }, { labels, value: count, metricName: `${name}_count` });
        }
        return { name, help, type: 'histogram', values, aggregator: 'sum' };
      },
    };
  }
}

function level<V>(map: Map<string, Map<string, V>>, key: string): Map<string, V> {
  let value = map.get(key);
  if (value === undefined) map.set(key, (value = new Map()));
  return value;
}
