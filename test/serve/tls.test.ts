/**
 * TLS on both transports with certificates made here by openssl: the handshake, plain HTTP on
 * the TLS port, client certificates (mTLS), and a certificate rotated while serving.
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { type RequestOptions, request as httpsRequest } from 'node:https';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import { setTimeout as sleep } from 'node:timers/promises';
import * as grpc from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { makeCa, makeCert, read } from '../helpers/certs.js';
import { grpcClient, reflectedServices, statusOf } from '../helpers/grpc.js';
import { makeRegistry, type TestRegistry } from '../helpers/registry.js';
import { runCli, spawnCli } from '../helpers/run-cli.js';
import { type ServeOverrides, serveRegistry } from '../helpers/serve.js';

interface Answer {
  status: number | undefined;
  body: string;
  issuer: string | undefined;
  error: string | undefined;
}

/** One HTTPS GET with the given trust and client certificate; what came back, or the error. */
function httpsGet(url: string, options: RequestOptions): Promise<Answer> {
  return new Promise((resolve) => {
    const req = httpsRequest(url, { ...options, agent: false }, (res) => {
      let body = '';
      const issuer = (res.socket as TLSSocket).getPeerCertificate().issuer?.CN as string | undefined;
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode, body, issuer, error: undefined }));
    });
    req.on('error', (error) => resolve({ status: undefined, body: '', issuer: undefined, error: error.message }));
    req.end();
  });
}

function plainGet(url: string): Promise<Answer> {
  return new Promise((resolve) => {
    const req = httpRequest(url.replace('https:', 'http:'), { agent: false, timeout: 5000 }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode, body: '', issuer: undefined, error: undefined }));
    });
    req.on('error', (error) => resolve({ status: undefined, body: '', issuer: undefined, error: error.message }));
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.end();
  });
}

const INFER = { model_name: 'mlp', inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 4] }], raw_input_contents: [Buffer.from(Float32Array.from([1, 2, 3, 4]).buffer)] };

async function setup(mutual: boolean, overrides: ServeOverrides = {}) {
  const reg: TestRegistry = await makeRegistry();
  expect((await reg.cli('register', reg.fixture('mlp.onnx'))).exitCode).toBe(0);
  const certs = join(reg.home, 'certs');
  const ca = makeCa(certs, 'ca-one');
  const server = makeCert(certs, 'server', ca);
  const clientCa = makeCa(certs, 'clients-ca');
  const client = makeCert(certs, 'client', clientCa, 'client');
  const served = await serveRegistry(reg, { grpcPort: 0, tls: { cert: server.cert, key: server.key, ...(mutual ? { ca: clientCa.cert } : {}) }, tlsPollMs: 100, ...overrides });
  return { reg, certs, ca, server, client, clientCa, served };
}

// .ci/run installs Debian's openssl; without it a plain `npm test` skips these.
const openssl = spawnSync('openssl', ['version'], { stdio: 'ignore' }).status === 0;
if (!openssl && !process.env.MAAS_REQUIRE_TOOLS) console.warn('SKIPPED: the TLS tests (apt-get install openssl to run them)');

describe.skipIf(!openssl && !process.env.MAAS_REQUIRE_TOOLS)('TLS', () => {
  it('serves REST and gRPC over TLS, and refuses plain HTTP and plaintext gRPC on the TLS ports', async () => {
    const { ca, served } = await setup(false);
    expect(served.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    const ok = await httpsGet(`${served.url}/v2/health/ready`, { ca: read(ca.cert) });
    expect(ok).toMatchObject({ status: 200, issuer: 'ca-one' });
    const untrusted = await httpsGet(`${served.url}/v2/health/ready`, {});
    expect(untrusted.error).toMatch(/self-signed|unable to verify|self signed/i);
    const plain = await plainGet(`${served.url}/v2/health/live`);
    expect(plain.status === undefined || plain.status === 400).toBe(true);
    expect((await httpsGet(`${served.url}/v2/health/live`, { ca: read(ca.cert) })).status).toBe(200); // still serving
    const secure = grpcClient(served.grpc!.address, grpc.credentials.createSsl(read(ca.cert)));
    expect(await statusOf(secure.call('ModelInfer', INFER))).toBe('OK');
    const insecure = grpcClient(served.grpc!.address);
    expect(await statusOf(insecure.call('ServerLive', {}, { deadlineMs: 3000 }))).toMatch(/UNAVAILABLE|DEADLINE_EXCEEDED/);
  });

  it('maas predict --grpc reaches a TLS server by its IP with --tls-ca, and prints no Node warning', async () => {
    const { reg, ca, served } = await setup(false);
    const request = join(reg.home, 'request.json');
    writeFileSync(request, JSON.stringify({ inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 4], data: [1, 2, 3, 4] }] }));
    const predicted = await spawnCli(['predict', 'mlp', '--input', request, '--grpc', served.grpc!.address, '--tls-ca', ca.cert, '--json'], { cwd: reg.work, env: reg.env });
    expect(predicted.exitCode, predicted.stderr).toBe(0);
    expect(predicted.json()).toMatchObject({ model_name: 'mlp', outputs: [{ name: 'output', shape: [1, 3] }] });
    // grpc-js sends the IP as the TLS server name, which Node warns about (DEP0123) once a process.
    expect(predicted.stderr).toBe('');
  });

  it('maas bench and ps reach a TLS server with --tls-ca; a missing CA file is exit 4, not a stack trace', async () => {
    const { reg, ca, served } = await setup(false);
    const bench = await reg.cli('bench', 'mlp@1', '--server', served.url, '--tls-ca', ca.cert, '--batch', '1', '--duration', '200ms', '--json');
    expect(bench.exitCode, bench.stdout + bench.stderr).toBe(0);
    expect(bench.json()).toMatchObject({ mode: 'server', batches: [{ batch: 1, status: 'ok' }] });
    const untrusted = await reg.cli('bench', 'mlp@1', '--server', served.url, '--batch', '1', '--duration', '200ms', '--json');
    expect(untrusted.exitCode).not.toBe(0);
    const ps = await reg.cli('ps', '--server', served.url, '--tls-ca', ca.cert, '--json');
    expect(ps.exitCode, ps.stdout).toBe(0);
    for (const command of [['bench', 'mlp@1', '--server', served.url], ['ps', '--server', served.url]]) {
      const missing = await reg.cli(...command, '--tls-ca', join(reg.home, 'nope.pem'), '--json');
      expect(missing.exitCode).toBe(4);
      expect(missing.json().error).toMatchObject({ code: 'MAAS_FILE_NOT_FOUND', message: expect.stringContaining('--tls-ca') });
    }
    expect((await reg.cli('bench', 'mlp@1', '--tls-ca', ca.cert, '--json')).exitCode).toBe(2);
  });

  it('maas bench, ps and predict --grpc present a client certificate to an mTLS server with --tls-cert/--tls-key', async () => {
    const { reg, ca, client, served } = await setup(true);
    const trust = ['--tls-ca', ca.cert];
    const mine = ['--tls-cert', client.cert, '--tls-key', client.key];
    const bench = await reg.cli('bench', 'mlp@1', '--server', served.url, ...trust, ...mine, '--batch', '1', '--duration', '200ms', '--json');
    expect(bench.exitCode, bench.stdout + bench.stderr).toBe(0);
    expect((await reg.cli('ps', '--server', served.url, ...trust, ...mine, '--json')).exitCode).toBe(0);
    const without = await reg.cli('ps', '--server', served.url, ...trust, '--json');
    expect(without.exitCode).toBe(5);
    expect(without.json().error).toMatchObject({ code: 'MAAS_REMOTE_UNAUTHORIZED', message: `${served.url} asks for a client certificate (it runs with --tls-ca), and none was sent` });
    expect(without.json().error.hint).toContain('Pass --tls-cert and --tls-key');
    const benchWithout = await reg.cli('bench', 'mlp@1', '--server', served.url, ...trust, '--batch', '1', '--duration', '200ms', '--json');
    expect(benchWithout.exitCode).toBe(5);
    expect(benchWithout.json().error).toMatchObject({ code: 'MAAS_REMOTE_UNAUTHORIZED', message: `${new URL(served.url).origin} asks for a client certificate (it runs with --tls-ca), and none was sent` });
    expect((await reg.cli('ps', '--server', served.url, ...trust, '--tls-cert', client.cert, '--json')).exitCode).toBe(2);
    const request = join(reg.home, 'request.json');
    writeFileSync(request, JSON.stringify({ inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 4], data: [1, 2, 3, 4] }] }));
    const predicted = await reg.cli('predict', 'mlp', '--input', request, '--grpc', served.grpc!.address, ...trust, ...mine, '--json');
    expect(predicted.exitCode, predicted.stdout).toBe(0);
    const predictWithout = await reg.cli('predict', 'mlp', '--input', request, '--grpc', served.grpc!.address, ...trust, '--json');
    expect(predictWithout.exitCode).toBe(5);
    expect(predictWithout.json().error.message).toBe(`${served.grpc!.address} over gRPC asks for a client certificate (it runs with --tls-ca), and none was sent`);
    // A certificate another CA signed: the server drops the connection, and the hint says why it may have.
    const stranger = makeCert(join(reg.home, 'certs'), 'stranger', makeCa(join(reg.home, 'certs'), 'other-ca'), 'client');
    for (const command of [['ps', '--server', served.url], ['predict', 'mlp', '--input', request, '--grpc', served.grpc!.address]]) {
      const dropped = await reg.cli(...command, ...trust, '--tls-cert', stranger.cert, '--tls-key', stranger.key, '--json');
      expect(dropped.exitCode, command[0]).toBe(5);
      expect(dropped.json().error.hint, command[0]).toContain("Check that --tls-cert was signed by the server's --tls-ca");
    }
    // Files that cannot work are said at once (exit 3), not as a handshake failure or a stack trace.
    const other = makeCert(join(reg.home, 'certs'), 'other', ca, 'client');
    writeFileSync(join(reg.home, 'not-pem.txt'), 'not a certificate');
    for (const files of [['--tls-cert', client.cert, '--tls-key', other.key], ['--tls-ca', join(reg.home, 'not-pem.txt')]]) {
      for (const command of [['ps', '--server', served.url], ['predict', 'mlp', '--input', request, '--grpc', served.grpc!.address]]) {
        const args = files[0] === '--tls-ca' ? [...command, ...files, ...mine] : [...command, ...trust, ...files];
        const refused = await reg.cli(...args, '--json');
        expect(refused.exitCode, `${args.join(' ')}: ${refused.stdout}${refused.stderr}`).toBe(3);
        expect(refused.json().error.message).toContain('the TLS files do not work together');
      }
    }
  });

  it('with --tls-ca, refuses clients without a certificate that CA signed (mTLS), on both transports', async () => {
    const { ca, client, served, certs } = await setup(true);
    const trust = { ca: read(ca.cert) };
    expect((await httpsGet(`${served.url}/v2/health/ready`, trust)).status).toBeUndefined();
    const stranger = makeCert(certs, 'stranger', makeCa(certs, 'other-ca'), 'client');
    expect((await httpsGet(`${served.url}/v2/health/ready`, { ...trust, cert: read(stranger.cert), key: read(stranger.key) })).status).toBeUndefined();
    expect((await httpsGet(`${served.url}/v2/health/ready`, { ...trust, cert: read(client.cert), key: read(client.key) })).status).toBe(200);
    const anonymous = grpcClient(served.grpc!.address, grpc.credentials.createSsl(read(ca.cert)));
    expect(await statusOf(anonymous.call('ModelInfer', INFER, { deadlineMs: 3000 }))).toMatch(/UNAVAILABLE|DEADLINE_EXCEEDED/);
    const known = grpcClient(served.grpc!.address, grpc.credentials.createSsl(read(ca.cert), read(client.key), read(client.cert)));
    expect(await statusOf(known.call('ModelInfer', INFER))).toBe('OK');
    // Reflection is on the same server: no way round the client certificate.
    expect(await statusOf(reflectedServices(served.grpc!.address, 'v1', grpc.credentials.createSsl(read(ca.cert))))).toMatch(/UNAVAILABLE|DEADLINE_EXCEEDED/);
    expect(await reflectedServices(served.grpc!.address, 'v1', grpc.credentials.createSsl(read(ca.cert), read(client.key), read(client.cert)))).toEqual(['inference.GRPCInferenceService', 'grpc.health.v1.Health']);
  });

  it('answers probes on --health-port over plain HTTP with no token, while the main ports need a client certificate', async () => {
    // What a kubelet's httpGet probe can do under mTLS: no certificate, no token, plain HTTP.
    const { ca, served } = await setup(true, { healthPort: 0, token: 'sekrit' });
    expect(served.health!.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(served.health!.port).not.toBe(served.port);
    const live = await fetch(`${served.health!.url}/v2/health/live`);
    expect([live.status, await live.json()]).toEqual([200, { live: true }]);
    const ready = await fetch(`${served.health!.url}/v2/health/ready?probe=1`);
    expect([ready.status, await ready.json(), ready.headers.get('cache-control')]).toEqual([200, { ready: true }, 'no-store']);
    const head = await fetch(`${served.health!.url}/v2/health/ready`, { method: 'HEAD' });
    expect([head.status, (await head.arrayBuffer()).byteLength]).toEqual([200, 0]);
    // Nothing else is reachable this way: not the API, not metadata, not a POST.
    for (const path of ['/v2', '/v2/models/mlp', '/metrics', '/', '/v2/health/live/../../models/mlp']) {
      const other = await fetch(served.health!.url + path);
      expect(other.status, path).toBe(404);
      expect(((await other.json()) as { error: string }).error).toContain('this port answers only /v2/health/live and /v2/health/ready');
    }
    const post = await fetch(`${served.health!.url}/v2/health/ready`, { method: 'POST', body: 'x'.repeat(1 << 20) });
    expect([post.status, post.headers.get('allow')]).toEqual([405, 'GET, HEAD']);
    // The main port still refuses a client with no certificate.
    expect((await httpsGet(`${served.url}/v2/health/live`, { ca: read(ca.cert) })).status).toBeUndefined();
    await served.close();
    expect((await plainGet(`${served.health!.url}/v2/health/live`)).error).toMatch(/ECONNREFUSED/);
  });

  it('picks up a rotated certificate without a restart, and keeps the old one while the new pair is broken', async () => {
    const { certs, ca, server, served } = await setup(false);
    const next = makeCa(certs, 'ca-two');
    const rotated = makeCert(certs, 'server-two', next);
    // Half a rotation: the new certificate, the old key. Not used; the old pair still serves.
    copyFileSync(rotated.cert, server.cert);
    await sleep(400);
    expect(await httpsGet(`${served.url}/v2/health/live`, { ca: read(ca.cert) })).toMatchObject({ status: 200, issuer: 'ca-one' });
    expect(served.logs.join('\n')).toContain('not used yet');
    copyFileSync(rotated.key, server.key);
    let answer: Answer | undefined;
    for (let i = 0; i < 50 && answer?.issuer !== 'ca-two'; i++) {
      await sleep(100);
      answer = await httpsGet(`${served.url}/v2/health/live`, { ca: read(next.cert) });
    }
    expect(answer).toMatchObject({ status: 200, issuer: 'ca-two' });
    const grpcNew = grpcClient(served.grpc!.address, grpc.credentials.createSsl(read(next.cert)));
    expect(await statusOf(grpcNew.call('ModelInfer', INFER))).toBe('OK');
    expect(served.logs.join('\n')).toContain('new handshakes use them');
  });

  it('refuses to start on TLS files that do not work together, with the fix (exit 3), and half a flag pair (exit 2)', async () => {
    const reg = await makeRegistry();
    const certs = join(reg.home, 'certs');
    const ca = makeCa(certs, 'ca');
    const server = makeCert(certs, 'server', ca);
    const other = makeCert(certs, 'other', ca);
    writeFileSync(join(certs, 'junk.pem'), 'not a certificate');
    const mismatched = await runCli(['serve', '--port', '0', '--tls-cert', server.cert, '--tls-key', other.key], { cwd: reg.dir, env: reg.env });
    expect(mismatched.exitCode).toBe(3);
    expect(mismatched.stderr).toContain('do not work together');
    const junk = await runCli(['serve', '--port', '0', '--tls-cert', join(certs, 'junk.pem'), '--tls-key', server.key], { cwd: reg.dir, env: reg.env });
    expect(junk.exitCode).toBe(3);
    const missing = await runCli(['serve', '--port', '0', '--tls-cert', join(certs, 'nope.pem'), '--tls-key', server.key], { cwd: reg.dir, env: reg.env });
    expect(missing.exitCode).toBe(3);
    expect(missing.stderr).toContain('does not exist');
    // A CA file OpenSSL would take with no certificate in it: every client refused, nothing logged.
    const junkCa = await runCli(['serve', '--port', '0', '--tls-cert', server.cert, '--tls-key', server.key, '--tls-ca', join(certs, 'junk.pem')], { cwd: reg.dir, env: reg.env });
    expect(junkCa.exitCode).toBe(3);
    expect(junkCa.stderr).toContain('--tls-ca holds no PEM certificate');
    const half = await runCli(['serve', '--port', '0', '--tls-cert', server.cert], { cwd: reg.dir, env: reg.env });
    expect(half.exitCode).toBe(2);
  });
});
