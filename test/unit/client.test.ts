/**
 * The distribution client against scripted responses, for what distribution 2.8 cannot be made
 * to do: keep an upload session across a cut (the spec's GET → Range resume), answer 503s.
 */
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { RegistryClient, parseChallenge } from '../../src/remote/client.js';

describe('WWW-Authenticate parsing', () => {
  it('reads quoted params with commas and several scopes', () => {
    expect(parseChallenge('Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push repository:c:pull"')).toEqual({
      scheme: 'bearer',
      params: { realm: 'https://auth.example/token', service: 'registry.example', scope: 'repository:a/b:pull,push repository:c:pull' },
    });
    expect(parseChallenge('Basic realm="maas-test"')).toEqual({ scheme: 'basic', params: { realm: 'maas-test' } });
    expect(parseChallenge('Bearer realm=unquoted,error="invalid_token"').params).toEqual({ realm: 'unquoted', error: 'invalid_token' });
  });
});

describe('chunked upload resume', () => {
  it('asks where the upload stands after a cut and sends only the rest', async () => {
    const blob = Buffer.alloc(10_000, 7);
    let stored = Buffer.alloc(0);
    let cutOnce = false;
    const calls: string[] = [];
    const fake: typeof fetch = async (input, init) => {
      const url = new URL(String(input));
      const method = init?.method ?? 'GET';
      calls.push(`${method} ${url.pathname}${method === 'PATCH' ? ` ${(init?.headers as Record<string, string>)['content-range']}` : ''}`);
      const body = init?.body ? Buffer.from(await new Response(init.body).arrayBuffer()) : Buffer.alloc(0);
      if (method === 'POST') return new Response(null, { status: 202, headers: { location: '/v2/m/blobs/uploads/u1' } });
      if (method === 'PATCH') {
        if (!cutOnce && stored.length === 4096) {
          cutOnce = true;
          stored = Buffer.concat([stored, body.subarray(0, 1000)]); // the registry kept part of the chunk
          throw new TypeError('fetch failed: socket hang up');
        }
        stored = Buffer.concat([stored, body]);
        return new Response(null, { status: 202, headers: { location: '/v2/m/blobs/uploads/u1', range: `0-${stored.length - 1}` } });
      }
      if (method === 'GET') return new Response(null, { status: 204, headers: { location: '/v2/m/blobs/uploads/u1', range: `0-${stored.length - 1}` } });
      if (method === 'PUT') {
        const digest = `sha256:${createHash('sha256').update(stored).digest('hex')}`;
        return new Response(null, { status: url.searchParams.get('digest') === digest ? 201 : 400 });
      }
      return new Response(null, { status: 500 });
    };
    const client = new RegistryClient({ host: 'registry.test', repository: 'm', plainHttp: true, credentials: {}, userAgent: 'test', fetch: fake, sleep: async () => {}, chunkBytes: 4096 });
    const digest = `sha256:${createHash('sha256').update(blob).digest('hex')}`;
    await client.uploadBytes(blob, { mediaType: 'application/octet-stream', digest, size: blob.length });
    expect(stored).toEqual(blob);
    expect(calls).toEqual([
      'POST /v2/m/blobs/uploads/',
      'PATCH /v2/m/blobs/uploads/u1 0-4095',
      'PATCH /v2/m/blobs/uploads/u1 4096-8191',
      'GET /v2/m/blobs/uploads/u1',
      'PATCH /v2/m/blobs/uploads/u1 5096-9191',
      'PATCH /v2/m/blobs/uploads/u1 9192-9999',
      'PUT /v2/m/blobs/uploads/u1',
    ]);
  });

  it('never commits an upload whose bytes do not match the digest: no session for a small blob, a cancelled one for a chunked one', async () => {
    for (const chunkBytes of [1 << 20, 4096]) {
      const calls: string[] = [];
      const fake: typeof fetch = async (input, init) => {
        const method = init?.method ?? 'GET';
        calls.push(method);
        if (method === 'POST') return new Response(null, { status: 202, headers: { location: '/v2/m/blobs/uploads/u1' } });
        if (method === 'PATCH') return new Response(null, { status: 202, headers: { location: '/v2/m/blobs/uploads/u1' } });
        if (method === 'DELETE') return new Response(null, { status: 204 });
        return new Response(null, { status: 201 });
      };
      const client = new RegistryClient({ host: 'registry.test', repository: 'm', plainHttp: true, credentials: {}, userAgent: 'test', fetch: fake, sleep: async () => {}, chunkBytes });
      const expected = Buffer.alloc(10_000, 7);
      const damaged = Buffer.from(expected);
      damaged[9_000] = 8;
      const digest = `sha256:${createHash('sha256').update(expected).digest('hex')}`;
      await expect(client.uploadBytes(damaged, { mediaType: 'application/octet-stream', digest, size: expected.length })).rejects.toMatchObject({ code: 'MAAS_DIGEST_MISMATCH' });
      expect(calls, String(chunkBytes)).not.toContain('PUT');
      // A blob sent in one PUT is checked before a session opens; a chunked one's session is cancelled.
      if (chunkBytes > expected.length) expect(calls).toEqual([]);
      else expect(calls.at(-1)).toBe('DELETE');
    }
  });

  it('retries 503s with backoff and gives up with exit 5 after the last attempt', async () => {
    let calls = 0;
    const waits: number[] = [];
    const fake: typeof fetch = async () => {
      calls++;
      return new Response('{"errors":[{"code":"UNAVAILABLE","message":"busy"}]}', { status: 503 });
    };
    const client = new RegistryClient({ host: 'registry.test', repository: 'm', plainHttp: true, credentials: {}, userAgent: 'test', fetch: fake, sleep: async (ms) => void waits.push(ms), attempts: 4 });
    await expect(client.ping()).rejects.toMatchObject({ code: 'MAAS_REMOTE_REJECTED', exitCode: 5, message: expect.stringContaining('503 (UNAVAILABLE: busy)') });
    expect(calls).toBe(4);
    expect(waits).toEqual([200, 400, 800]);
  });
});
