/**
 * The REST transport of `maas serve` on node:http (or node:https with --tls-cert): matches each
 * request against the route table, checks the token, answers with a status for anything that
 * goes wrong, and closes gracefully. Inference happens in the runtimes' workers; this thread
 * only parses, validates, queues and encodes.
 */
import { type IncomingMessage, type Server, type ServerResponse, createServer as createHttpServer } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { MaasError, clipped, isMaasError, messageOf } from '../../core/errors.js';
import { stringifyJson } from '../../inference/tensors.js';
import { checkToken } from '../auth.js';
import { type RequestLabels, type ServingCore, UNKNOWN } from '../serving.js';
import type { TlsMaterial } from '../tls.js';
import { BodyParser } from './body.js';
import { bindServer, trackSockets } from './listen.js';
import { ACCEPTED_ENCODINGS } from './encoding.js';
import { type Reply, type RouteRequest, matchRoute } from './routes.js';

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

export interface HttpTransport {
  url: string;
  host: string;
  port: number;
  /** stops accepting, lets requests in flight finish within the grace period, then cuts the rest. */
  close(): Promise<void>;
}

const STATUS_BY_CODE: Partial<Record<string, number>> = {
  MAAS_BAD_INPUT: 400,
  MAAS_USAGE: 400,
  MAAS_UNAUTHORIZED: 401,
  MAAS_FORBIDDEN: 403,
  MAAS_REMOTE_NOT_FOUND: 404,
  MAAS_FILE_NOT_FOUND: 404,
  MAAS_VERSION_CONFLICT: 409,
  MAAS_MODEL_INVALID: 422,
  MAAS_VERIFY_FAILED: 422,
  MAAS_REMOTE_UNREACHABLE: 502,
  MAAS_REMOTE_UNAUTHORIZED: 502,
  MAAS_REMOTE_REJECTED: 502,
  MAAS_DIGEST_MISMATCH: 502,
  MAAS_MODEL_NOT_FOUND: 404,
  MAAS_VERSION_NOT_FOUND: 404,
  MAAS_ALIAS_NOT_FOUND: 404,
  MAAS_PAYLOAD_TOO_LARGE: 413,
  MAAS_UNSUPPORTED_ENCODING: 415,
  MAAS_INFERENCE_FAILED: 500,
  MAAS_OVERLOADED: 503,
  MAAS_BUDGET_EXCEEDED: 507, // Insufficient Storage: no retry helps until the budget changes
  MAAS_MODEL_NOT_READY: 503,
  MAAS_TIMEOUT: 504,
};

function errorReply(error: unknown, challenge: string): Reply {
  if (error instanceof MethodNotAllowed) return { status: 405, body: { error: `${error.method} is not allowed here` }, headers: { allow: error.allow } };
  if (error instanceof NoRoute) return { status: 404, body: { error: error.message } };
  if (isMaasError(error)) {
    const status = STATUS_BY_CODE[error.code] ?? 500;
    const headers: Record<string, string> = {};
    if (status === 503) headers['retry-after'] = String(error.details?.retryAfterS ?? 1);
    if (status === 401) headers['www-authenticate'] = challenge;
    // The client may still be sending a body too large to read: end the connection after the answer.
    if (status === 413) headers.connection = 'close';
    // RFC 7694: a 415 for a content coding says which ones the server takes.
    if (status === 415) headers['accept-encoding'] = ACCEPTED_ENCODINGS;
    return { status, body: { error: error.message }, headers };
  }
  return { status: 500, body: { error: `internal error: ${messageOf(error)}` } };
}

/**
 * The undecoded path and query of a request target: origin-form as clients send it, or
 * absolute-form as proxies may. Anything else (`*`, `//%zz`, a broken URL) is a 400.
 */
function splitTarget(target: string): { path: string; query: URLSearchParams } {
  // What clients send nearly always: a plain path, nothing to split or check.
  if (target.startsWith('/') && !PLAIN_PATH_NOT.test(target)) return { path: target, query: new URLSearchParams() };
  let pathAndQuery = target.startsWith('/') ? target : undefined;
  if (pathAndQuery === undefined && /^https?:\/\//i.test(target) && URL.canParse(target)) {
    const url = new URL(target);
    pathAndQuery = url.pathname + url.search;
  }
  const [path = '', query = ''] = pathAndQuery?.split('#')[0]!.split(/\?(.*)/s) ?? [];
  if (pathAndQuery === undefined || (path.includes('%') && !WELL_ESCAPED.test(path))) {
    throw new MaasError('MAAS_BAD_INPUT', `${JSON.stringify(clipped(target))} is not a request target this server answers`);
  }
  return { path, query: new URLSearchParams(query) };
}

/** What makes a target more than a plain path. */
const PLAIN_PATH_NOT = /[?#%]/;

/** Every % in a path starts an escape of two hex digits. */
const WELL_ESCAPED = /^(?:[^%]|%[0-9A-Fa-f]{2})*$/s;

class MethodNotAllowed extends Error {
  constructor(readonly method: string, readonly allow: string) {
    super(`method not allowed; use ${allow}`);
  }
}

class NoRoute extends Error {}

/** How long idle keep-alive connections stay open at shutdown for a request already sent on one. */
const IDLE_LINGER_MS = 250;

/**
 * Binds the REST port. Requests that arrive before the models are loaded get 503 (readiness)
 * from the core; a taken port fails here, before any model loads.
 */
export async function listenHttp(core: ServingCore, options: { host: string; port: number; tls: TlsMaterial | undefined; clientTimeouts?: Partial<ClientTimeouts> | undefined }): Promise<HttpTransport> {
  const bodies = new BodyParser(core.maxBodyBytes);
  let inFlight = 0;
  let idle: (() => void) | undefined;

  /** One request, start to end: everything that can throw, target parsing included, answers with a status. */
  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const started = performance.now();
    const labels: RequestLabels = { model: '', version: '', protocol: 'other' };
    let path: string | undefined;
    let reply: Reply;
    let challenge = 'Bearer realm="maas"';
    try {
      const target = splitTarget(req.url ?? '');
      path = target.path;
      const matched = matchRoute(target.path);
      if (!matched) throw new NoRoute(`no route for ${req.method} ${clipped(target.path)}`);
      const { route, params } = matched;
      // A request to a model's route is counted whatever fails first (method, token, body):
      // under the model's own labels once they resolve, as UNKNOWN until then.
      labels.protocol = route.protocol;
      if (params.model !== undefined) labels.model = labels.version = UNKNOWN;
      // HEAD is GET without the body (RFC 9110): node:http leaves the body out and keeps its length.
      const handler = route.methods[(req.method === 'HEAD' ? 'GET' : req.method) as 'GET' | 'POST'];
      if (!handler) throw new MethodNotAllowed(req.method ?? '', Object.keys(route.methods).flatMap((m) => (m === 'GET' ? ['GET', 'HEAD'] : [m])).join(', '));
      // A browser asked for Basic logs in with the token as the password, then sends it on every call the page makes.
      if (route.browser) challenge = 'Basic realm="maas", charset="UTF-8"';
      if (route.auth) checkToken(req.headers.authorization, core.token);
      if (route.auth && core.draining()) throw new MaasError('MAAS_MODEL_NOT_READY', 'the server is shutting down', { hint: 'Retry on another replica, or once it is back.' });
      const request: RouteRequest = { req, params, query: target.query, labels, core, bodies };
      reply = await handler(request);
    } catch (error) {
      reply = errorReply(error, challenge);
    }
    // A draining server takes no further request on this connection.
    if (core.draining()) reply.headers = { ...reply.headers, connection: 'close' };
    // Text, not a Buffer, where it can be: node:http then writes the headers and body as one string.
    const body = Buffer.isBuffer(reply.body) || typeof reply.body === 'string' ? reply.body : stringifyJson(reply.body);
    const headers: Record<string, string> = reply.headers ?? {};
    headers['content-type'] ??= 'application/json';
    headers['content-length'] = String(typeof body === 'string' ? Buffer.byteLength(body) : body.length);
    res.writeHead(reply.status, headers);
    res.end(body);
    const seconds = (performance.now() - started) / 1000;
    if (labels.model) core.metrics.request(labels, String(reply.status), seconds);
    // path unset: the target did not parse, and the log shows what was sent of it.
    if (core.jsonLogs) core.logEvent({ event: 'request', method: req.method, path: path ?? (req.url ?? '').split('?')[0]!.slice(0, 200), status: reply.status, ms: Math.round(seconds * 1e4) / 10, ...(labels.model ? { model: labels.model, version: labels.version } : {}) });
  };

  const timeouts: ClientTimeouts = { headersMs: 10_000, requestMs: 120_000, shutdownGraceMs: core.timeoutMs + 1000, ...options.clientTimeouts };
  const serverOptions = {
    headersTimeout: timeouts.headersMs,
    requestTimeout: timeouts.requestMs,
    // node:http enforces both timeouts only when it checks its connections: every 30 s by default.
    connectionsCheckingInterval: Math.min(1000, timeouts.headersMs),
  };
  const onRequest = (req: IncomingMessage, res: ServerResponse) => {
    inFlight++;
    // Counted down once the answer is handed to the socket (or the socket is gone), so close()
    // never destroys a connection with a response still unsent.
    res.on('close', () => {
      if (--inFlight === 0) idle?.();
    });
    // No request may end the process: what `handle` did not foresee costs this one request, not the server.
    handle(req, res).catch((error: unknown) => {
      try {
        core.logFailure('request-error', `a request failed inside the server: ${messageOf(error)}`);
        if (res.headersSent) res.destroy();
        else res.writeHead(500, { 'content-type': 'application/json', connection: 'close' }).end(JSON.stringify({ error: 'internal error' }));
      } catch {
        res.destroy();
      }
    });
  };
  const server: Server = options.tls
    ? createHttpsServer({ ...serverOptions, ...options.tls.secureContextOptions() }, onRequest)
    : createHttpServer(serverOptions, onRequest);
  // A rotated certificate applies to the next handshake; connections already open keep theirs.
  options.tls?.onChange((material) => (server as ReturnType<typeof createHttpsServer>).setSecureContext(material));
  server.keepAliveTimeout = 65_000; // above common load balancer idle timeouts
  const sockets = trackSockets(server);
  // A client that fails the TLS handshake (plain HTTP on the TLS port, no client certificate) is dropped, not fatal.
  server.on('tlsClientError', (error: Error, socket: Socket) => {
    core.logEvent({ event: 'tls-refused', error: messageOf(error) });
    socket.destroy();
  });

  const bound = await bindServer(server, options.host, options.port, '--port').catch((error: unknown) => {
    bodies.close();
    throw error;
  });
  // Once listening, an error of the listening socket (EMFILE when clients hold every descriptor) is logged, not fatal.
  server.on('error', (error) => core.logFailure('server-error', `the server socket failed, still listening: ${messageOf(error)}`));
  return {
    url: `${options.tls ? 'https' : 'http'}://${bound.urlHost}:${bound.port}`,
    host: bound.address,
    port: bound.port,
    async close() {
      // Stop accepting, let requests in flight finish within the grace period (a client that
      // trickles its body could hold them for ever), then cut what is left.
      // server.close() also cuts idle keep-alive connections at once, and with them a request
      // already on its way on one (the client reads a reset). They get a moment first: what
      // arrives is answered (503 while draining, with Connection: close), the rest is closed.
      const closeIdle = server.closeIdleConnections.bind(server);
      server.closeIdleConnections = () => undefined;
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections = closeIdle;
      if (sockets.size > 0) await sleep(IDLE_LINGER_MS);
      closeIdle();
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
    },
  };
}
