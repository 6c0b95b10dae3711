/**
 * The HTTP front of `maas serve` on node:http: KServe v2 and TF Serving routes, bearer-token
 * auth, body limits, metrics and graceful shutdown. Inference happens in the runtimes' workers;
 * this thread only parses, validates, queues and encodes.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { type IncomingMessage, type ServerResponse, createServer } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { MaasError, isMaasError, messageOf } from '../../core/errors.js';
import type { ModelRef } from '../../registry/refs.js';
import type { RegistryOptions } from '../../registry/registry.js';
import { BodyParser, readBody } from './body.js';
import { modelMetadata } from '../../inference/protocol.js';
import { HEADER_LENGTH, encodeInferResponse } from './kserve.js';
import { createMetrics } from '../metrics.js';
import { ModelRepository, type ServeEvent } from '../../inference/manager.js';
import type { RuntimeOptions } from '../../inference/config.js';
import type { ModelRuntime } from '../../inference/runtime.js';
import { checkSignatureName, encodePredictResponse, tfModelMetadata } from './tfserving.js';
import type { WireTensor } from '../../inference/tensors.js';

export interface ServeOptions {
  registry: RegistryOptions;
  targets: ModelRef[];
  runtime: RuntimeOptions;
  host: string;
  port: number;
  token: string | undefined;
  insecure: boolean;
  maxBodyBytes: number;
  timeoutMs: number;
  pollMs: number;
  /** one JSON line per event and per request, instead of human lifecycle lines. */
  jsonLogs: boolean;
  log: (line: string) => void;
  version: string;
  /** how long a slow client may take; the defaults suit production, tests shorten them. */
  clientTimeouts?: Partial<ClientTimeouts>;
}

export interface ClientTimeouts {
  /** a request's headers must all arrive within this (slowloris). */
  headersMs: number;
  /** the whole request, headers and body, within this: 64 MB needs about 0.5 MB/s. */
  requestMs: number;
  /**
   * on close, requests in flight get this long to finish before their sockets are destroyed;
   * by default the request timeout and a second, so every inference in flight ends in its answer.
   */
  shutdownGraceMs: number;
}

export interface RunningServer {
  url: string;
  host: string;
  port: number;
  models: { name: string; versions: number[]; aliases: Record<string, number>; provider: string }[];
  close(): Promise<void>;
}

interface Reply {
  status: number;
  body: Buffer | string | object;
  headers?: Record<string, string>;
}

const STATUS_BY_CODE: Partial<Record<string, number>> = {
  MAAS_BAD_INPUT: 400,
  MAAS_UNAUTHORIZED: 401,
  MAAS_MODEL_NOT_FOUND: 404,
  MAAS_VERSION_NOT_FOUND: 404,
  MAAS_ALIAS_NOT_FOUND: 404,
  MAAS_PAYLOAD_TOO_LARGE: 413,
  MAAS_INFERENCE_FAILED: 500,
  MAAS_OVERLOADED: 503,
  MAAS_MODEL_NOT_READY: 503,
  MAAS_TIMEOUT: 504,
};

const LOOPBACK = /^(127\.\d+\.\d+\.\d+|::1|localhost|::ffff:127\.\d+\.\d+\.\d+)$/;

const KSERVE_MODEL = /^\/v2\/models\/([^/]+)(?:\/versions\/([^/]+))?(\/ready|\/infer)?$/;
const TF_MODEL = /^\/v1\/models\/([^/:]+)(?:\/versions\/(\d+)|\/labels\/([^/:]+))?(\/metadata|:predict)?$/;

function errorReply(error: unknown): Reply {
  if (isMaasError(error)) {
    const status = STATUS_BY_CODE[error.code] ?? 500;
    const headers: Record<string, string> = {};
    if (status === 503) headers['retry-after'] = '1';
    if (status === 401) headers['www-authenticate'] = 'Bearer realm="maas"';
    return { status, body: { error: error.message }, headers };
  }
  return { status: 500, body: { error: `internal error: ${messageOf(error)}` } };
}

/** Compares digests, always of equal length, so the time taken tells neither the token's bytes nor its length. */
function tokenMatches(header: string | undefined, token: string): boolean {
  const digest = (text: string) => createHash('sha256').update(text).digest();
  return timingSafeEqual(digest(/^Bearer (.+)$/i.exec(header ?? '')?.[1] ?? ''), digest(token));
}

/** The label of a 404 for a model or version not served: hostile names must not each make a series. */
const UNKNOWN = '(unknown)';

/**
 * The undecoded path and query of a request target: origin-form as clients send it, or
 * absolute-form as proxies may. Anything else (`*`, `//%zz`, a broken URL) is a 400.
 */
function splitTarget(target: string): { path: string; query: URLSearchParams } {
  let pathAndQuery = target.startsWith('/') ? target : undefined;
  if (pathAndQuery === undefined && /^https?:\/\//i.test(target) && URL.canParse(target)) {
    const url = new URL(target);
    pathAndQuery = url.pathname + url.search;
  }
  const [path = '', query = ''] = pathAndQuery?.split('#')[0]!.split(/\?(.*)/s) ?? [];
  if (pathAndQuery === undefined || !WELL_ESCAPED.test(path)) throw badRequestTarget(target);
  return { path, query: new URLSearchParams(query) };
}

/** Every % in a path starts an escape of two hex digits. */
const WELL_ESCAPED = /^(?:[^%]|%[0-9A-Fa-f]{2})*$/s;

function badRequestTarget(target: string): MaasError {
  return new MaasError('MAAS_BAD_INPUT', `${JSON.stringify(target.slice(0, 100))} is not a request target this server answers`);
}

/** A path segment, percent-decoded; a broken escape is the client's mistake, a 400. */
function decodeSegment(segment: string | undefined): string | undefined {
  if (segment === undefined) return undefined;
  try {
    return decodeURIComponent(segment);
  } catch {
    throw new MaasError('MAAS_BAD_INPUT', `${JSON.stringify(segment.slice(0, 100))} in the request path is not valid percent-encoding`);
  }
}

export async function startServer(options: ServeOptions): Promise<RunningServer> {
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
  const metrics = createMetrics();
  const logEvent = (event: ServeEvent | Record<string, unknown>) => {
    if (options.jsonLogs) options.log(JSON.stringify({ time: new Date().toISOString(), ...event }));
    else if ('event' in event) options.log(humanEvent(event as ServeEvent));
  };
  /** What went wrong outside any one model: a line for people, or an event for --json-logs. */
  const logFailure = (event: string, line: string) => (options.jsonLogs ? logEvent({ event, error: line }) : options.log(line));
  // Bound before loading, so a taken port fails at once; until loaded, readiness and models answer 503.
  let repository: ModelRepository | undefined;
  const loaded = (): ModelRepository => {
    if (repository) return repository;
    throw new MaasError('MAAS_MODEL_NOT_READY', 'the models are still loading', { hint: 'Retry when /v2/health/ready answers 200.' });
  };
  const openRepository = async (): Promise<ModelRepository> => {
    const opened = await ModelRepository.open({
      registry: options.registry,
      targets: options.targets,
      runtime: options.runtime,
      observer: metrics.observer,
      log: (event) => {
        if (event.event === 'loaded') metrics.loaded(event.model, event.version, event.loadMs / 1000);
        logEvent(event);
      },
    });
    metrics.setQueueDepth(() => opened.allRoutes().flatMap((r) => [...r.versions.values()].map((rt) => ({ model: rt.name, version: rt.version, depth: rt.queueDepth }))));
    return opened;
  };

  const bodies = new BodyParser(options.maxBodyBytes);
  let inFlight = 0;
  let idle: (() => void) | undefined;

  const infer = async (runtime: ModelRuntime, feeds: Record<string, WireTensor>, outputs: string[]) =>
    runtime.infer({ feeds, outputs, deadline: Date.now() + options.timeoutMs });

  const routes = async (req: IncomingMessage, { path, query }: { path: string; query: URLSearchParams }, labels: { model: string; version: string; protocol: string }): Promise<Reply> => {
    const method = req.method ?? 'GET';
    const onlyGet = <T>(reply: T): T => {
      if (method !== 'GET') throw new MethodNotAllowed('GET');
      return reply;
    };
    /** The runtime a path names; its labels are the model's, or UNKNOWN for a name or version not served. */
    const resolve = (name: string, version: string | undefined): ModelRuntime => {
      const served = loaded();
      Object.assign(labels, { model: served.route(name) ? name : UNKNOWN, version: UNKNOWN });
      const runtime = served.resolve(name, version);
      Object.assign(labels, { model: runtime.name, version: String(runtime.version) });
      return runtime;
    };
    if (path === '/v2/health/live') return onlyGet({ status: 200, body: { live: true } });
    if (options.token && !tokenMatches(req.headers.authorization, options.token)) {
      throw new MaasError('MAAS_UNAUTHORIZED', 'missing or wrong bearer token');
    }
    if (path === '/v2/health/ready') return onlyGet(repository?.ready ? { status: 200, body: { ready: true } } : { status: 503, body: { ready: false } });
    if (path === '/v2' || path === '/v2/') return onlyGet({ status: 200, body: { name: 'maas', version: options.version, extensions: ['binary_tensor_data'] } });
    if (path === '/metrics') return onlyGet({ status: 200, body: await metrics.registry.metrics(), headers: { 'content-type': metrics.registry.contentType } });

    const kserve = KSERVE_MODEL.exec(path);
    if (kserve) {
      const [, name, version, action] = kserve.map(decodeSegment);
      labels.protocol = 'v2';
      const runtime = resolve(name!, version);
      if (action === '/infer') {
        if (method !== 'POST') throw new MethodNotAllowed('POST');
        const body = await readBody(req, options.maxBodyBytes);
        const parsed = await bodies.infer(body, req.headers[HEADER_LENGTH] as string | undefined, runtime.signature);
        const outputs = await infer(runtime, parsed.feeds, parsed.outputs);
        const encoded = encodeInferResponse({ model: runtime.name, version: runtime.version, id: parsed.id, outputs, order: parsed.outputs, binaryOutputs: parsed.binaryOutputs });
        return { status: 200, body: encoded.body, headers: encoded.headers };
      }
      if (action === '/ready') return onlyGet({ status: 200, body: { name: runtime.name, ready: true } });
      const versions = [...loaded().route(runtime.name)!.versions.keys()].map(String);
      return onlyGet({ status: 200, body: modelMetadata(runtime.name, versions, runtime.signature) });
    }

    const tf = TF_MODEL.exec(path);
    if (tf) {
      const [, name, version, label, action] = tf.map(decodeSegment);
      labels.protocol = 'v1';
      if (action === ':predict') {
        if (method !== 'POST') throw new MethodNotAllowed('POST');
        const runtime = resolve(name!, version ?? label);
        const body = await readBody(req, options.maxBodyBytes);
        const parsed = await bodies.predict(body, runtime.signature);
        const outputs = await infer(runtime, parsed.feeds, parsed.outputs);
        return { status: 200, body: encodePredictResponse(parsed.format, outputs, parsed.outputs) };
      }
      const runtime = resolve(name!, version ?? label);
      if (action === '/metadata') {
        checkSignatureName(query.get('signature_name') ?? undefined);
        return onlyGet({ status: 200, body: tfModelMetadata(runtime.name, runtime.version, runtime.signature) });
      }
      // Without a version or label: every served version, as TF Serving lists them.
      const shown = version ?? label ? [runtime.version] : [...loaded().route(name!)!.versions.keys()];
      return onlyGet({
        status: 200,
        body: { model_version_status: shown.map((v) => ({ version: String(v), state: 'AVAILABLE', status: { error_code: 'OK', error_message: '' } })) },
      });
    }
    throw new NotFoundRoute(`no route for ${method} ${path}`);
  };

  /** One request, start to end: everything that can throw, target parsing included, answers with a status. */
  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const started = performance.now();
    const labels = { model: '', version: '', protocol: 'other' };
    let path = (req.url ?? '').split('?')[0]!.slice(0, 200); // what the log shows of a target that does not parse
    let reply: Reply;
    try {
      const target = splitTarget(req.url ?? '');
      path = target.path;
      reply = await routes(req, target, labels);
    } catch (error) {
      reply = error instanceof MethodNotAllowed
        ? { status: 405, body: { error: `${req.method} is not allowed here` }, headers: { allow: error.allow } }
        : error instanceof NotFoundRoute
          ? { status: 404, body: { error: error.message } }
          : errorReply(error);
      if (reply.status === 413) reply.headers = { ...reply.headers, connection: 'close' };
    }
    const body = Buffer.isBuffer(reply.body) ? reply.body : Buffer.from(typeof reply.body === 'string' ? reply.body : JSON.stringify(reply.body));
    res.writeHead(reply.status, { 'content-type': 'application/json', ...reply.headers, 'content-length': String(body.length) });
    res.end(body);
    const seconds = (performance.now() - started) / 1000;
    if (labels.model) metrics.request({ ...labels, code: reply.status }, seconds);
    if (options.jsonLogs) logEvent({ event: 'request', method: req.method, path, status: reply.status, ms: Math.round(seconds * 1e4) / 10, ...(labels.model ? { model: labels.model, version: labels.version } : {}) });
  };

  const timeouts: ClientTimeouts = { headersMs: 10_000, requestMs: 120_000, shutdownGraceMs: options.timeoutMs + 1000, ...options.clientTimeouts };
  const server = createServer({
    headersTimeout: timeouts.headersMs,
    requestTimeout: timeouts.requestMs,
    // node:http enforces both timeouts only when it checks its connections: every 30 s by default.
    connectionsCheckingInterval: Math.min(1000, timeouts.headersMs),
  }, (req: IncomingMessage, res: ServerResponse) => {
    inFlight++;
    // Counted down once the answer is handed to the socket (or the socket is gone), so close()
    // never destroys a connection with a response still unsent.
    res.once('close', () => {
      if (--inFlight === 0) idle?.();
    });
    // No request may end the process: what `handle` did not foresee costs this one request, not the server.
    handle(req, res)
      .catch((error: unknown) => {
        logFailure('request-error', `a request failed inside the server: ${messageOf(error)}`);
        if (res.headersSent) res.destroy();
        else res.writeHead(500, { 'content-type': 'application/json', connection: 'close' }).end(JSON.stringify({ error: 'internal error' }));
      })
      .catch(() => res.destroy());
  });
  server.keepAliveTimeout = 65_000; // above common load balancer idle timeouts
  // Every socket, from its accept on: closeAllConnections() misses one whose first request has
  // not been parsed yet, and server.close() would wait for it until a timeout.
  const sockets = new Set<Socket>();
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });

  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(options.port, options.host, () => resolve());
    });
  } catch (error) {
    bodies.close();
    throw listenError(error, options.host, options.port);
  }
  // Once listening, an error of the listening socket (EMFILE when clients hold every descriptor) is logged, not fatal.
  server.on('error', (error) => logFailure('server-error', `the server socket failed, still listening: ${messageOf(error)}`));
  try {
    repository = await openRepository();
  } catch (error) {
    bodies.close();
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
    throw error;
  }
  const served = repository;
  served.startPolling(options.pollMs);
  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;

  return {
    url: `http://${host}:${address.port}`,
    host: address.address,
    port: address.port,
    models: served.allRoutes().map((r) => ({
      name: r.name,
      versions: [...r.versions.keys()],
      aliases: Object.fromEntries(r.aliases),
      provider: r.versions.get(r.defaultVersion)!.provider,
    })),
    async close() {
      // Stop accepting, let requests in flight finish within the grace period (a client that
      // trickles its body could hold them for ever), then cut what is left and unload the models.
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      if (inFlight > 0) {
        let grace: NodeJS.Timeout | undefined;
        await new Promise<void>((resolve) => {
          idle = resolve;
          grace = setTimeout(resolve, timeouts.shutdownGraceMs);
        });
        clearTimeout(grace);
      }
      for (const socket of sockets) socket.destroy();
      await closed;
      bodies.close();
      await served.close();
    },
  };
}

class MethodNotAllowed extends Error {
  constructor(readonly allow: string) {
    super(`method not allowed; use ${allow}`);
  }
}

class NotFoundRoute extends Error {}

function listenError(error: unknown, host: string, port: number): MaasError {
  const code = (error as NodeJS.ErrnoException).code;
  const message = code === 'EADDRINUSE' ? `${host}:${port} is already in use` : `cannot listen on ${host}:${port}: ${messageOf(error)}`;
  return new MaasError('MAAS_USAGE', message, { hint: 'Pick another --port (0 picks a free one) or --host; no model was loaded.' });
}

function humanEvent(event: ServeEvent): string {
  switch (event.event) {
    case 'loaded': return `loaded ${event.model}@${event.version} on ${event.provider} in ${event.loadMs} ms`;
    case 'unloaded': return `unloaded ${event.model}@${event.version}`;
    case 'swapped': return `${event.model}: now serving version ${event.to}${event.from === undefined ? '' : ` (was ${event.from})`}`;
    case 'load-failed': return event.serving === undefined
      ? `could not load ${event.model}@${event.version}: ${event.error}`
      : `could not load ${event.model}@${event.version}, still serving the previous version (${event.serving}): ${event.error}`;
    case 'refresh-failed': return `could not read the registry, still serving what was loaded: ${event.error}`;
  }
}
