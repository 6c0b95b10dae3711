/**
 * `--health-port`: liveness and readiness on plain HTTP, with no token, for probes that cannot
 * speak to the main ports. Kubernetes' httpGet probes present no client certificate, so under
 * mTLS they fail the handshake, and its gRPC probes speak no TLS at all. This port tells nothing
 * but live and ready, as ServerLive and the gRPC health service do without a token.
 */
import { type IncomingMessage, type ServerResponse, createServer } from 'node:http';
import { messageOf } from '../../core/errors.js';
import type { ServingCore } from '../serving.js';
import { bindServer, trackSockets } from './listen.js';

export interface ProbeTransport {
  url: string;
  port: number;
  close(): Promise<void>;
}

/** A probe has this long to send its headers; its answer is immediate. */
const PROBE_HEADERS_MS = 5_000;
const PATHS = ['/v2/health/live', '/v2/health/ready'];

function answer(core: ServingCore, req: IncomingMessage): { status: number; body: object; allow?: string } {
  const path = (req.url ?? '').split('?')[0];
  if (!PATHS.includes(path!)) return { status: 404, body: { error: `this port answers only ${PATHS.join(' and ')}; the API is on the main port` } };
  if (req.method !== 'GET' && req.method !== 'HEAD') return { status: 405, body: { error: `${req.method} is not allowed here` }, allow: 'GET, HEAD' };
  if (path === '/v2/health/live') return { status: 200, body: { live: true } };
  const ready = core.ready();
  return { status: ready ? 200 : 503, body: { ready } };
}

export async function listenProbes(core: ServingCore, options: { host: string; port: number }): Promise<ProbeTransport> {
  const onRequest = (req: IncomingMessage, res: ServerResponse) => {
    const { status, body, allow } = answer(core, req);
    const text = JSON.stringify(body);
    // A request body is never read: the connection closes after an answer to anything but a probe.
    const close = status !== 200 && status !== 503;
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store', ...(allow ? { allow } : {}), ...(close ? { connection: 'close' } : {}) });
    res.end(req.method === 'HEAD' ? undefined : text);
  };
  // Timeouts are checked every second (node's default is 30 s), so a slow client goes at 5 s.
  const server = createServer({ headersTimeout: PROBE_HEADERS_MS, requestTimeout: PROBE_HEADERS_MS, connectionsCheckingInterval: 1000 }, onRequest);
  // `Expect: 100-continue` gets its answer with no 100 Continue: a body is never invited.
  server.on('checkContinue', onRequest);
  const sockets = trackSockets(server);
  const bound = await bindServer(server, options.host, options.port, '--health-port');
  server.on('error', (error) => core.logFailure('server-error', `the health port's socket failed, still listening: ${messageOf(error)}`));
  return {
    url: `http://${bound.urlHost}:${bound.port}`,
    port: bound.port,
    // Every answer is immediate, so nothing is in flight to wait for.
    close: () => new Promise<void>((resolve) => {
      server.close(() => resolve());
      for (const socket of sockets) socket.destroy();
    }),
  };
}
