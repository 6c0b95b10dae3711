import { onTestFinished } from 'vitest';
import { startServer, type RunningServer, type ServeOptions } from '../../src/serve/server.js';
import type { TestRegistry } from './registry.js';

export interface TestServer extends RunningServer {
  logs: string[];
  /** POSTs JSON (or raw bytes with headers) and returns status, headers and parsed body. */
  post: (path: string, body: unknown, headers?: Record<string, string>) => Promise<{ status: number; headers: Headers; json: any; raw: Buffer }>;
  get: (path: string, headers?: Record<string, string>) => Promise<{ status: number; headers: Headers; json: any; text: string }>;
}

export type ServeOverrides = Partial<Omit<ServeOptions, 'flags'>> & { flags?: ServeOptions['flags'] };

/** Starts `maas serve` in-process on 127.0.0.1, port 0, against a test registry. */
export async function serveRegistry(reg: TestRegistry, overrides: ServeOverrides = {}): Promise<TestServer> {
  const logs: string[] = [];
  const server = await startServer({
    registry: { cwd: reg.dir, env: reg.env },
    targets: [],
    host: '127.0.0.1',
    port: 0,
    token: undefined,
    insecure: false,
    maxBodyBytes: 64 << 20,
    timeoutMs: 30_000,
    pollMs: 100,
    jsonLogs: false,
    log: (line) => logs.push(line),
    version: 'test',
    ...overrides,
    flags: { device: 'cpu', workers: 1, threads: 1, ...overrides.flags },
  });
  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    await server.close();
  };
  onTestFinished(close);
  return {
    ...server,
    close,
    logs,
    async post(path, body, headers = {}) {
      const res = await fetch(server.url + path, { method: 'POST', body: Buffer.isBuffer(body) ? body : typeof body === 'string' ? body : JSON.stringify(body), headers });
      const raw = Buffer.from(await res.arrayBuffer());
      const jsonLength = Number(res.headers.get('inference-header-content-length') ?? raw.length);
      let json: unknown;
      try {
        json = JSON.parse(raw.subarray(0, jsonLength).toString('utf8'));
      } catch {
        json = undefined;
      }
      return { status: res.status, headers: res.headers, json, raw };
    },
    async get(path, headers = {}) {
      const res = await fetch(server.url + path, { headers });
      const text = await res.text();
      let json: unknown;
      try {
        json = JSON.parse(text);
      } catch {
        json = undefined;
      }
      return { status: res.status, headers: res.headers, json, text };
    },
  };
}
