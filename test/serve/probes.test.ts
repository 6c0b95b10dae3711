/**
 * The --health-port listener over real HTTP, with the server's state scripted: readiness follows
 * loading and draining; a taken port is a usage error naming the flag.
 */
import { type AddressInfo, connect, createServer } from 'node:net';
import { describe, expect, it, onTestFinished } from 'vitest';
import { listenProbes } from '../../src/serve/http/probes.js';
import { startServer } from '../../src/serve/server.js';
import type { ServingCore } from '../../src/serve/serving.js';

/** Writes `text` on a raw connection and reads until the server closes it or `waitMs` passes. */
function rawExchange(url: string, text: string, waitMs = 20_000): Promise<{ answer: string; ms: number }> {
  const { hostname, port } = new URL(url);
  const started = performance.now();
  return new Promise((resolve) => {
    let answer = '';
    const socket = connect(Number(port), hostname, () => socket.write(text));
    const done = () => resolve({ answer, ms: performance.now() - started });
    socket.on('data', (d) => (answer += d));
    socket.on('close', done);
    socket.on('error', done);
    socket.setTimeout(waitMs, () => socket.destroy());
  });
}

function scriptedCore(state: { ready: boolean; draining: boolean }): ServingCore {
  // As the server's own core: not ready once draining.
  return { ready: () => state.ready && !state.draining, draining: () => state.draining, logFailure: () => undefined } as unknown as ServingCore;
}

describe('--health-port', () => {
  it('says ready only once the models are loaded and until draining begins; live all along', async () => {
    const state = { ready: false, draining: false };
    const probes = await listenProbes(scriptedCore(state), { host: '127.0.0.1', port: 0 });
    onTestFinished(() => probes.close());
    const ask = async (path: string) => {
      const res = await fetch(probes.url + path);
      return [res.status, await res.json()];
    };
    expect(await ask('/v2/health/ready')).toEqual([503, { ready: false }]);
    expect(await ask('/v2/health/live')).toEqual([200, { live: true }]);
    state.ready = true;
    expect(await ask('/v2/health/ready')).toEqual([200, { ready: true }]);
    state.draining = true;
    expect(await ask('/v2/health/ready')).toEqual([503, { ready: false }]);
    expect(await ask('/v2/health/live')).toEqual([200, { live: true }]);
  });

  it('refuses a port already taken with the flag to change, not a stack trace', async () => {
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    onTestFinished(() => new Promise<void>((resolve) => taken.close(() => resolve())));
    const { port } = taken.address() as AddressInfo;
    await expect(listenProbes(scriptedCore({ ready: true, draining: false }), { host: '127.0.0.1', port })).rejects.toMatchObject({
      code: 'MAAS_USAGE', message: `127.0.0.1:${port} is already in use`, hint: expect.stringContaining('Pick another --health-port'),
    });
  });

  it('invites no request body: Expect: 100-continue gets the 405 at once, with no 100 Continue', async () => {
    const probes = await listenProbes(scriptedCore({ ready: true, draining: false }), { host: '127.0.0.1', port: 0 });
    onTestFinished(() => probes.close());
    const { answer } = await rawExchange(probes.url, 'POST /v2/health/live HTTP/1.1\r\nHost: x\r\nContent-Length: 50000000\r\nExpect: 100-continue\r\n\r\n');
    expect(answer).toMatch(/^HTTP\/1\.1 405 /);
    expect(answer).not.toContain('100 Continue');
  });

  it('drops a client that never finishes its headers within seconds, not after the default 30 s check', async () => {
    const probes = await listenProbes(scriptedCore({ ready: true, draining: false }), { host: '127.0.0.1', port: 0 });
    onTestFinished(() => probes.close());
    const { answer, ms } = await rawExchange(probes.url, 'GET /v2/health/live HTTP/1.1\r\nHost: x\r\n');
    expect(answer).toMatch(/^HTTP\/1\.1 408 /);
    expect(ms).toBeLessThan(15_000);
  });

  it('refuses a port another transport of the same server was given', async () => {
    const options = { registry: { cwd: '/nonexistent', env: {} }, targets: [], flags: {}, host: '127.0.0.1', token: undefined, insecure: false, maxBodyBytes: 1, timeoutMs: 1, pollMs: 50, jsonLogs: false, log: () => undefined, version: 'test' };
    await expect(startServer({ ...options, port: 18123, healthPort: 18123 })).rejects.toMatchObject({ code: 'MAAS_USAGE', message: '--health-port 18123 is also the --port' });
    await expect(startServer({ ...options, port: 18123, grpcPort: 18124, healthPort: 18124 })).rejects.toMatchObject({ message: '--health-port 18124 is also the --grpc-port' });
    await expect(startServer({ ...options, port: 18123, grpcPort: 18123 })).rejects.toMatchObject({ message: '--grpc-port 18123 is also the --port' });
  });
});
