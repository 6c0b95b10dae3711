/**
 * A loopback HTTP proxy in front of the real registry that scripts faults the registry cannot
 * be made to produce: 5xx answers, connections cut halfway through a request body, and answers
 * that stall halfway through their body.
 */
import { type IncomingMessage, type ServerResponse, createServer, request } from 'node:http';
import { onTestFinished } from 'vitest';

export type Fault = 'pass' | 'fail-500' | 'cut-body' | 'stall-answer';

export interface FaultProxy {
  host: string;
  /** every request seen, as `METHOD path` with the fault applied. */
  log: string[];
}

export async function startFaultProxy(target: string, decide: (req: IncomingMessage, index: number) => Fault): Promise<FaultProxy> {
  const log: string[] = [];
  let proxyHost = '';
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const fault = decide(req, log.length);
      log.push(`${fault} ${req.method} ${req.url?.split('?')[0]}`);
      if (fault === 'fail-500') {
        res.writeHead(500, { 'content-type': 'application/json' }).end('{"errors":[{"code":"UNKNOWN","message":"scripted failure"}]}');
        return;
      }
      const upstream = request({ host: target.split(':')[0], port: Number(target.split(':')[1]), method: req.method, path: req.url, headers: { ...req.headers, host: target } }, (up) => {
        const headers = { ...up.headers };
        if (headers.location) headers.location = headers.location.replace(`//${target}`, `//${proxyHost}`);
        res.writeHead(up.statusCode ?? 502, headers);
        if (fault !== 'stall-answer') {
          up.pipe(res);
          return;
        }
        // Half the answer, then nothing more (until the test ends and closes it).
        const half = Number(up.headers['content-length'] ?? 0) >> 1;
        let sent = 0;
        up.on('data', (c: Buffer) => {
          if (sent < half) res.write(c.subarray(0, half - sent));
          sent += c.length;
        });
      });
      upstream.on('error', () => res.destroy());
      if (fault === 'cut-body') {
        // Half the body reaches the registry, then both connections drop.
        upstream.write(body.subarray(0, body.length >> 1), () => setTimeout(() => {
          upstream.destroy();
          res.socket?.destroy();
        }, 50));
        return;
      }
      upstream.end(body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  proxyHost = `127.0.0.1:${(server.address() as { port: number }).port}`;
  onTestFinished(() => new Promise<void>((resolve) => {
    server.closeAllConnections();
    server.close(() => resolve());
  }));
  return { host: proxyHost, log };
}
