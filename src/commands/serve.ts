import { defineCommand, option } from '../core/define-command.js';
import { MaasError, isMaasError } from '../core/errors.js';
import { MAX_BODY_MB, SERVING_DEFAULTS } from '../inference/config.js';
import { DEVICES } from '../registry/config.js';
import { parseVersionPolicy } from '../registry/policy.js';
import { parseRef } from '../registry/refs.js';
import { parseBytes, parseDuration } from '../core/units.js';
import type { RunningServer } from '../serve/server.js';
import { renderServing } from '../ui/render/serve.js';
import { registryOptions, requireSignatureOptions } from './shared.js';

export type ServeResult = Omit<RunningServer, 'close'> & { stoppedBy: string };

function parseSize(flag: string): (text: string) => number {
  return (text) => {
    const bytes = parseBytes(text);
    if (bytes === undefined) throw new MaasError('MAAS_USAGE', `${flag} expects a size such as 8GB, 512MiB or 2G, got '${text.slice(0, 40)}'`);
    return bytes;
  };
}

function parseKeepAlive(text: string): number {
  const ms = parseDuration(text);
  if (ms === undefined) throw new MaasError('MAAS_USAGE', `--keep-alive expects a duration such as 5m, 90s or 1h, got '${text.slice(0, 40)}'`);
  return ms;
}

/** What a setting maas.yaml may hold falls back to when neither the flag nor the file sets it. */
const yamlOr = (value: unknown) => `maas.yaml, else ${String(value)}`;

export const serveCommand = defineCommand({
  name: 'serve',
  summary: 'serve models over KServe v2 REST (and TF Serving), and gRPC when asked, with onnxruntime, GPU when asked',
  args: ['[models...]'],
  options: {
    host: option.string('--host <host>', 'address to bind (others than loopback need --token or --insecure)', { default: SERVING_DEFAULTS.host }),
    port: option.integer('--port <port>', 'REST port; 0 picks a free one', { min: 0, max: 65535, default: SERVING_DEFAULTS.port }),
    grpcPort: option.integer('--grpc-port <port>', 'also serve the Open Inference Protocol over gRPC here; 0 picks a free one', { min: 0, max: 65535, defaultText: 'off' }),
    healthPort: option.integer('--health-port <port>', 'also answer /v2/health/live and /v2/health/ready here on plain HTTP, no TLS or token: for probes that cannot present a client certificate; 0 picks a free one', { min: 0, max: 65535, defaultText: 'off' }),
    device: option.choice('--device <device>', DEVICES, 'auto tries cuda, webgpu, then cpu; cuda/webgpu fail rather than fall back', { defaultText: yamlOr(SERVING_DEFAULTS.device) }),
    versionPolicy: option.custom('--version-policy <policy>', 'versions of each model named without @: latest:N, all, specific:1,3 (or aliases), aliases; join with +', parseVersionPolicy, {
      defaultText: yamlOr(SERVING_DEFAULTS.versionPolicy),
    }),
    threads: option.integer('--threads <n>', 'onnxruntime intra-op threads per worker', { defaultText: 'cores / workers' }),
    workers: option.integer('--workers <n>', 'inference workers (sessions) per model version', { defaultText: yamlOr(SERVING_DEFAULTS.workers) }),
    maxBatch: option.integer('--max-batch <n>', 'rows merged into one run by dynamic batching; 1 turns it off', { defaultText: yamlOr(SERVING_DEFAULTS.maxBatch) }),
    batchDelayMs: option.integer('--batch-delay-ms <ms>', 'how long an under-full batch waits for more requests', { min: 0, defaultText: yamlOr(SERVING_DEFAULTS.batchDelayMs) }),
    maxQueue: option.integer('--max-queue <n>', 'queued requests per version before 503 / UNAVAILABLE', { defaultText: yamlOr(SERVING_DEFAULTS.maxQueue) }),
    memoryBudget: option.custom('--memory-budget <size>', 'load versions on first request and unload the least recently used idle one to stay under this much measured memory (8GB, 512MiB)', parseSize('--memory-budget'), { defaultText: 'none: load every version at start' }),
    maxLoadedModels: option.integer('--max-loaded-models <n>', 'likewise, at most this many versions loaded at once', { defaultText: 'no limit' }),
    keepAlive: option.custom('--keep-alive <duration>', 'unload a version idle this long (5m, 1h); it loads again on its next request', parseKeepAlive, { defaultText: 'maas.yaml keepAlive, else never' }),
    pin: option.list('--pin <ref>', 'load this version (NAME, NAME@VERSION or NAME@ALIAS) at start and never unload it; repeatable', parseRef),
    inlineUs: option.integer('--inline-us <µs>', 'a CPU model faster than this per row also runs small requests on the HTTP thread, batched per turn; 0: never', { min: 0, default: SERVING_DEFAULTS.inlineUs }),
    timeoutMs: option.integer('--timeout-ms <ms>', 'per-request deadline, then 504 / DEADLINE_EXCEEDED', { default: SERVING_DEFAULTS.timeoutMs }),
    maxBodyMb: option.integer('--max-body-mb <mb>', `largest request body or message (at most ${MAX_BODY_MB}), then 413 / RESOURCE_EXHAUSTED`, { max: MAX_BODY_MB, default: SERVING_DEFAULTS.maxBodyMb }),
    pollMs: option.integer('--poll-ms <ms>', 'how often to look for new versions and alias moves', { min: 50, default: SERVING_DEFAULTS.pollMs }),
    token: option.string('--token <token>', 'require `Authorization: Bearer <token>` (gRPC: authorization metadata) on every route but liveness', { env: 'MAAS_TOKEN' }),
    tlsCert: option.string('--tls-cert <file>', 'serve REST and gRPC over TLS with this PEM certificate (chain); reloaded when it changes'),
    tlsKey: option.string('--tls-key <file>', 'the PEM private key of --tls-cert'),
    tlsCa: option.string('--tls-ca <file>', 'with --tls-cert: require client certificates signed by this PEM CA (mTLS)'),
    name: option.string('--name <name>', 'with one oci:// or oci-layout: reference: the name to serve it under', { defaultText: 'the name it was pushed under' }),
    insecure: option.flag('--insecure', 'allow a non-loopback --host without a token'),
    jsonLogs: option.flag('--json-logs', 'one JSON line per event and request on stderr'),
    ...requireSignatureOptions,
  },
  examples: [
    'maas serve',
    'maas serve mlp@prod --port 8080 --device cuda',
    'maas serve mlp --version-policy latest:2 --grpc-port 8081',
    'maas serve --host 0.0.0.0 --token "$MAAS_TOKEN" --tls-cert cert.pem --tls-key key.pem --json-logs',
    'maas serve --host 0.0.0.0 --token "$MAAS_TOKEN" --tls-cert cert.pem --tls-key key.pem --tls-ca ca.pem --health-port 8082',
    'maas serve oci://registry.example.com/team/mlp:2   # pull (cached by digest), then serve',
    'maas serve mlp@prod --require-signature --trusted-keys keys/   # refuse versions no trusted key signed',
  ],
  printsOwnResult: true,
  async run(models, opts, ctx) {
    if ((opts.tlsCert === undefined) !== (opts.tlsKey === undefined) || (opts.tlsCa !== undefined && opts.tlsCert === undefined)) {
      throw new MaasError('MAAS_USAGE', '--tls-cert and --tls-key go together, and --tls-ca needs them', { hint: 'maas serve --tls-cert cert.pem --tls-key key.pem [--tls-ca clients-ca.pem]' });
    }
    const [{ startServer }, { resolveTargets }, { VERSION }] = await Promise.all([import('../serve/server.js'), import('../serve/targets.js'), import('../core/version.js')]);
    const trust = { requireSignature: opts.requireSignature, key: opts.key, trustedKeys: opts.trustedKeys, trustedCa: opts.trustedCa };
    const { registry, targets, notes } = await resolveTargets(models, opts.name, { ...registryOptions(ctx), now: ctx.now }, trust);
    for (const note of notes) ctx.out.info(note);
    // The signal is taken from here on: one that comes while the models load stops the start
    // cleanly (exit 0), as it stops a running server.
    let stoppedBy: string | undefined;
    const signalled = ctx.shutdownSignal().then((signal) => (stoppedBy = signal));
    const say = (event: 'stopping' | 'stopped', line: string) => ctx.out.info(opts.jsonLogs ? JSON.stringify({ time: ctx.now().toISOString(), event, ...(stoppedBy ? { signal: stoppedBy } : {}) }) : line);
    const server = await startServer({
      stop: signalled,
      registry,
      targets,
      flags: { device: opts.device, versionPolicy: opts.versionPolicy, threads: opts.threads, workers: opts.workers, maxBatch: opts.maxBatch, batchDelayMs: opts.batchDelayMs, maxQueue: opts.maxQueue, inlineUs: opts.inlineUs, keepAliveMs: opts.keepAlive },
      pins: opts.pin.map((ref) => (ref.selector.kind === 'latest' ? { name: ref.name } : ref)),
      budget: opts.memoryBudget === undefined && opts.maxLoadedModels === undefined ? undefined : { bytes: opts.memoryBudget, models: opts.maxLoadedModels },
      host: opts.host,
      port: opts.port,
      grpcPort: opts.grpcPort,
      healthPort: opts.healthPort,
      token: opts.token,
      insecure: opts.insecure,
      tls: opts.tlsCert ? { cert: opts.tlsCert, key: opts.tlsKey!, ca: opts.tlsCa } : undefined,
      maxBodyBytes: opts.maxBodyMb * 1024 * 1024,
      timeoutMs: opts.timeoutMs,
      pollMs: opts.pollMs,
      jsonLogs: opts.jsonLogs,
      log: (line) => ctx.out.info(line),
      version: VERSION,
      trust,
    }).catch((error: unknown) => {
      if (stoppedBy === undefined || !isMaasError(error) || error.code !== 'MAAS_CANCELLED') throw error;
      return undefined;
    });
    if (!server) {
      say('stopped', `${stoppedBy}: stopped while the models loaded`);
      return { stoppedBy: stoppedBy! };
    }
    const { close, ...running } = server;
    ctx.out.result(ctx.globals.json ? JSON.stringify(running) : renderServing(running, ctx.out.theme));
    await signalled;
    say('stopping', `${stoppedBy}: finishing requests in flight…`);
    await close();
    say('stopped', 'stopped');
    return { ...running, stoppedBy: stoppedBy! };
  },
  render: () => '',
});
