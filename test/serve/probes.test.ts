/**
 * The --health-port listener over real HTTP, with the server's state scripted: readiness follows
 * loading and draining; a taken port is a usage error naming the flag.
 */
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { describe, expect, it, onTestFinished } from 'vitest';
import { listenProbes } from '../../src/serve/http/probes.js';
import type { ServingCore } from '../../src/serve/serving.js';

function scriptedCore(state: { ready: boolean; draining: boolean }): ServingCore {
  return { ready: () => state.ready, draining: () => state.draining, logFailure: () => undefined } as unknown as ServingCore;
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
});
