import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { largeMatmul, writeModel } from '../../fixtures/models.js';
import { startFaultProxy } from '../helpers/fault-proxy.js';
import { startTokenServer } from '../helpers/token-server.js';
import { HAVE_REGISTRY, REQUIRE_TOOLS, skopeo, startOciRegistry, type TestOciRegistry } from '../helpers/oci-registry.js';
import { makeRegistry, type TestRegistry } from '../helpers/registry.js';
import { BIN, runCli } from '../helpers/run-cli.js';

const withCreds = (reg: TestRegistry, oci: TestOciRegistry, password = oci.password) => ({ ...reg.env, MAAS_REGISTRY_USERNAME: oci.username, MAAS_REGISTRY_PASSWORD: password });

async function registered(): Promise<TestRegistry> {
  const reg = await makeRegistry();
  expect((await reg.cli('register', reg.fixture('mlp.onnx'), '--alias', 'prod')).exitCode).toBe(0);
  return reg;
}

describe('push and pull through an OCI image layout', () => {
  it('writes a layout skopeo reads, and pulls it back byte for byte', async () => {
    const reg = await registered();
    const layout = join(reg.work, 'export');
    const pushed = await reg.cli('push', 'mlp@prod', `oci-layout:${layout}`, '--alias', '--json');
    expect(pushed.exitCode, pushed.stdout).toBe(0);
    expect(pushed.json()).toMatchObject({ ref: 'mlp@1', tags: ['1', 'prod'], blobs: 2, blobsSkipped: 0 });
    const manifest = readFileSync(join(reg.dir, 'models/mlp/1/manifest.json'));
    if (HAVE_REGISTRY) {
      expect(await skopeo(['inspect', '--raw', `oci:${layout}:prod`], reg.home)).toBe(manifest.toString());
      await skopeo(['copy', `oci:${layout}:1`, `oci:${join(reg.work, 'copy')}:1`], reg.home);
    }
    const again = await reg.cli('push', 'mlp@1', `oci-layout:${layout}`, '--json');
    expect(again.json()).toMatchObject({ blobsSkipped: 2, bytesSent: 0 });

    const other = await makeRegistry();
    const pulled = await other.cli('pull', `oci-layout:${layout}:1`, '--json');
    expect(pulled.exitCode, pulled.stdout).toBe(0);
    expect(pulled.json()).toMatchObject({ status: 'imported', name: 'mlp', version: 1, manifestDigest: pushed.json().manifestDigest });
    expect(readFileSync(join(other.dir, 'models/mlp/1/manifest.json'))).toEqual(manifest);
    expect((await other.cli('verify')).exitCode).toBe(0);
    expect((await other.cli('show', 'mlp@1', '--json')).json().files[0].present).toBe(true);
    const repeat = await other.cli('pull', `oci-layout:${layout}:prod`);
    expect(repeat.stdout).toContain('is already here');
    // A blob damaged here is not trusted by a later pull: it is fetched again.
    const stored = join(other.dir, 'blobs/sha256', JSON.parse(manifest.toString()).layers[0].digest.slice(7));
    chmodSync(stored, 0o644);
    const bytes = readFileSync(stored);
    bytes[10] = bytes[10]! ^ 0xff;
    writeFileSync(stored, bytes);
    expect((await other.cli('verify')).exitCode).toBe(8);
    const repaired = await other.cli('pull', `oci-layout:${layout}:1`, '--name', 'mlp-again', '--json');
    expect(repaired.json()).toMatchObject({ status: 'imported', blobsFetched: 1 });
    expect((await other.cli('verify')).exitCode).toBe(0);
  });

  it('never moves a version tag to another model: a shared layout refuses the second model (exit 6)', async () => {
    const reg = await registered();
    expect((await reg.cli('register', reg.fixture('multi_io.onnx'), '--name', 'ranker')).exitCode).toBe(0);
    const layout = join(reg.work, 'shared');
    const first = await reg.cli('push', 'mlp@1', `oci-layout:${layout}`, '--json');
    expect(first.exitCode).toBe(0);
    const clash = await reg.cli('push', 'ranker@1', `oci-layout:${layout}`, '--json');
    expect(clash.exitCode).toBe(6);
    expect(clash.json().error).toMatchObject({ code: 'MAAS_VERSION_CONFLICT', message: expect.stringContaining('version tags are not moved'), hint: expect.stringContaining(`oci-layout:${layout}/ranker`) });
    const other = await makeRegistry();
    expect((await other.cli('pull', `oci-layout:${layout}:1`, '--json')).json()).toMatchObject({ name: 'mlp', manifestDigest: first.json().manifestDigest });
    expect((await reg.cli('push', 'mlp@1', `oci-layout:${layout}`)).exitCode).toBe(0); // the same bytes again: fine
    expect((await reg.cli('push', 'ranker@1', `oci-layout:${layout}/ranker`)).exitCode).toBe(0);
  });

  it("refuses a number tag that is not the version's own: mlp@1 as :2 would make :2 name version 1 (exit 2)", async () => {
    const reg = await registered();
    expect((await reg.cli('register', reg.fixture('multi_io.onnx'), '--name', 'mlp')).exitCode).toBe(0);
    const layout = join(reg.work, 'numbers');
    expect((await reg.cli('push', 'mlp@2', `oci-layout:${layout}`)).exitCode).toBe(0);
    const moved = await reg.cli('push', 'mlp@1', `oci-layout:${layout}:2`, '--json');
    expect(moved.exitCode).toBe(2);
    expect(moved.json().error).toMatchObject({ code: 'MAAS_USAGE', message: expect.stringContaining("is version 2's tag, not mlp@1's"), hint: expect.stringContaining('Push mlp@2 there') });
    const fresh = await reg.cli('push', 'mlp@1', `oci-layout:${layout}:7`);
    expect(fresh.exitCode).toBe(2);
    expect(JSON.parse(readFileSync(join(layout, 'index.json'), 'utf8')).manifests).toHaveLength(1);
    expect((await reg.cli('push', 'mlp@1', `oci-layout:${layout}:1`)).exitCode).toBe(0);
    expect((await reg.cli('push', 'mlp@1', `oci-layout:${layout}:stable`)).exitCode).toBe(0);
  });

  it("takes maas.yaml's defaults.remote as a namespace: each model to a repository of its name", async () => {
    const reg = await registered();
    expect((await reg.cli('register', reg.fixture('multi_io.onnx'), '--name', 'ranker')).exitCode).toBe(0);
    const root = join(reg.work, 'models-layout');
    const config = join(reg.dir, 'maas.yaml');
    writeFileSync(config, readFileSync(config, 'utf8').replace(/remote: null/, `remote: "oci-layout:${root}"`));
    for (const name of ['mlp', 'ranker']) {
      const pushed = await reg.cli('push', `${name}@1`, '--json');
      expect(pushed.exitCode, pushed.stdout).toBe(0);
      expect(pushed.json()).toMatchObject({ remote: `oci-layout:${root}/${name}`, tags: ['1'] });
    }
  });

  it('refuses a tampered blob on pull (exit 5) and writes nothing', async () => {
    const reg = await registered();
    const layout = join(reg.work, 'export');
    await reg.cli('push', 'mlp@1', `oci-layout:${layout}`);
    const manifest = JSON.parse(readFileSync(join(reg.dir, 'models/mlp/1/manifest.json'), 'utf8'));
    const blob = join(layout, 'blobs/sha256', manifest.layers[0].digest.slice(7));
    const bytes = readFileSync(blob);
    bytes[100] = bytes[100]! ^ 0xff;
    chmodSync(blob, 0o644);
    writeFileSync(blob, bytes);
    const other = await makeRegistry();
    const r = await other.cli('pull', `oci-layout:${layout}:1`, '--json');
    expect(r.exitCode).toBe(5);
    expect(r.json().error).toMatchObject({ code: 'MAAS_DIGEST_MISMATCH', hint: expect.stringContaining('nothing was written') });
    expect(existsSync(join(other.dir, 'models'))).toBe(false);
    expect(existsSync(join(other.dir, 'blobs/sha256', manifest.layers[0].digest.slice(7)))).toBe(false);
  });
});

describe.skipIf(!HAVE_REGISTRY && !REQUIRE_TOOLS)('push and pull through a real registry (docker-registry on loopback)', () => {
  it('pushes what skopeo reads back, skips existing blobs, pulls into another registry', async () => {
    const oci = await startOciRegistry();
    const reg = await registered();
    const target = `oci://${oci.host}/team/mlp`;
    const first = await runCli(['push', 'mlp@1', target, '--alias', '--json'], { cwd: reg.dir, env: withCreds(reg, oci) });
    expect(first.exitCode, first.stdout).toBe(0);
    expect(first.json()).toMatchObject({ tags: ['1', 'prod'], blobs: 2, blobsSkipped: 0, bytesSent: expect.any(Number) });
    const manifest = readFileSync(join(reg.dir, 'models/mlp/1/manifest.json'), 'utf8');
    const creds = `${oci.username}:${oci.password}`;
    expect(await skopeo(['inspect', '--raw', '--tls-verify=false', '--creds', creds, `docker://${oci.host}/team/mlp:prod`], reg.home)).toBe(manifest);
    expect(JSON.parse(await skopeo(['list-tags', '--tls-verify=false', '--creds', creds, `docker://${oci.host}/team/mlp`], reg.home)).Tags.sort()).toEqual(['1', 'prod']);
    await skopeo(['copy', '--src-tls-verify=false', '--src-creds', creds, `docker://${oci.host}/team/mlp:1`, `oci:${join(reg.work, 'fromreg')}:1`], reg.home);

    const second = await runCli(['push', 'mlp@1', target, '--json'], { cwd: reg.dir, env: withCreds(reg, oci) });
    expect(second.json()).toMatchObject({ blobsSkipped: 2, bytesSent: 0 });

    const other = await makeRegistry();
    const pulled = await runCli(['pull', `${target}:1`, '--json'], { cwd: other.dir, env: withCreds(other, oci) });
    expect(pulled.exitCode, pulled.stdout).toBe(0);
    expect(pulled.json()).toMatchObject({ status: 'imported', name: 'mlp', version: 1, blobsFetched: 1 });
    expect(readFileSync(join(other.dir, 'models/mlp/1/manifest.json'), 'utf8')).toBe(manifest);
    expect((await other.cli('verify')).exitCode).toBe(0);
  });

  it('refuses to move a version tag of a repository several models share (exit 6), before sending a blob', async () => {
    const oci = await startOciRegistry();
    const reg = await registered();
    expect((await reg.cli('register', reg.fixture('multi_io.onnx'), '--name', 'ranker')).exitCode).toBe(0);
    const shared = `oci://${oci.host}/acme/models`;
    const first = await runCli(['push', 'mlp@1', shared, '--json'], { cwd: reg.dir, env: withCreds(reg, oci) });
    expect(first.exitCode, first.stdout).toBe(0);
    const clash = await runCli(['push', 'ranker@1', shared, '--json'], { cwd: reg.dir, env: withCreds(reg, oci) });
    expect(clash.exitCode, clash.stdout).toBe(6);
    expect(clash.json().error).toMatchObject({ code: 'MAAS_VERSION_CONFLICT', hint: expect.stringContaining(`${shared}/ranker`) });
    const creds = `${oci.username}:${oci.password}`;
    const manifest = JSON.parse(await skopeo(['inspect', '--raw', '--tls-verify=false', '--creds', creds, `docker://${oci.host}/acme/models:1`], reg.home));
    expect(manifest).toEqual(JSON.parse(readFileSync(join(reg.dir, 'models/mlp/1/manifest.json'), 'utf8')));
    const again = await runCli(['push', 'mlp@1', shared, '--json'], { cwd: reg.dir, env: withCreds(reg, oci) });
    expect(again.exitCode).toBe(0);
  });

  it('refuses to push a blob damaged in the store (exit 8), leaving the registry no upload session', async () => {
    const oci = await startOciRegistry();
    const reg = await registered();
    const layer = JSON.parse(readFileSync(join(reg.dir, 'models/mlp/1/manifest.json'), 'utf8')).layers[0].digest as string;
    const stored = join(reg.dir, 'blobs/sha256', layer.slice(7));
    chmodSync(stored, 0o644);
    const bytes = readFileSync(stored);
    bytes[10] = bytes[10]! ^ 0xff;
    writeFileSync(stored, bytes);
    const pushed = await runCli(['push', 'mlp@1', `oci://${oci.host}/team/mlp`, '--json'], { cwd: reg.dir, env: withCreds(reg, oci) });
    expect(pushed.exitCode, pushed.stdout).toBe(8);
    expect(pushed.json().error).toMatchObject({ code: 'MAAS_VERIFY_FAILED', message: expect.stringContaining(`blob ${layer} is corrupt`), hint: expect.stringContaining('maas verify') });
    // A live session keeps `data` and `startedat`; a cancelled one, at most distribution's empty hash state.
    const uploads = join(oci.dir, 'data/docker/registry/v2/repositories/team/mlp/_uploads');
    const left = existsSync(uploads) ? readdirSync(uploads, { recursive: true }).map(String) : [];
    expect(left.filter((f) => /(^|\/)(data|startedat)$/.test(f))).toEqual([]);
    const creds = `${oci.username}:${oci.password}`;
    await expect(skopeo(['inspect', '--raw', '--tls-verify=false', '--creds', creds, `docker://${oci.host}/team/mlp:1`], reg.home)).rejects.toThrow();
    // A blob cut short is damage too (exit 8), not a blob missing from the store (exit 4).
    writeFileSync(stored, bytes.subarray(0, 100));
    const truncated = await runCli(['push', 'mlp@1', `oci://${oci.host}/team/mlp`, '--json'], { cwd: reg.dir, env: withCreds(reg, oci) });
    expect(truncated.exitCode, truncated.stdout).toBe(8);
    expect(truncated.json().error.code).toBe('MAAS_VERIFY_FAILED');
  });

  it('sends a large blob in chunks and reads it back intact', async () => {
    const oci = await startOciRegistry();
    const reg = await makeRegistry();
    expect((await reg.cli('register', writeModel(reg.work, 'big.onnx', largeMatmul(40 << 20, 3)), '--name', 'big')).exitCode).toBe(0);
    const pushed = await runCli(['push', 'big@1', `oci://${oci.host}/big`, '--json'], { cwd: reg.dir, env: withCreds(reg, oci) });
    expect(pushed.exitCode, pushed.stdout).toBe(0);
    const other = await makeRegistry();
    const pulled = await runCli(['pull', `oci://${oci.host}/big:1`, '--json'], { cwd: other.dir, env: withCreds(other, oci) });
    expect(pulled.exitCode, pulled.stdout).toBe(0);
    expect(pulled.json().bytesFetched).toBeGreaterThan(32 << 20); // three 16 MiB chunks
    expect((await other.cli('verify', '--json')).json()).toMatchObject({ ok: true });
  });

  it('fails with exit 5 and a clear message on a wrong password, without printing it', async () => {
    const oci = await startOciRegistry();
    const reg = await registered();
    const r = await runCli(['push', 'mlp@1', `oci://${oci.host}/team/mlp`], { cwd: reg.dir, env: withCreds(reg, oci, 'not-the-password') });
    expect(r.exitCode).toBe(5);
    expect(r.stderr).toContain('access denied');
    expect(r.stderr).toContain('MAAS_REGISTRY_USERNAME');
    expect(r.stderr + r.stdout).not.toContain('not-the-password');
    const anonymous = await runCli(['push', 'mlp@1', `oci://${oci.host}/team/mlp`, '--json'], { cwd: reg.dir, env: reg.env });
    expect(anonymous.exitCode).toBe(5);
    expect(anonymous.json().error.code).toBe('MAAS_REMOTE_UNAUTHORIZED');
  });

  it('reads credentials from the docker config.json', async () => {
    const oci = await startOciRegistry();
    const reg = await registered();
    const dockerDir = join(reg.home, 'docker');
    const { mkdirSync } = await import('node:fs');
    mkdirSync(dockerDir);
    writeFileSync(join(dockerDir, 'config.json'), JSON.stringify({ auths: { [oci.host]: { auth: Buffer.from(`${oci.username}:${oci.password}`).toString('base64') } } }));
    const r = await runCli(['push', 'mlp@1', `oci://${oci.host}/team/mlp`], { cwd: reg.dir, env: { ...reg.env, DOCKER_CONFIG: dockerDir } });
    expect(r.exitCode, r.stderr).toBe(0);
    rmSync(dockerDir, { recursive: true });
  });

  it('asks docker credential helpers: the host\'s credHelpers entry first, then credsStore, then auths', async () => {
    const oci = await startOciRegistry();
    const reg = await registered();
    const dockerDir = join(reg.home, 'docker');
    const bin = join(reg.home, 'bin');
    mkdirSync(dockerDir);
    mkdirSync(bin);
    // A real helper program on PATH, speaking the docker-credential protocol: `get`, the host on stdin.
    const helper = (name: string, username: string, password: string) => {
      const path = join(bin, `docker-credential-${name}`);
      writeFileSync(path, [
        '#!/bin/sh',
        `[ "$1" = get ] || exit 2`,
        'read host',
        `[ "$host" = "${oci.host}" ] || { echo "credentials not found in native keychain"; exit 1; }`,
        `printf '{"ServerURL":"%s","Username":"${username}","Secret":"${password}"}' "$host"`,
        '',
      ].join('\n'));
      chmodSync(path, 0o755);
    };
    helper('good', oci.username, oci.password);
    helper('wrong', oci.username, 'not-the-password');
    helper('empty', '', '');
    const env = { ...reg.env, DOCKER_CONFIG: dockerDir, PATH: `${bin}:${reg.env.PATH}` };
    const push = async (config: object) => {
      writeFileSync(join(dockerDir, 'config.json'), JSON.stringify(config));
      return runCli(['push', 'mlp@1', `oci://${oci.host}/team/mlp`, '--json'], { cwd: reg.dir, env });
    };
    const auths = (password: string) => ({ [oci.host]: { auth: Buffer.from(`${oci.username}:${password}`).toString('base64') } });

    expect((await push({ credHelpers: { [oci.host]: 'good' }, credsStore: 'wrong', auths: auths('bad') })).exitCode).toBe(0);
    expect((await push({ credsStore: 'good', auths: auths('bad') })).exitCode).toBe(0);
    expect((await push({ credHelpers: { [oci.host]: 'wrong' }, credsStore: 'good' })).json().error.code).toBe('MAAS_REMOTE_UNAUTHORIZED');
    // A helper that holds nothing for the host hands over to the next source.
    expect((await push({ credHelpers: { 'other.example': 'wrong' }, credsStore: 'empty', auths: auths(oci.password) })).exitCode).toBe(0);
    const missing = await push({ credsStore: 'not-installed' });
    expect(missing.exitCode).toBe(3);
    expect(missing.json().error.message).toContain('docker-credential-not-installed');
  });

  it('logs in once (checked, stored in the docker config), then pushes without variables', async () => {
    const oci = await startOciRegistry();
    const reg = await registered();
    const env = { ...reg.env, DOCKER_CONFIG: join(reg.home, 'docker') };
    expect((await runCli(['login', oci.host, '-u', oci.username, '--password-stdin'], { cwd: reg.dir, env, input: 'nope\n' })).exitCode).toBe(5);
    expect(existsSync(join(reg.home, 'docker/config.json'))).toBe(false);
    const r = await runCli(['login', oci.host, '-u', oci.username, '--password-stdin'], { cwd: reg.dir, env, input: `${oci.password}\n` });
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).not.toContain(oci.password);
    expect((await runCli(['push', 'mlp@1', `oci://${oci.host}/team/mlp`], { cwd: reg.dir, env })).exitCode).toBe(0);
  });

  it('says which tag is missing', async () => {
    const oci = await startOciRegistry();
    const reg = await registered();
    await runCli(['push', 'mlp@1', `oci://${oci.host}/team/mlp`], { cwd: reg.dir, env: withCreds(reg, oci) });
    const r = await runCli(['pull', `oci://${oci.host}/team/mlp:9`], { cwd: reg.dir, env: withCreds(reg, oci) });
    expect(r.exitCode).toBe(5);
    expect(r.stderr).toContain('MANIFEST_UNKNOWN');
  });

  it('pulls a manifest pinned by digest (REPO@sha256:…, REPO:TAG@sha256:…), from a registry and from a layout', async () => {
    const oci = await startOciRegistry();
    const reg = await registered();
    const pushed = await runCli(['push', 'mlp@1', `oci://${oci.host}/team/mlp`, '--json'], { cwd: reg.dir, env: withCreds(reg, oci) });
    const digest: string = pushed.json().manifestDigest;
    const layout = join(reg.work, 'pinned');
    expect((await reg.cli('push', 'mlp@1', `oci-layout:${layout}`)).exitCode).toBe(0);
    for (const remote of [`oci://${oci.host}/team/mlp@${digest}`, `oci://${oci.host}/team/mlp:1@${digest}`, `oci-layout:${layout}@${digest}`]) {
      const other = await makeRegistry();
      const pulled = await runCli(['pull', remote, '--name', 'mlp', '--json'], { cwd: other.dir, env: withCreds(other, oci) });
      expect(pulled.exitCode, `${remote}: ${pulled.stdout}`).toBe(0);
      expect(pulled.json()).toMatchObject({ name: 'mlp', version: 1, manifestDigest: digest });
    }
    const absent = `sha256:${'0'.repeat(64)}`;
    const missing = await runCli(['pull', `oci://${oci.host}/team/mlp@${absent}`], { cwd: reg.dir, env: withCreds(reg, oci) });
    expect(missing.exitCode).toBe(5);
    expect(missing.stderr).toContain('MANIFEST_UNKNOWN');
    const notInLayout = await reg.cli('pull', `oci-layout:${layout}@${absent}`, '--json');
    expect(notInLayout.json().error).toMatchObject({ code: 'MAAS_REMOTE_NOT_FOUND', message: expect.stringContaining(`no manifest '${absent}'`) });
    const malformed = await reg.cli('pull', `oci://${oci.host}/team/mlp@sha256:abc`, '--json');
    expect(malformed.exitCode).toBe(2);
    expect(malformed.json().error.message).toContain('is not a digest');
    const pushToDigest = await reg.cli('push', 'mlp@1', `oci-layout:${layout}@${digest}`, '--json');
    expect(pushToDigest.exitCode).toBe(2);
    expect(pushToDigest.json().error.message).toContain('a push names tags, not a digest');
  });
});

describe.skipIf(!HAVE_REGISTRY && !REQUIRE_TOOLS)('transient failures between maas and the registry', () => {
  it('retries a registry that answers 500 twice, then succeeds', async () => {
    const oci = await startOciRegistry();
    let failures = 0;
    const proxy = await startFaultProxy(oci.host, (req) => (req.method === 'PUT' && req.url?.includes('/manifests/') && failures++ < 2 ? 'fail-500' : 'pass'));
    const reg = await registered();
    const r = await runCli(['push', 'mlp@1', `oci://${proxy.host}/team/mlp`, '--json'], { cwd: reg.dir, env: withCreds(reg, oci) });
    expect(r.exitCode, r.stdout).toBe(0);
    expect(proxy.log.filter((l) => l.startsWith('fail-500'))).toHaveLength(2);
    expect(proxy.log.filter((l) => l.includes('PUT /v2/team/mlp/manifests/1'))).toHaveLength(3);
    const manifest = readFileSync(join(reg.dir, 'models/mlp/1/manifest.json'), 'utf8');
    expect(await skopeo(['inspect', '--raw', '--tls-verify=false', '--creds', `${oci.username}:${oci.password}`, `docker://${oci.host}/team/mlp:1`], reg.home)).toBe(manifest);
  });

  it('Ctrl-C during a pull leaves no partial blob in the registry', async () => {
    const oci = await startOciRegistry();
    const reg = await makeRegistry();
    expect((await reg.cli('register', writeModel(reg.work, 'big.onnx', largeMatmul(4 << 20)), '--name', 'big')).exitCode).toBe(0);
    expect((await runCli(['push', 'big@1', `oci://${oci.host}/team/big`], { cwd: reg.dir, env: withCreds(reg, oci) })).exitCode).toBe(0);
    const layer = JSON.parse(readFileSync(join(reg.dir, 'models/big/1/manifest.json'), 'utf8')).layers[0].digest as string;
    const proxy = await startFaultProxy(oci.host, (req) => (req.method === 'GET' && req.url?.includes(`/blobs/${layer}`) ? 'stall-answer' : 'pass'));
    const other = await makeRegistry();
    const child = spawn(process.execPath, [BIN, 'pull', `oci://${proxy.host}/team/big:1`], { cwd: other.dir, env: withCreds(other, oci) });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    const closed = new Promise<string | number | null>((resolve) => child.on('close', (code, signal) => resolve(signal ?? code)));
    const staging = join(other.dir, '.maas/tmp');
    const staged = () => (existsSync(staging) ? readdirSync(staging).filter((f) => f.startsWith('blob-')) : []);
    for (let waited = 0; staged().length === 0 && waited < 20_000; waited += 20) await sleep(20);
    expect(staged()).toHaveLength(1); // half the blob arrived, the rest never will
    child.kill('SIGINT');
    expect(await closed).toBe('SIGINT');
    expect(stderr).toContain('interrupted (SIGINT)');
    expect(staged()).toEqual([]);
    expect((await other.cli('verify', '--json')).json()).toMatchObject({ ok: true });
  });

  it('resumes an upload whose connection was cut halfway through a chunk', async () => {
    const oci = await startOciRegistry();
    let cut = false;
    const proxy = await startFaultProxy(oci.host, (req) => {
      if (req.method === 'PATCH' && !cut && req.headers['content-range']?.startsWith('16777216-')) {
        cut = true;
        return 'cut-body';
      }
      return 'pass';
    });
    const reg = await makeRegistry();
    expect((await reg.cli('register', writeModel(reg.work, 'big.onnx', largeMatmul(40 << 20, 5)), '--name', 'big')).exitCode).toBe(0);
    const r = await runCli(['push', 'big@1', `oci://${proxy.host}/big`, '--json'], { cwd: reg.dir, env: withCreds(reg, oci) });
    expect(r.exitCode, r.stdout).toBe(0);
    expect(proxy.log).toContain('cut-body PATCH /v2/big/blobs/uploads/' + proxy.log.find((l) => l.startsWith('cut-body'))!.split('/uploads/')[1]);
    // It asked the registry where to resume; distribution 2.8 drops a session cut mid-PATCH,
    // so the blob went again from a new session (more than one POST to uploads/).
    expect(proxy.log.some((l) => l.startsWith('pass GET /v2/big/blobs/uploads/'))).toBe(true);
    expect(proxy.log.filter((l) => l === 'pass POST /v2/big/blobs/uploads/').length).toBeGreaterThanOrEqual(3);
    // What the registry holds is the whole, correct blob: pulled and verified elsewhere.
    const other = await makeRegistry();
    const pulled = await runCli(['pull', `oci://${oci.host}/big:1`, '--json'], { cwd: other.dir, env: withCreds(other, oci) });
    expect(pulled.exitCode, pulled.stdout).toBe(0);
    expect((await other.cli('verify', '--json')).json().ok).toBe(true);
  });
});

describe.skipIf(!HAVE_REGISTRY && !REQUIRE_TOOLS)('a registry with token authentication', () => {
  it('follows the Bearer challenge to the token server, pushes, and pulls', async () => {
    const reg = await registered();
    const tokens = await startTokenServer(reg.home, 'ci-user', 'ci-pass-123');
    const oci = await startOciRegistry({
      yaml: `auth: { token: { realm: "${tokens.realm}", service: ${tokens.service}, issuer: ${tokens.issuer}, rootcertbundle: ${tokens.certPath} } }`,
    });
    const pushed = await runCli(['push', 'mlp@1', `oci://${oci.host}/team/mlp`, '--json'], { cwd: reg.dir, env: withCreds(reg, oci) });
    expect(pushed.exitCode, pushed.stdout).toBe(0);
    expect(tokens.requests.flat()).toContain('repository:team/mlp:pull,push');
    const manifest = readFileSync(join(reg.dir, 'models/mlp/1/manifest.json'), 'utf8');
    expect(await skopeo(['inspect', '--raw', '--tls-verify=false', '--creds', `${oci.username}:${oci.password}`, `docker://${oci.host}/team/mlp:1`], reg.home)).toBe(manifest);
    const other = await makeRegistry();
    const pulled = await runCli(['pull', `oci://${oci.host}/team/mlp:1`, '--json'], { cwd: other.dir, env: withCreds(other, oci) });
    expect(pulled.exitCode, pulled.stdout).toBe(0);
    const denied = await runCli(['push', 'mlp@1', `oci://${oci.host}/team/mlp`, '--json'], { cwd: reg.dir, env: withCreds(reg, oci, 'wrong') });
    expect(denied.exitCode).toBe(5);
    expect(denied.json().error).toMatchObject({ code: 'MAAS_REMOTE_UNAUTHORIZED', message: expect.stringContaining('token server refused the credentials') });
  });
});
