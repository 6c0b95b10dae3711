/**
 * Version policies (TF Serving's and Triton's latest / all / specific, plus aliases): each serves
 * exactly its versions over REST and gRPC, through registers and removals while serving.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { mlp, writeModel } from '../../fixtures/models.js';
import { parseVersionPolicy, selectVersions } from '../../src/registry/policy.js';
import { grpcClient } from '../helpers/grpc.js';
import { makeRegistry, type TestRegistry } from '../helpers/registry.js';
import { runCli } from '../helpers/run-cli.js';
import { type ServeOverrides, type TestServer, serveRegistry } from '../helpers/serve.js';

/** mlp@1..3 (different weights), prod → 1, staging → 2. */
async function threeVersions(): Promise<TestRegistry> {
  const reg = await makeRegistry();
  for (let v = 1; v <= 3; v++) {
    const r = await reg.cli('register', writeModel(reg.work, `mlp${v}.onnx`, mlp({ seed: v })), '--name', 'mlp');
    expect(r.exitCode, r.stderr).toBe(0);
  }
  expect((await reg.cli('tag', 'mlp@1', 'prod')).exitCode).toBe(0);
  expect((await reg.cli('tag', 'mlp@2', 'staging')).exitCode).toBe(0);
  return reg;
}

const INFER = { inputs: [{ name: 'input', shape: [1, 4], datatype: 'FP32', data: [1, 2, 3, 4] }] };

/** Which of versions 1..5 and the two aliases answer an infer, and what the metadata lists. */
async function servedSet(server: TestServer): Promise<{ listed: string[]; answering: string[] }> {
  const listed = (await server.get('/v2/models/mlp')).json.versions as string[];
  const answering: string[] = [];
  for (const v of ['1', '2', '3', '4', '5', 'prod', 'staging']) {
    const r = await server.post(`/v2/models/mlp/versions/${v}/infer`, INFER);
    if (r.status === 200) answering.push(v);
    else expect(r.status, `${v}: ${JSON.stringify(r.json)}`).toBe(404);
  }
  return { listed, answering };
}

async function until(check: () => Promise<boolean>, what: string): Promise<void> {
  for (let i = 0; i < 100; i++) {
    if (await check()) return;
    await sleep(100);
  }
  throw new Error(`timed out waiting for ${what}`);
}

describe('version policies', () => {
  it('selects versions as TF Serving and Triton do, aliases included', () => {
    const versions = [1, 2, 3, 5];
    const aliases = { prod: 1, staging: 3, gone: 4 };
    const select = (text: string) => selectVersions(parseVersionPolicy(text), versions, aliases);
    expect(select('latest:1')).toEqual([5]);
    expect(select('latest:2')).toEqual([3, 5]);
    expect(select('latest:9')).toEqual([1, 2, 3, 5]);
    expect(select('all')).toEqual([1, 2, 3, 5]);
    expect(select('specific:1,3,4')).toEqual([1, 3]);
    expect(select('specific:prod,2')).toEqual([1, 2]);
    expect(select('aliases')).toEqual([1, 3]);
    expect(select('latest:1+aliases')).toEqual([1, 3, 5]);
    for (const bad of ['latest', 'latest:0', 'latest:x', 'newest:2', 'all:2', 'specific:', 'specific:1,,2', 'aliases:prod', '']) {
      expect(() => parseVersionPolicy(bad), bad).toThrow(/--version-policy/);
    }
  });

  it.each([
    ['latest:2', { listed: ['2', '3'], answering: ['2', '3', 'staging'] }],
    ['all', { listed: ['1', '2', '3'], answering: ['1', '2', '3', 'prod', 'staging'] }],
    ['specific:1,3', { listed: ['1', '3'], answering: ['1', '3', 'prod'] }],
    ['specific:staging', { listed: ['2'], answering: ['2', 'staging'] }],
    ['aliases', { listed: ['1', '2'], answering: ['1', '2', 'prod', 'staging'] }],
  ])('--version-policy %s serves exactly its versions, over REST and gRPC', async (policy, expected) => {
    const reg = await threeVersions();
    const server = await serveRegistry(reg, { flags: { versionPolicy: parseVersionPolicy(policy) }, grpcPort: 0 });
    expect(await servedSet(server)).toEqual(expected);
    const meta = await grpcClient(server.grpc!.address).call('ModelMetadata', { name: 'mlp' });
    expect(meta.versions).toEqual(expected.listed);
    // The version a request without one gets is the highest served, as is `latest`.
    expect((await server.post('/v2/models/mlp/infer', INFER)).json.model_version).toBe(expected.listed.at(-1));
    expect((await server.post('/v2/models/mlp/versions/latest/infer', INFER)).json.model_version).toBe(expected.listed.at(-1));
  });

  it('serves the newest version and every aliased one by default', async () => {
    const reg = await threeVersions();
    const server = await serveRegistry(reg);
    expect(await servedSet(server)).toEqual({ listed: ['1', '2', '3'], answering: ['1', '2', '3', 'prod', 'staging'] });
  });

  it("takes a model's policy from maas.yaml, where a flag overrides it", async () => {
    const reg = await threeVersions();
    const config = join(reg.dir, 'maas.yaml');
    writeFileSync(config, `${readFileSync(config, 'utf8')}models:\n  mlp:\n    versionPolicy: specific:1\n`);
    expect((await servedSet(await serveRegistry(reg))).listed).toEqual(['1']);
    expect((await servedSet(await serveRegistry(reg, { flags: { versionPolicy: parseVersionPolicy('latest:1') } }))).listed).toEqual(['3']);
    writeFileSync(config, readFileSync(config, 'utf8').replace('specific:1', 'newest:3'));
    const broken = await reg.cli('serve', '--port', '0');
    expect(broken.exitCode).toBe(3);
    expect(broken.stderr).toContain('models.mlp.versionPolicy');
    const flag = await runCli(['serve', '--port', '0', '--version-policy', 'latest:0'], { cwd: reg.dir, env: reg.env });
    expect(flag.exitCode).toBe(2);
    expect(flag.stderr).toContain("'latest' needs a count");
  });

  it('refuses to start when the policy selects no version of a model named on the command line (exit 4)', async () => {
    const reg = await threeVersions();
    const r = await runCli(['serve', 'mlp', '--port', '0', '--version-policy', 'specific:9', '--json'], { cwd: reg.dir, env: reg.env });
    expect(r.exitCode).toBe(4);
    expect(JSON.parse(r.stdout).error).toMatchObject({
      code: 'MAAS_VERSION_NOT_FOUND', message: 'the version policy specific:9 selects no version of mlp (registered: 1, 2, 3)', hint: expect.stringContaining('maas serve mlp@3'),
    });
  });

  it('says once what a specific policy names that is not registered, and serves it once it is', async () => {
    const reg = await threeVersions();
    const server = await serveRegistry(reg, { flags: { versionPolicy: parseVersionPolicy('specific:1,4,canary') }, pollMs: 100 });
    expect((await server.get('/v2/models/mlp')).json.versions).toEqual(['1']);
    await sleep(500); // a few polls: still one line
    const said = () => server.logs.filter((l) => l.includes('names'));
    expect(said()).toEqual(['mlp: the version policy specific:1,4,canary names 4, canary, not registered; served once registered']);
    expect((await reg.cli('register', writeModel(reg.work, 'mlp4.onnx', mlp({ seed: 4 })), '--name', 'mlp')).exitCode).toBe(0);
    await until(async () => ((await server.get('/v2/models/mlp')).json.versions as string[]).join() === '1,4', 'version 4 to be served');
    await sleep(300);
    expect(said()).toHaveLength(1); // canary was said already
    expect(server.logs).toContain('mlp: requests that name no version now get 4 (1 is still served)');
    expect((await reg.cli('rm', 'mlp@4')).exitCode).toBe(0);
    await until(async () => said().length === 2, 'version 4 said again once it is gone');
    expect(said()[1]).toContain('names 4, not registered');
  });

  it('applies the policy on hot reload as versions are registered and removed', async () => {
    const reg = await threeVersions();
    const overrides: ServeOverrides = { flags: { versionPolicy: parseVersionPolicy('latest:2') }, pollMs: 100 };
    const server = await serveRegistry(reg, overrides);
    const listed = async () => (await server.get('/v2/models/mlp')).json.versions as string[];
    expect(await listed()).toEqual(['2', '3']);
    expect((await reg.cli('register', writeModel(reg.work, 'mlp4.onnx', mlp({ seed: 4 })), '--name', 'mlp')).exitCode).toBe(0);
    await until(async () => (await listed()).join() === '3,4', 'version 4 to be served and 2 to leave');
    expect((await server.post('/v2/models/mlp/versions/2/infer', INFER)).status).toBe(404);
    expect((await server.post('/v2/models/mlp/infer', INFER)).json.model_version).toBe('4');
    expect((await reg.cli('rm', 'mlp@4')).exitCode).toBe(0);
    await until(async () => (await listed()).join() === '2,3', 'version 2 to come back once 4 is removed');
    expect((await server.post('/v2/models/mlp/infer', INFER)).json.model_version).toBe('3');
    expect(server.logs.join('\n')).toContain('unloaded mlp@2');
  });
});
