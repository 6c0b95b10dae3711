/**
 * `maas init --monitoring`: the Prometheus scrape config, its alert rules and the Grafana
 * dashboard it writes. promtool parses them (and runs the alert rules on made-up series), and
 * every metric and label they name is one a real `maas serve` exports on /metrics.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, realpathSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { mlp, writeModel } from '../../fixtures/models.js';
import { makeRegistry } from '../helpers/registry.js';
import { runCli } from '../helpers/run-cli.js';
import { spawnServe } from '../helpers/serve-process.js';
import { testEnv, useTempDir } from '../helpers/temp.js';

const PROMETHEUS_YML = 'monitoring/prometheus/prometheus.yml';
const ALERTS_YML = 'monitoring/prometheus/alerts.yml';
const DASHBOARD = 'monitoring/grafana/maas.json';

// .ci/run installs Debian's prometheus package for promtool and sets MAAS_REQUIRE_TOOLS=1.
const PROMTOOL = spawnSync('promtool', ['--version']).status === 0;
const NEED_PROMTOOL = !PROMTOOL && !process.env.MAAS_REQUIRE_TOOLS;
if (NEED_PROMTOOL) console.warn('SKIPPED: promtool checks of the maas init --monitoring templates (apt-get install prometheus to run them)');

function promtool(...args: string[]): { ok: boolean; output: string } {
  const r = spawnSync('promtool', args, { encoding: 'utf8' });
  if (r.error) throw new Error(`promtool could not run: ${r.error.message} (apt-get install prometheus)`);
  return { ok: r.status === 0, output: `${r.stdout}${r.stderr}` };
}

/** A registry made by `maas init --monitoring`, once per file (the templates are the same for every test), removed after them. */
let made: Promise<string> | undefined;
const homes: string[] = [];
function monitoredRegistry(): Promise<string> {
  made ??= (async () => {
    const home = realpathSync(mkdtempSync(join(tmpdir(), 'maas-monitoring-')));
    homes.push(home);
    const r = await runCli(['init', 'registry', '--yes', '--monitoring', '--json'], { cwd: home, env: testEnv(home) });
    expect(r.exitCode, r.stderr).toBe(0);
    return join(home, 'registry');
  })();
  return made;
}
afterAll(() => {
  for (const home of homes) rmSync(home, { recursive: true, force: true });
});

// ——— the dashboard's PromQL ———

interface Target { panel: string; expr: string; legend: string }

interface Dashboard {
  schemaVersion: number;
  templating: { list: { name: string; type: string; query: unknown; datasource?: { uid: string } }[] };
  panels: { type: string; title: string; description?: string; datasource?: { type: string; uid: string }; fieldConfig?: { defaults: { unit?: string } }; targets?: { expr: string; legendFormat?: string }[] }[];
}

const readDashboard = (dir: string): Dashboard => JSON.parse(readFileSync(join(dir, DASHBOARD), 'utf8')) as Dashboard;

function dashboardTargets(dashboard: Dashboard): Target[] {
  return dashboard.panels.flatMap((p) => (p.targets ?? []).map((t) => ({ panel: p.title, expr: t.expr, legend: t.legendFormat ?? '' })));
}

/** The selectors of the variables' `label_values(SELECTOR, LABEL)` queries, as PromQL. */
function variableSelectors(dashboard: Dashboard): Target[] {
  return dashboard.templating.list.filter((v) => v.type === 'query').map((v) => {
    const query = typeof v.query === 'string' ? v.query : (v.query as { query: string }).query;
    const m = /^label_values\((.+),\s*(\w+)\)$/.exec(query);
    if (!m) throw new Error(`variable ${v.name}: '${query}' is not label_values(selector, label)`);
    return { panel: `variable ${v.name}`, expr: m[1]!, legend: `{{${m[2]!}}}` };
  });
}

/** What Grafana puts in for its variables before Prometheus sees the query. */
function substitute(expr: string, model = '.*'): string {
  const out = expr
    .replaceAll('$__rate_interval', '5m')
    .replaceAll('$__interval', '1m')
    .replaceAll('$__range', '1h')
    .replace(/\$\{model(?::\w+)?\}|\$model\b/g, model)
    .replace(/\$\{\w+(?::\w+)?\}|\$\w+/g, '.*');
  expect(out, `a Grafana variable left in ${expr}`).not.toContain('$');
  return out;
}

const KEYWORDS = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'and', 'or', 'unless', 'bool', 'offset', 'inf', 'nan']);

interface Parsed {
  metrics: Set<string>;
  /** each selector with braces: its metric and the labels its matchers name. */
  selectors: { metric: string; labels: string[] }[];
  /** labels named by by/without/on/ignoring/group_left/group_right. */
  grouping: string[];
}

/** The metric names, matcher labels and grouping labels of a PromQL expression (no PromQL parser in node_modules: a lexer is enough for what the templates hold). */
function parsePromql(expr: string): Parsed {
  const text = expr.replace(/"(?:[^"\\]|\\.)*"/g, '""');
  const selectors = [...text.matchAll(/([a-zA-Z_:][\w:]*)?\s*\{([^}]*)\}/g)].map((m) => ({
    metric: m[1] ?? '',
    labels: [...m[2]!.matchAll(/(\w+)\s*(?:=~|!~|!=|=)/g)].map((l) => l[1]!),
  }));
  const grouping = [...text.matchAll(/\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)/g)].flatMap((m) => m[1]!.split(',').map((s) => s.trim()).filter(Boolean));
  const bare = text
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ');
  const metrics = new Set<string>();
  for (const m of bare.matchAll(/(?<![\w:.])([a-zA-Z_:][\w:]*)(?![\w:])(?!\s*\()/g)) {
    if (!KEYWORDS.has(m[1]!.toLowerCase())) metrics.add(m[1]!);
  }
  for (const s of selectors) if (s.metric) metrics.add(s.metric);
  return { metrics, selectors, grouping };
}

// ——— what a real server exports ———

interface Exported {
  /** series names: a counter or gauge's own, a histogram's _bucket, _sum and _count. */
  names: Set<string>;
  /** the maas_* metric families (histograms by their base name). */
  families: Set<string>;
  /** labels seen on each series name's samples; absent when it had none. */
  labels: Map<string, Set<string>>;
}

function readExposition(text: string, into: Exported): void {
  for (const line of text.split('\n')) {
    const type = /^# TYPE (\S+) (\w+)$/.exec(line);
    if (type) {
      const [, name, kind] = type as unknown as [string, string, string];
      if (name.startsWith('maas_')) into.families.add(name);
      const suffixes = kind === 'histogram' ? ['_bucket', '_sum', '_count'] : kind === 'summary' ? ['', '_sum', '_count'] : [''];
      for (const suffix of suffixes) into.names.add(name + suffix);
      continue;
    }
    const sample = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? \S+$/.exec(line);
    if (!sample) continue;
    const labels = into.labels.get(sample[1]!) ?? new Set<string>();
    for (const l of (sample[2] ?? '').matchAll(/(\w+)="(?:[^"\\]|\\.)*"/g)) labels.add(l[1]!);
    into.labels.set(sample[1]!, labels);
  }
}

/** Labels Prometheus adds to every scraped series. */
const TARGET_LABELS = ['instance', 'job'];

/** Each name, matcher label, grouping label and legend label of `targets` that `exported` lacks. */
function unknownNames(targets: Target[], exported: Exported): string[] {
  const problems: string[] = [];
  for (const { panel, expr, legend } of targets) {
    const parsed = parsePromql(expr);
    const known = new Set(TARGET_LABELS);
    let complete = true;
    for (const metric of parsed.metrics) {
      if (metric === 'up') continue; // Prometheus's own, one per target
      if (!exported.names.has(metric)) problems.push(`${panel}: metric ${metric} is not exported by maas serve`);
      const labels = exported.labels.get(metric);
      if (labels === undefined) complete = false;
      for (const l of labels ?? []) known.add(l);
    }
    for (const { metric, labels } of parsed.selectors) {
      const seen = metric === 'up' ? new Set<string>() : exported.labels.get(metric);
      if (seen === undefined) continue; // no samples to read labels from: the name was checked above
      for (const l of labels) if (!seen.has(l) && !TARGET_LABELS.includes(l)) problems.push(`${panel}: ${metric} has no label ${l}`);
    }
    if (!complete) continue; // a metric without samples: its labels are not known here
    for (const l of parsed.grouping) if (!known.has(l)) problems.push(`${panel}: no metric of '${expr}' has the label ${l} it groups by`);
    for (const m of legend.matchAll(/\{\{\s*(\w+)\s*\}\}/g)) if (!known.has(m[1]!)) problems.push(`${panel}: the legend names ${m[1]}, a label none of its metrics has`);
  }
  return problems;
}

interface AlertRule { alert: string; expr: string; for?: string; labels?: Record<string, string>; annotations?: Record<string, string> }
const alertRules = (dir: string): AlertRule[] => (parse(readFileSync(join(dir, ALERTS_YML), 'utf8')) as { groups: { name: string; rules: AlertRule[] }[] }).groups.flatMap((g) => g.rules);

describe('maas init --monitoring', () => {
  it('writes the scrape config, the alert rules and the dashboard, in the first commit', async () => {
    const home = useTempDir();
    const env = testEnv(home);
    const r = await runCli(['init', 'models', '--yes', '--monitoring'], { cwd: home, env });
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toContain(`files: maas.yaml, .gitignore, ${PROMETHEUS_YML}, ${ALERTS_YML}, ${DASHBOARD}`);
    expect(r.stdout).toContain(`prometheus --config.file=${PROMETHEUS_YML}`);
    expect(r.stdout).toContain(`import ${DASHBOARD} into Grafana`);
    const dir = join(home, 'models');
    const git = (...args: string[]) => execFileSync('git', args, { cwd: dir, encoding: 'utf8', env }).trim();
    expect(git('show', '--name-only', '--format=', 'HEAD').split('\n').sort()).toEqual(['.gitignore', 'maas.yaml', ALERTS_YML, PROMETHEUS_YML, DASHBOARD].sort());
    expect(git('status', '--porcelain')).toBe('');

    const dashboard = readDashboard(dir);
    expect(dashboard.schemaVersion).toBe(39);
    const prometheus = parse(readFileSync(join(dir, PROMETHEUS_YML), 'utf8'));
    expect(prometheus).toMatchObject({ rule_files: ['alerts.yml'], scrape_configs: [{ job_name: 'maas', metrics_path: '/metrics', static_configs: [{ targets: ['127.0.0.1:8080'] }] }] });
    const alerts = readFileSync(join(dir, ALERTS_YML), 'utf8');
    expect(alerts).toContain('Written by `maas init --monitoring` (maas ');
    expect(alerts).not.toContain('{{maasVersion}}');

    const json = await runCli(['init', 'other', '--json', '--monitoring'], { cwd: home, env });
    expect(json.json().files).toEqual(['maas.yaml', '.gitignore', PROMETHEUS_YML, ALERTS_YML, DASHBOARD]);
    const plain = await runCli(['init', 'plain', '--json'], { cwd: home, env });
    expect(plain.json().files).toEqual(['maas.yaml', '.gitignore']);
    expect(existsSync(join(home, 'plain', 'monitoring'))).toBe(false);
  });

  it('refuses to overwrite monitoring files a folder already holds (exit 6, nothing written)', async () => {
    const home = useTempDir();
    const dir = join(home, 'ops');
    mkdirSync(join(dir, 'monitoring/prometheus'), { recursive: true });
    writeFileSync(join(dir, ALERTS_YML), 'groups: []\n');
    const r = await runCli(['init', 'ops', '--yes', '--force', '--monitoring'], { cwd: home, env: testEnv(home) });
    expect(r.exitCode).toBe(6);
    expect(r.stderr).toContain(`${join(dir, ALERTS_YML)} already exists`);
    expect(readdirSync(dir)).toEqual(['monitoring']);
    expect(readFileSync(join(dir, ALERTS_YML), 'utf8')).toBe('groups: []\n');
  });

  it('builds a dashboard of titled panels with units, on a Prometheus data source variable and a model variable', async () => {
    const dashboard = readDashboard(await monitoredRegistry());
    const variables = new Map(dashboard.templating.list.map((v) => [v.name, v]));
    expect(variables.get('datasource')).toMatchObject({ type: 'datasource', query: 'prometheus' });
    expect(JSON.stringify(variables.get('model')?.query)).toMatch(/label_values\(maas_requests_total(\{[^}]*\})?, model\)/);
    const panels = dashboard.panels.filter((p) => p.type !== 'row');
    expect(panels.length).toBeGreaterThan(10);
    for (const p of panels) {
      expect(p.title, JSON.stringify(p).slice(0, 200)).toMatch(/\w/);
      expect(p.fieldConfig?.defaults.unit, `${p.title}: a unit`).toMatch(/\w/);
      expect(p.description, `${p.title}: a description`).toMatch(/\w/);
      expect(p.datasource, `${p.title}: the datasource variable`).toEqual({ type: 'prometheus', uid: '${datasource}' });
      expect(p.targets?.length, `${p.title}: a query`).toBeGreaterThan(0);
    }
    const targets = dashboardTargets(dashboard);
    for (const { panel, expr } of targets) {
      // Every window follows the scrape interval Grafana knows: a fixed [5m] is wrong at 1m scrapes and at 5m ones.
      for (const window of expr.matchAll(/\[([^\]]+)\]/g)) expect(window[1], `${panel}: ${expr}`).toBe('$__rate_interval');
      if (/maas_/.test(expr) && !/maas_(models_loaded|max_loaded_models|memory_budget_bytes)\b/.test(expr)) expect(expr, `${panel}: filtered by $model`).toContain('model=~"$model"');
    }
    const all = targets.map((t) => t.expr).join('\n');
    for (const q of ['0.5', '0.9', '0.99']) expect(all).toContain(`histogram_quantile(${q}, sum by (model, le) (rate(maas_request_duration_seconds_bucket`);
    expect(all).toMatch(/histogram_quantile\(0\.99, sum by \([^)]*\ble\b[^)]*\) \(rate\(maas_inference_duration_seconds_bucket/);
    expect(all).toMatch(/rate\(maas_batch_size_sum[^\n]*\/ sum by \(model\) \(rate\(maas_batch_size_count/);
    expect(all).toMatch(/histogram_quantile\(0\.9, sum by \(model, le\) \(rate\(maas_batch_size_bucket/);
    expect(all).toContain('code=~"5..|INTERNAL|UNAVAILABLE|DEADLINE_EXCEEDED|RESOURCE_EXHAUSTED|UNKNOWN"');
    for (const metric of ['maas_queue_depth', 'maas_model_resident_bytes', 'process_resident_memory_bytes', 'maas_memory_budget_bytes', 'maas_models_loaded']) expect(all).toContain(metric);
  });

  it('has alerts whose annotations name only labels the alert carries, instance among them', async () => {
    for (const rule of alertRules(await monitoredRegistry())) {
      // The labels of an alert's series: what its aggregation keeps, or a bare selector's target labels.
      const groupings = [...rule.expr.matchAll(/\bby \(([^)]*)\)/g)].map((m) => m[1]!.split(',').map((l) => l.trim()).filter((l) => l !== 'le'));
      const carried = groupings.length ? groupings.reduce((a, b) => a.filter((l) => b.includes(l))) : TARGET_LABELS;
      expect(carried, `${rule.alert}: one alert per server`).toEqual(expect.arrayContaining(['job', 'instance']));
      const named = [...Object.values(rule.annotations ?? {}).join('\n').matchAll(/\$labels\.(\w+)/g)].map((m) => m[1]!);
      for (const label of named) expect(carried, `${rule.alert} names $labels.${label}`).toContain(label);
    }
  });

  it.skipIf(NEED_PROMTOOL)('writes a prometheus.yml and alerts.yml that promtool accepts, the token block too once uncommented', async () => {
    const dir = await monitoredRegistry();
    const config = promtool('check', 'config', join(dir, PROMETHEUS_YML));
    expect(config.ok, config.output).toBe(true);
    expect(config.output).toContain('SUCCESS: 1 rule files found');
    const rules = promtool('check', 'rules', join(dir, ALERTS_YML));
    expect(rules.ok, rules.output).toBe(true);
    expect(rules.output).toMatch(/SUCCESS: [1-9]\d* rules found/);

    // What the comments tell a user to do: uncomment authorization, point credentials_file at the token.
    const work = useTempDir();
    writeFileSync(join(work, 'maas-token'), 'sesame-1234\n');
    const text = readFileSync(join(dir, PROMETHEUS_YML), 'utf8');
    const uncommented = text
      .replace(/^( +)# (authorization:)$/m, '$1$2')
      .replace(/^( +)# ( +type: Bearer)$/m, '$1$2')
      .replace(/^( +)# ( +credentials_file: ).*$/m, `$1$2${join(work, 'maas-token')}`);
    expect(uncommented).not.toBe(text);
    writeFileSync(join(work, 'prometheus.yml'), uncommented);
    writeFileSync(join(work, 'alerts.yml'), readFileSync(join(dir, ALERTS_YML)));
    expect(parse(uncommented).scrape_configs[0].authorization).toEqual({ type: 'Bearer', credentials_file: join(work, 'maas-token') });
    const withToken = promtool('check', 'config', join(work, 'prometheus.yml'));
    expect(withToken.ok, withToken.output).toBe(true);
  });

  it.skipIf(NEED_PROMTOOL)('has a dashboard whose every query parses as PromQL once Grafana fills in its variables', async () => {
    const dashboard = readDashboard(await monitoredRegistry());
    const targets = [...dashboardTargets(dashboard), ...variableSelectors(dashboard)];
    expect(targets.length).toBeGreaterThan(20);
    const rules = targets.flatMap(({ expr }, i) => [
      { record: `maas_dashboard:query_${i}:all`, expr: substitute(expr) },
      { record: `maas_dashboard:query_${i}:one`, expr: substitute(expr, 'mlp') },
    ]);
    const work = useTempDir();
    writeFileSync(join(work, 'dashboard-rules.yml'), stringify({ groups: [{ name: 'dashboard', rules }] }));
    const check = promtool('check', 'rules', join(work, 'dashboard-rules.yml'));
    expect(check.ok, check.output).toBe(true);
    expect(check.output).toContain(`SUCCESS: ${rules.length} rules found`);
  });

  it.skipIf(NEED_PROMTOOL)('fires each alert on the series it is about, and stays quiet on client errors and calm models', async () => {
    const dir = await monitoredRegistry();
    const rules = alertRules(dir);
    expect(rules.map((r) => r.alert).sort()).toEqual(['MaasDown', 'MaasEvictionThrash', 'MaasHighErrorRatio', 'MaasHighLatencyP99', 'MaasModelLoadFailures', 'MaasRequestsRejected']);
    for (const rule of rules) {
      expect(rule.labels?.severity, rule.alert).toMatch(/^(critical|warning)$/);
      expect(rule.annotations?.summary, rule.alert).toMatch(/\w/);
      expect(rule.annotations?.description, rule.alert).toMatch(/\w/);
    }
    // promtool compares expanded annotations word for word: test the expressions, `for` and labels without them.
    const work = useTempDir();
    const file = parse(readFileSync(join(dir, ALERTS_YML), 'utf8')) as { groups: { rules: AlertRule[] }[] };
    for (const group of file.groups) for (const rule of group.rules) delete rule.annotations;
    writeFileSync(join(work, 'alerts.yml'), stringify(file));

    const req = (model: string, code: string, protocol = 'v2') => `maas_requests_total{job="maas",instance="a",model="${model}",version="1",protocol="${protocol}",code="${code}"}`;
    const bucket = (model: string, le: string) => `maas_request_duration_seconds_bucket{job="maas",instance="a",model="${model}",version="1",protocol="v2",code="200",le="${le}"}`;
    const fired = (alertname: string, severity: string, labels: Record<string, string> = {}) => ({ alertname, exp_alerts: [{ exp_labels: { severity, job: 'maas', instance: 'a', ...labels } }] });
    const quiet = (alertname: string) => ({ alertname, exp_alerts: [] });
    const test = (input: [string, string][], evalTime: string, alerts: object[]) => ({
      interval: '1m',
      input_series: input.map(([series, values]) => ({ series, values })),
      alert_rule_test: alerts.map((a) => ({ eval_time: evalTime, ...a })),
    });
    const tests = [
      // 10 % of the requests fail with gRPC INTERNAL: a server error, not a rejection.
      test([[req('m', '200'), '0+90x40'], [req('m', 'INTERNAL', 'grpc'), '0+10x40']], '20m', [fired('MaasHighErrorRatio', 'critical', { model: 'm' }), quiet('MaasRequestsRejected')]),
      // Errors that are the caller's: 404 and INVALID_ARGUMENT, half the requests.
      test([[req('m', '200'), '0+50x40'], [req('m', '404'), '0+30x40'], [req('m', 'INVALID_ARGUMENT', 'grpc'), '0+20x40']], '20m', [quiet('MaasHighErrorRatio'), quiet('MaasRequestsRejected')]),
      // Admission control: 503 (a full queue) is an error and a rejection; 2 % is no error storm.
      test([[req('m', '200'), '0+98x40'], [req('m', '503'), '0+2x40']], '20m', [quiet('MaasHighErrorRatio'), fired('MaasRequestsRejected', 'warning', { model: 'm' })]),
      test([[req('m', '200'), '0+90x40'], [req('m', 'RESOURCE_EXHAUSTED', 'grpc'), '0+10x40']], '20m', [fired('MaasHighErrorRatio', 'critical', { model: 'm' }), fired('MaasRequestsRejected', 'warning', { model: 'm' })]),
      // ...but not for a blip shorter than its 10 minutes (still pending at 7m).
      test([[req('m', '200'), '0+98x40'], [req('m', '503'), '0+2x3 6+0x36']], '7m', [quiet('MaasRequestsRejected')]),
      // A model whose requests take 1 to 2.5 s, and one that answers within 100 ms.
      test([
        [bucket('slow', '0.1'), '0x40'], [bucket('slow', '1'), '0x40'], [bucket('slow', '2.5'), '0+10x40'], [bucket('slow', '+Inf'), '0+10x40'],
        [bucket('fast', '0.1'), '0+10x40'], [bucket('fast', '1'), '0+10x40'], [bucket('fast', '2.5'), '0+10x40'], [bucket('fast', '+Inf'), '0+10x40'],
      ], '20m', [fired('MaasHighLatencyP99', 'warning', { model: 'slow' })]),
      // One eviction and one load a minute is thrash; three evictions in 15 minutes are not.
      test([
        ['maas_model_evictions_total{job="maas",instance="a",model="busy",reason="max_models"}', '0+1x30'],
        ['maas_model_loads_total{job="maas",instance="a",model="busy",version="1"}', '0+1x30'],
        ['maas_model_evictions_total{job="maas",instance="a",model="calm",reason="keep_alive"}', '0+0x10 1+1x2 3+0x20'],
        ['maas_model_loads_total{job="maas",instance="a",model="calm",version="1"}', '1+0x10 2+1x2 4+0x20'],
      ], '20m', [fired('MaasEvictionThrash', 'warning', { model: 'busy' })]),
      // A first failed load makes the counter appear at 1: the alert sees it, and forgets it 10 minutes on.
      test([['maas_model_load_failures_total{job="maas",instance="a",model="m",version="2"}', '_x5 1x30']], '7m', [fired('MaasModelLoadFailures', 'warning', { model: 'm', version: '2' })]),
      test([['maas_model_load_failures_total{job="maas",instance="a",model="m",version="2"}', '_x5 1x30']], '25m', [quiet('MaasModelLoadFailures')]),
      test([['maas_model_load_failures_total{job="maas",instance="a",model="m",version="2"}', '_x5 1x15 2x15']], '25m', [fired('MaasModelLoadFailures', 'warning', { model: 'm', version: '2' })]),
      // A scrape that fails for 2 minutes, and a server that answers.
      test([['up{job="maas",instance="a"}', '1 1 0x10'], ['up{job="maas",instance="b"}', '1x12']], '5m', [{ alertname: 'MaasDown', exp_alerts: [{ exp_labels: { severity: 'critical', job: 'maas', instance: 'a' } }] }]),
      test([['up{job="maas",instance="a"}', '1 1 1 0 1x10']], '5m', [quiet('MaasDown')]),
    ];
    writeFileSync(join(work, 'alerts.test.yml'), stringify({ rule_files: ['alerts.yml'], evaluation_interval: '1m', tests }));
    const run = promtool('test', 'rules', join(work, 'alerts.test.yml'));
    expect(run.ok, run.output).toBe(true);
    expect(run.output).toContain('SUCCESS');
  });

  it('names only metrics and labels that a running maas serve exports', { timeout: 120_000 }, async () => {
    const dir = await monitoredRegistry();
    const reg = await makeRegistry();
    const model = writeModel(reg.work, 'mlp.onnx', mlp());
    const registered = await reg.cli('register', model, '--name', 'mlp');
    expect(registered.exitCode, registered.stderr).toBe(0);
    // A second model whose stored bytes go bad: its load fails, and the failure counter gets a series.
    const broken = await reg.cli('register', writeModel(reg.work, 'broken.onnx', mlp({ seed: 7 })), '--name', 'broken', '--json');
    expect(broken.exitCode, broken.stderr).toBe(0);
    const blob = join(reg.dir, 'blobs/sha256', (broken.json().digest as string).slice('sha256:'.length));
    chmodSync(blob, 0o644);
    writeFileSync(blob, Buffer.alloc(statSync(blob).size, 7));
    // A budget (so its gauges exist and versions load on first use) and a keep-alive short enough to see an eviction.
    const server = await spawnServe(['--port', '0', '--device', 'cpu', '--workers', '1', '--memory-budget', '1GB', '--max-loaded-models', '4', '--keep-alive', '1s'], { cwd: reg.dir, env: reg.env });
    const exported: Exported = { names: new Set(), families: new Set(), labels: new Map() };
    const scrape = async () => {
      const res = await fetch(`${server.url}/metrics`);
      expect(res.status).toBe(200);
      const text = await res.text();
      readExposition(text, exported);
      return text;
    };
    const post = async (path: string, body: unknown) => (await fetch(server.url + path, { method: 'POST', body: JSON.stringify(body), headers: { 'content-type': 'application/json' } })).status;
    const infer = { inputs: [{ name: 'input', shape: [2, 4], datatype: 'FP32', data: [1, 2, 3, 4, 5, 6, 7, 8] }] };

    await scrape(); // nothing loaded yet
    expect(await post('/v2/models/mlp/infer', infer)).toBe(200); // loads it first
    expect((await fetch(`${server.url}/v2/models/mlp/versions/9`)).status).toBe(404);
    await scrape();
    expect(await post('/v2/repository/models/mlp/unload', {})).toBe(200); // reason: request
    await scrape();
    expect(await post('/v2/repository/models/mlp/load', {})).toBe(200);
    expect(await post('/v2/models/mlp/infer', infer)).toBe(200);
    await scrape();
    // Idle for its keep-alive, the version is evicted (reason keep_alive).
    const deadline = Date.now() + 20_000;
    while (!(await scrape()).includes('maas_model_evictions_total{model="mlp",reason="keep_alive"}')) {
      expect(Date.now() < deadline, `no keep-alive eviction:\n${server.stderr()}`).toBe(true);
      await sleep(250);
    }
    expect(await post('/v2/models/mlp/infer', infer)).toBe(200); // loads it again
    expect(await post('/v2/models/broken/infer', infer)).toBe(422); // its blob no longer matches its digest
    const last = await scrape();
    expect(await server.stop()).toBe(0);
    expect(last).toMatch(/^maas_memory_budget_bytes \d+/m);
    expect(last).toMatch(/^maas_max_loaded_models 4$/m);
    expect(last).toMatch(/^maas_model_unloads_total\{model="mlp",version="1",reason="request"\} 1$/m);
    expect(last).toMatch(/^maas_model_load_failures_total\{model="broken",version="1"\} 1$/m);

    // Every maas series has samples by now, so its labels are checked too, but swap waits: a swap under a tight budget.
    const withoutSamples = [...exported.names].filter((n) => n.startsWith('maas_') && !exported.labels.has(n));
    expect(withoutSamples).toEqual(['maas_swap_waits_total']);

    const dashboard = readDashboard(dir);
    const alertTargets = alertRules(dir).map((r) => ({
      panel: `alert ${r.alert}`, expr: r.expr,
      // what the annotations name: labels the alert's series must carry
      legend: Object.values(r.annotations ?? {}).join(' ').replace(/\{\{\s*\$labels\.(\w+)\s*\}\}/g, '{{$1}}').replace(/\{\{[^}]*\$value[^}]*\}\}/g, ''),
    }));
    expect(unknownNames([...dashboardTargets(dashboard), ...variableSelectors(dashboard), ...alertTargets], exported)).toEqual([]);

    // The dashboard shows every maas metric family the server exports: a new metric wants a panel.
    const used = new Set([...dashboardTargets(dashboard)].flatMap((t) => [...parsePromql(t.expr).metrics]).map((n) => n.replace(/_(bucket|sum|count)$/, '')));
    expect([...exported.families].filter((f) => !used.has(f))).toEqual([]);
  });
});
