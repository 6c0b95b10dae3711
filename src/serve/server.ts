/**
 * `maas serve` as a library: binds REST (and gRPC when asked) first, so a taken port fails
 * before any model loads, then loads the models into one ModelManager that both transports
 * share, then polls the registry for new versions and alias moves.
 */
import { MaasError, messageOf } from '../core/errors.js';
import { type ServingFlags, modelServing } from '../inference/config.js';
import { formatBytes } from '../core/units.js';
import { type MemoryBudget, ModelManager, type ServeEvent, type ServeTarget } from '../inference/manager.js';
import type { RegistryOptions } from '../registry/registry.js';
import { type GrpcTransport, listenGrpc } from './grpc/server.js';
import { type ClientTimeouts, type HttpTransport, listenHttp } from './http/server.js';
import { type ProbeTransport, listenProbes } from './http/probes.js';
import { createMetrics } from './metrics.js';
import type { ServingCore } from './serving.js';
import { type TlsFiles, type TlsMaterial, loadTls } from './tls.js';
import { type TrustFlags, describePolicy, loadAdmission, pullAdmission, registryTrustPolicy } from '../trust/policy.js';

export interface ServeOptions {
  registry: RegistryOptions;
  /** what to serve; empty = every model by its version policy. */
  targets: ServeTarget[];
  /** the runtime and policy flags; what they leave unset comes from maas.yaml, then the defaults. */
  flags: ServingFlags;
  /** versions loaded at start and never evicted. */
  pins?: ServeTarget[];
  /** settles on a shutdown signal: while the models still load, the start ends (MAAS_CANCELLED) with everything closed. */
  stop?: Promise<unknown>;
  /** with one, versions load on first request and the least recently used idle one makes room. */
  budget?: MemoryBudget | undefined;
  host: string;
  port: number;
  /** the gRPC port; undefined: no gRPC. */
  grpcPort?: number | undefined;
  /** a plain-HTTP port for liveness and readiness probes, with no TLS and no token; undefined: none. */
  healthPort?: number | undefined;
  token: string | undefined;
  insecure: boolean;
  tls?: TlsFiles | undefined;
  maxBodyBytes: number;
  timeoutMs: number;
  pollMs: number;
  /** one JSON line per event and per request, instead of human lifecycle lines. */
  jsonLogs: boolean;
  log: (line: string) => void;
  version: string;
  /** how long a slow client may take; the defaults suit production, tests shorten them. */
  clientTimeouts?: Partial<ClientTimeouts>;
  /** how often the TLS files are checked for a rotation (tests shorten it). */
  tlsPollMs?: number;
  /** the signature policy's flags; maas.yaml's `trust:` when they name no keys. */
  trust?: TrustFlags | undefined;
}

export interface ServedModel {
  name: string;
  versions: number[];
  aliases: Record<string, number>;
  /** the default version's provider; null until it loads (under a memory budget, on its first request). */
  provider: string | null;
}

export interface RunningServer {
  url: string;
  host: string;
  port: number;
  /** host:port of the gRPC service, when --grpc-port was given. */
  grpc?: { address: string; port: number } | undefined;
  /** the probes' plain-HTTP URL, when --health-port was given. */
  health?: { url: string; port: number } | undefined;
  tls: { mutual: boolean } | undefined;
  models: ServedModel[];
  close(): Promise<void>;
}

const LOOPBACK = /^(127\.\d+\.\d+\.\d+|::1|localhost|::ffff:127\.\d+\.\d+\.\d+)$/;

const UNLOAD_WHY: Record<Extract<ServeEvent, { event: 'unloaded' }>['reason'], string> = {
  memory: 'evicted: the memory budget', max_models: 'evicted: --max-loaded-models', keep_alive: 'idle past its keep-alive',
  request: 'unloaded by request', policy: 'no longer served', shutdown: 'shutting down',
};

function humanEvent(event: ServeEvent): string | undefined {
  switch (event.event) {
    case 'loaded': return `loaded ${event.model}@${event.version} on ${event.provider} in ${event.loadMs} ms (warm-up ${event.warmupMs} ms${event.warmupSamples ? ` on ${event.warmupSamples} stored sample${event.warmupSamples === 1 ? '' : 's'}` : ''}, ${formatBytes(event.residentBytes)} resident${event.runUs === undefined ? '' : `, ${event.runUs} µs a row${event.inline ? ', small requests inline' : ''}`})`
      + (event.warmupError === undefined ? '' : `; its generated warm-up request failed (${event.warmupError.split('\n')[0]}), so the first request pays onnxruntime's first run: register it with --warmup`);
    case 'unloaded': return `unloaded ${event.model}@${event.version} (${UNLOAD_WHY[event.reason]})`;
    case 'swap-wait': return `${event.model}: the memory budget holds one of ${event.from} and ${event.to}: requests wait while ${event.from} unloads and ${event.to} loads`;
    case 'swapped': return event.kept
      ? `${event.model}: requests that name no version now get ${event.to} (${event.from} is still served)`
      : `${event.model}: now serving version ${event.to}${event.from === undefined ? '' : ` (was ${event.from})`}`;
    case 'trust': return event.policy;
    case 'load-failed': return event.serving === undefined
      ? `could not load ${event.model}@${event.version}: ${event.error}`
      : `could not load ${event.model}@${event.version}, still serving the previous version (${event.serving}): ${event.error}`;
    case 'pulled': return `${event.status === 'unchanged' ? 'found' : 'pulled'} ${event.remote} as ${event.model}@${event.version}`;
    case 'refresh-failed': return `could not read the registry, still serving what was loaded: ${event.error}`;
    case 'over-budget': return `${event.model}@${event.version} is loaded at ${formatBytes(event.residentBytes)} resident, over the budget: ${event.error}; raise --memory-budget or pin fewer versions`;
    case 'policy-missing': return `${event.model}: the version policy ${event.policy} names ${event.missing.join(', ')}, not registered; served once registered`;
    case 'target-unresolved': return `${event.target} no longer resolves (${event.error}); ${event.serving.length ? `still serving ${event.serving.map((v) => `${event.model}@${v}`).join(', ')}` : `${event.model} is not served`}${/@\d+$/.test(event.target) ? '' : ' until it does'}`; // a version number is never registered again
    default: return undefined;
  }
}

/** Two transports on one port: the second would fail to bind with a message that names neither flag. */
function checkPorts(options: ServeOptions): void {
  const ports = [['--port', options.port], ['--grpc-port', options.grpcPort], ['--health-port', options.healthPort]] as const;
  for (const [i, [flag, port]] of ports.entries()) {
    const clash = ports.slice(0, i).find(([, other]) => port !== undefined && port !== 0 && port === other);
    if (clash) throw new MaasError('MAAS_USAGE', `${flag} ${port} is also the ${clash[0]}`, { hint: `Give ${flag} a port of its own (0 picks a free one).` });
  }
}

function checkExposure(options: ServeOptions): void {
  if (!LOOPBACK.test(options.host) && !options.token && !options.insecure) {
    throw new MaasError('MAAS_USAGE', `refusing to serve on ${options.host} without a token`, {
      hint: 'Set --token (or MAAS_TOKEN) so every route but liveness needs `Authorization: Bearer <token>`, or pass --insecure on a trusted network.',
    });
  }
  if (options.token === '') {
    throw new MaasError('MAAS_USAGE', 'the token is empty, which would let every request in', {
      hint: 'Pass a non-empty --token (or MAAS_TOKEN), or unset both to serve without auth on loopback.',
    });
  }
}

export async function startServer(options: ServeOptions): Promise<RunningServer> {
  checkPorts(options);
  checkExposure(options);
  const metrics = createMetrics();
  const logEvent = (event: ServeEvent | Record<string, unknown>) => {
    if (options.jsonLogs) options.log(JSON.stringify({ time: new Date().toISOString(), ...event }));
    else {
      const line = 'event' in event ? humanEvent(event as ServeEvent) : undefined;
      if (line) options.log(line);
    }
  };
  const policy = await registryTrustPolicy(options.trust ?? {}, options.registry);
  if (policy) logEvent({ event: 'trust', policy: describePolicy(policy) });
  let manager: ModelManager | undefined;
  let draining = false;
  const core: ServingCore = {
    manager: () => {
      if (manager) return manager;
      throw new MaasError('MAAS_MODEL_NOT_READY', 'the models are still loading', { hint: 'Retry when /v2/health/ready answers 200.' });
    },
    ready: () => !draining && (manager?.ready ?? false),
    draining: () => draining,
    metrics,
    token: options.token,
    timeoutMs: options.timeoutMs,
    maxBodyBytes: options.maxBodyBytes,
    version: options.version,
    jsonLogs: options.jsonLogs,
    logEvent,
    logFailure: (event, line) => (options.jsonLogs ? logEvent({ event, error: line }) : options.log(line)),
    managementRefused: !LOOPBACK.test(options.host) && !options.token ? `the management API is off on ${options.host} without a token (--insecure serves inference only)` : undefined,
    async pull(source, name) {
      const { pull } = await import('../remote/transfer.js');
      const pulled = await pull({ remote: source, name, admit: policy && pullAdmission(policy, source) }, options.registry);
      logEvent({ event: 'pulled', model: pulled.name, version: pulled.version, remote: source, status: pulled.status } satisfies ServeEvent);
      return pulled;
    },
  };

  const tls: TlsMaterial | undefined = options.tls ? loadTls(options.tls, options.registry.cwd, { pollMs: options.tlsPollMs, log: (line) => core.logFailure('tls', line) }) : undefined;
  const opened: { close(): Promise<void> }[] = [];
  let probes: ProbeTransport | undefined;
  // The probes' port closes last: while the others drain, readiness says 503 there too.
  const closeAll = async () => {
    await Promise.all(opened.splice(0).map((t) => t.close()));
    await probes?.close();
    tls?.close();
  };
  let http: HttpTransport;
  let grpc: GrpcTransport | undefined;
  try {
    http = await listenHttp(core, { host: options.host, port: options.port, tls, clientTimeouts: options.clientTimeouts });
    opened.push(http);
    if (options.grpcPort !== undefined) {
      grpc = await listenGrpc(core, { host: options.host, port: options.grpcPort, tls });
      opened.push(grpc);
    }
    if (options.healthPort !== undefined) probes = await listenProbes(core, { host: options.host, port: options.healthPort });
    metrics.setBudget(options.budget);
    manager = await ModelManager.open({
      registry: options.registry,
      targets: options.targets,
      pins: options.pins ?? [],
      budget: options.budget,
      roomWaitMs: options.timeoutMs,
      admit: policy && loadAdmission(policy),
      serving: (name, config) => modelServing(name, config, options.flags),
      observer: metrics.observer,
      log: (event) => {
        metrics.lifecycle(event);
        logEvent(event);
      },
    }, options.stop);
  } catch (error) {
    await closeAll().catch(() => undefined);
    throw error;
  }
  const served = manager;
  metrics.setQueueDepth(() => served.loadedRuntimes().map((rt) => ({ model: rt.name, version: rt.version, depth: rt.queueDepth })));
  served.startPolling(options.pollMs);

  return {
    url: http.url,
    host: http.host,
    port: http.port,
    grpc: grpc ? { address: grpc.address, port: grpc.port } : undefined,
    health: probes ? { url: probes.url, port: probes.port } : undefined,
    tls: tls ? { mutual: tls.mutual } : undefined,
    models: served.allRoutes().map((r) => ({
      name: r.name,
      versions: [...r.versions.keys()].sort((a, b) => a - b),
      aliases: Object.fromEntries(r.aliases),
      provider: r.versions.get(r.defaultVersion)!.runtime?.provider ?? null,
    })),
    async close() {
      // New requests are turned away; those in flight finish within the grace period; then the models unload.
      draining = true;
      try {
        await closeAll();
      } catch (error) {
        core.logFailure('close-error', `closing a transport failed: ${messageOf(error)}`);
      }
      await served.close();
    },
  };
}
