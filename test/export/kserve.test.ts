/**
 * `maas export --format kserve`: InferenceService and ServingRuntime manifests that validate
 * against schemas written from KServe's CRDs (schemas/), a storageUri that names the version's
 * modelcar by digest (pushed first when the registry lacks it), and the maas runtime's command run
 * here against a folder laid out as KServe mounts the modelcar at /mnt/models.
 */
import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Ajv, type ValidateFunction } from 'ajv';
import { describe, expect, it, onTestFinished } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { VERSION } from '../../src/core/version.js';
import { dnsLabel } from '../../src/export/kserve.js';
import { extractLayer, imageOf, writeBaseLayout } from '../helpers/oci-image.js';
import { HAVE_REGISTRY, REQUIRE_TOOLS, freePort, skopeo, startOciRegistry, type TestOciRegistry } from '../helpers/oci-registry.js';
import { mlp, writeModel } from '../../fixtures/models.js';
import { makeRegistry, type TestRegistry } from '../helpers/registry.js';
import { BIN } from '../helpers/run-cli.js';

const schema = (file: string): ValidateFunction => new Ajv({ allErrors: true, strict: true }).compile(JSON.parse(readFileSync(new URL(`./schemas/${file}`, import.meta.url), 'utf8')) as object);
const validators = { InferenceService: schema('inferenceservice.schema.json'), ServingRuntime: schema('servingruntime.schema.json') };

/** Every document of a multi-document YAML, each valid against its kind's schema. */
function documents(yaml: string): any[] {
  const docs = parseAllDocuments(yaml).map((d) => d.toJSON());
  for (const doc of docs) {
    const validate = validators[doc.kind as keyof typeof validators];
    expect(validate, `a ${doc.kind}`).toBeDefined();
    validate(doc);
    expect(validate.errors ?? [], JSON.stringify(validate.errors, null, 2)).toEqual([]);
  }
  return docs;
}

async function registered(): Promise<TestRegistry> {
  const reg = await makeRegistry();
  const r = await reg.cli('register', reg.fixture('mlp.onnx'), '--alias', 'prod', '--json');
  expect(r.exitCode, r.stdout + r.stderr).toBe(0);
  return reg;
}

/** A registry on loopback with a base image (a file /bin/sh) at base/busybox:1. */
async function registryWithBase(reg: TestRegistry): Promise<{ oci: TestOciRegistry; base: string; remote: string }> {
  const oci = await startOciRegistry('none');
  const dir = join(reg.work, 'base');
  await writeBaseLayout(dir);
  await skopeo(['copy', '--dest-tls-verify=false', `oci:${dir}:1`, `docker://${oci.host}/base/busybox:1`], reg.home);
  return { oci, base: `oci://${oci.host}/base/busybox:1`, remote: `oci://${oci.host}/team/mlp` };
}

describe('export --format kserve: names and refusals', () => {
  it('makes a model name a Kubernetes name (a DNS-1035 label)', () => {
    expect(['mlp', 'resnet_50.v2', '3d-net', 'a'.repeat(70)].map(dnsLabel)).toEqual(['mlp', 'resnet-50-v2', 'model-3d-net', 'a'.repeat(63)]);
  });

  it('needs a remote, and says how to name one', async () => {
    const reg = await registered();
    const r = await reg.cli('export', 'mlp@1', '--format', 'kserve', '--json');
    expect(r.exitCode).toBe(2);
    expect(r.json().error).toMatchObject({ code: 'MAAS_USAGE', hint: expect.stringContaining('--remote oci://') });
  });

  it('refuses flags the format does not read, zero resources, a bad image, and a typo in maas.yaml', async () => {
    const reg = await registered();
    const stray = await reg.cli('export', 'mlp@1', '--format', 'triton', '-o', join(reg.work, 'repo'), '--canary', '10', '--cpu', '2', '--json');
    expect(stray.exitCode).toBe(2);
    expect(stray.json().error.message).toBe('--cpu, --canary are not for --format triton');
    expect(existsSync(join(reg.work, 'repo'))).toBe(false);
    expect((await reg.cli('export', 'mlp@1', '--format', 'kserve', '--workers', '2', '--json')).json().error.message).toContain('--workers is not for --format kserve');
    expect((await reg.cli('export', 'mlp@1', '--format', 'kserve', '--cpu', '0', '--json')).exitCode).toBe(2);
    expect((await reg.cli('export', 'mlp@1', '--format', 'kserve', '--runtime', 'maas', '--runtime-image', 'Bad Image!', '--json')).exitCode).toBe(2);
    expect((await reg.cli('export', 'mlp@1', '--format', 'kserve', '--runtime-image', 'x/y:1', '--json')).json().error.message).toContain('--runtime maas');
    const yamlFolder = await reg.cli('export', 'mlp@1', '--format', 'kserve', '--remote', 'oci://registry.example.com/team/mlp', '--runtime', 'maas', '-o', join(reg.work, 'isvc.yaml'), '--json');
    expect(yamlFolder.json().error).toMatchObject({ code: 'MAAS_USAGE', hint: expect.stringContaining(join(reg.work, 'deploy')) });
    expect(existsSync(join(reg.work, 'isvc.yaml'))).toBe(false);
    writeFileSync(join(reg.dir, 'maas.yaml'), `${readFileSync(join(reg.dir, 'maas.yaml'), 'utf8')}models:\n  mlp:\n    maxbatch: 8\n`);
    const typo = await reg.cli('export', 'mlp@1', '--format', 'triton', '-o', join(reg.work, 'repo'), '--json');
    expect(typo.exitCode).toBe(3);
    expect(typo.json().error.message + typo.json().error.hint + JSON.stringify(typo.json().error.details ?? {})).toContain('models.mlp.maxbatch');
  });

  it('refuses a folder remote (a cluster pulls from a registry), WebGPU, bad names and replicas, an unknown version', async () => {
    const reg = await registered();
    const remote = ['--remote', 'oci://127.0.0.1:9/team/mlp'];
    const layout = await reg.cli('export', 'mlp@1', '--format', 'kserve', '--remote', `oci-layout:${join(reg.work, 'out')}`, '--json');
    expect(layout.exitCode).toBe(2);
    expect(layout.json().error).toMatchObject({ code: 'MAAS_USAGE', hint: expect.stringContaining('skopeo copy --all oci:') });
    const webgpu = await reg.cli('export', 'mlp@1', '--format', 'kserve', ...remote, '--device', 'webgpu', '--json');
    expect(webgpu.exitCode).toBe(2);
    expect(webgpu.json().error).toMatchObject({ code: 'MAAS_USAGE', hint: expect.stringContaining('--device cuda') });
    const name = await reg.cli('export', 'mlp@1', '--format', 'kserve', ...remote, '--name', 'My_Model', '--json');
    expect(name.exitCode).toBe(2);
    expect(name.json().error).toMatchObject({ code: 'MAAS_USAGE', hint: 'For example --name mlp.' });
    const replicas = await reg.cli('export', 'mlp@1', '--format', 'kserve', ...remote, '--min-replicas', '3', '--max-replicas', '2', '--json');
    expect(replicas.json().error.code).toBe('MAAS_USAGE');
    const canary = await reg.cli('export', 'mlp@1', '--format', 'kserve', ...remote, '--canary', '120', '--json');
    expect(canary.exitCode).toBe(2);
    const memory = await reg.cli('export', 'mlp@1', '--format', 'kserve', ...remote, '--memory', '4 GB', '--json');
    expect(memory.exitCode).toBe(2);
    const missing = await reg.cli('export', 'mlp@7', '--format', 'kserve', ...remote, '--json');
    expect(missing.exitCode).toBe(4);
    const unknown = await reg.cli('export', 'nope@1', '--format', 'kserve', ...remote, '--json');
    expect(unknown.exitCode).toBe(4);
    for (const r of [layout, webgpu, name, replicas, canary, memory, missing, unknown]) expect(r.stderr + r.stdout).not.toMatch(/\n\s+at /);
  });
});

describe.skipIf(!HAVE_REGISTRY && !REQUIRE_TOOLS)('export --format kserve against a real registry (docker-registry on loopback)', () => {
  it('pushes the modelcar when the registry lacks it, then names it by digest without pushing again', async () => {
    const reg = await registered();
    const { oci, base, remote } = await registryWithBase(reg);
    const first = await reg.cli('export', 'mlp@prod', '--format', 'kserve', '--remote', remote, '--modelcar-base', base, '--json');
    expect(first.exitCode, first.stdout + first.stderr).toBe(0);
    const result = first.json();
    const raw = await skopeo(['inspect', '--raw', '--tls-verify=false', `docker://${oci.host}/team/mlp:1-modelcar`], reg.home);
    const digest = `sha256:${(await import('node:crypto')).createHash('sha256').update(raw).digest('hex')}`;
    expect(result).toMatchObject({
      format: 'kserve', ref: 'mlp@1', name: 'mlp', runtime: 'triton', servingRuntime: 'kserve-tritonserver',
      storageUri: `oci://${oci.host}/team/mlp:1-modelcar@${digest}`,
      modelcar: { status: 'pushed', digest, base: `${oci.host}/base/busybox:1` },
      pushed: { tags: ['1'], modelcar: { status: 'pushed' } },
      inferPath: '/v2/models/mlp/infer',
      files: [],
    });
    expect(JSON.parse(raw).annotations['dev.maas.modelpack.digest']).toBe(result.manifestDigest);
    // Without -o the YAML is all stdout has.
    const plain = await reg.cli('export', 'mlp@prod', '--format', 'kserve', '--remote', remote);
    expect(plain.exitCode, plain.stderr).toBe(0);
    const [isvc] = documents(plain.stdout);
    expect(isvc).toEqual({
      apiVersion: 'serving.kserve.io/v1beta1',
      kind: 'InferenceService',
      metadata: { name: 'mlp', annotations: { 'maas.dev/ref': 'mlp@1', 'maas.dev/alias': 'prod', 'maas.dev/manifest-digest': result.manifestDigest } },
      spec: { predictor: { model: { modelFormat: { name: 'onnx' }, protocolVersion: 'v2', runtime: 'kserve-tritonserver', storageUri: result.storageUri } } },
    });
    // The second export found the modelcar: nothing pushed, with or without the base named.
    const second = await reg.cli('export', 'mlp@1', '--format', 'kserve', '--remote', remote, '--modelcar-base', base, '--json');
    expect(second.json()).toMatchObject({ modelcar: { status: 'present', digest }, storageUri: result.storageUri });
    expect(second.json().pushed).toBeUndefined();
  });

  it('refuses a modelcar without a base, which KServe cannot run', async () => {
    const reg = await registered();
    const { remote } = await registryWithBase(reg);
    const none = await reg.cli('export', 'mlp@1', '--format', 'kserve', '--remote', remote, '--json');
    expect(none.exitCode).toBe(2);
    expect(none.json().error).toMatchObject({ code: 'MAAS_USAGE', message: expect.stringContaining('does not exist yet'), hint: expect.stringContaining('--modelcar-base') });
    expect((await reg.cli('push', 'mlp@1', remote, '--modelcar')).exitCode).toBe(0);
    const scratch = await reg.cli('export', 'mlp@1', '--format', 'kserve', '--remote', remote, '--json');
    expect(scratch.json().error).toMatchObject({ code: 'MAAS_USAGE', message: expect.stringContaining('has no base image') });
  });

  it('checks what it writes and reads before it pushes anything, and never moves a tag that names other bytes', async () => {
    const reg = await registered();
    const { oci, base, remote } = await registryWithBase(reg);
    const tags = async () => {
      const listed = await skopeo(['list-tags', '--tls-verify=false', `docker://${oci.host}/team/mlp`], reg.home).catch(() => '{"Tags":[]}');
      return (JSON.parse(listed).Tags ?? []) as string[];
    };
    const file = join(reg.work, 'plain');
    writeFileSync(file, 'x');
    const through = await reg.cli('export', 'mlp@1', '--format', 'kserve', '--remote', remote, '--modelcar-base', base, '-o', join(file, 'isvc.yaml'), '--json');
    expect(through.exitCode).toBe(2);
    expect(through.json().error.message).toContain('goes through a file');
    const mine = join(reg.work, 'mine');
    mkdirSync(mine);
    writeFileSync(join(mine, 'Dockerfile'), 'FROM my/base\n');
    const full = await reg.cli('export', 'mlp@1', '--format', 'kserve', '--runtime', 'maas', '--remote', remote, '--modelcar-base', base, '-o', mine, '--json');
    expect(full.exitCode).toBe(2);
    expect(readFileSync(join(mine, 'Dockerfile'), 'utf8')).toBe('FROM my/base\n');
    const badBase = await reg.cli('export', 'mlp@1', '--format', 'kserve', '--remote', remote, '--modelcar-base', `oci://${oci.host}/base/nope:1`, '--json');
    expect(badBase.exitCode).toBe(5);
    expect(badBase.json().error.message).toContain('the modelcar base image');
    expect(await tags()).toEqual([]);

    // another registry's mlp@1 holds the tag: the export refuses rather than re-point it
    const other = await makeRegistry();
    writeModel(other.work, 'mlp.onnx', mlp({ seed: 99 }));
    await other.cli('register', join(other.work, 'mlp.onnx'));
    expect((await other.cli('push', 'mlp@1', remote)).exitCode).toBe(0);
    const clash = await reg.cli('export', 'mlp@1', '--format', 'kserve', '--remote', remote, '--modelcar-base', base, '--json');
    expect(clash.exitCode).toBe(6);
    expect(clash.json().error).toMatchObject({ code: 'MAAS_VERSION_CONFLICT', hint: expect.stringContaining('maas push mlp@1') });
  });

  it('writes resources, a GPU, replicas, a canary, a name and a namespace; --runtime onnx lets KServe pick the runtime', async () => {
    const reg = await registered();
    const { base, remote } = await registryWithBase(reg);
    const file = join(reg.work, 'isvc.yaml');
    const r = await reg.cli(
      'export', 'mlp@1', '--format', 'kserve', '--remote', remote, '--modelcar-base', base, '--runtime', 'onnx', '-o', file,
      '--name', 'mlp-canary', '--namespace', 'models', '--cpu', '500m', '--memory', '1Gi', '--device', 'cuda', '--min-replicas', '0', '--max-replicas', '4', '--canary', '10',
    );
    expect(r.exitCode, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toContain(`kubectl apply -f ${file}`);
    const [isvc] = documents(readFileSync(file, 'utf8'));
    expect(isvc.metadata).toMatchObject({ name: 'mlp-canary', namespace: 'models' });
    expect(isvc.spec.predictor).toMatchObject({ minReplicas: 0, maxReplicas: 4, canaryTrafficPercent: 10 });
    expect(isvc.spec.predictor.model.runtime).toBeUndefined();
    expect(isvc.spec.predictor.model.resources).toEqual({ requests: { cpu: '500m', memory: '1Gi' }, limits: { cpu: '500m', memory: '1Gi', 'nvidia.com/gpu': '1' } });
  });

  it('--runtime maas: a ServingRuntime running maas serve, its Dockerfile, and a command that serves the modelcar from /mnt/models', async () => {
    const reg = await registered();
    const { oci, base, remote } = await registryWithBase(reg);
    const dir = join(reg.work, 'deploy');
    const r = await reg.cli('export', 'mlp@1', '--format', 'kserve', '--remote', remote, '--modelcar-base', base, '--runtime', 'maas', '-o', dir, '--device', 'cpu', '--json');
    expect(r.exitCode, r.stdout + r.stderr).toBe(0);
    const result = r.json();
    expect(result.files).toEqual(['servingruntime.yaml', 'inferenceservice.yaml', 'Dockerfile'].map((f) => join(dir, f)));
    expect(result.runtimeImage).toBe(`${oci.host}/team/maas-serve:${VERSION}`);
    const [runtime, isvc] = documents(result.yaml);
    expect(documents(readFileSync(join(dir, 'servingruntime.yaml'), 'utf8'))).toEqual([runtime]);
    expect(documents(readFileSync(join(dir, 'inferenceservice.yaml'), 'utf8'))).toEqual([isvc]);
    expect(runtime.spec).toMatchObject({ supportedModelFormats: [{ name: 'onnx', autoSelect: false }], protocolVersions: ['v2', 'grpc-v2'] });
    expect(runtime.spec.containers[0]).toMatchObject({ name: 'kserve-container', image: result.runtimeImage, command: ['sh', '-c', expect.stringContaining('--port 8080 --grpc-port 8081')] });
    expect(isvc.spec.predictor.model).toMatchObject({ runtime: 'maas', env: [{ name: 'MAAS_SERVE', value: 'oci-layout:/mnt/models/mlp:1' }, { name: 'MAAS_DEVICE', value: 'cpu' }] });
    const dockerfile = readFileSync(join(dir, 'Dockerfile'), 'utf8');
    expect(dockerfile).toMatch(/^FROM node:(2\d)-/m);
    expect(dockerfile).toContain(`npm install --global maas@${VERSION}`);
    expect(dockerfile).toContain(`docker build -t ${result.runtimeImage} .`);

    // What KServe mounts at /mnt/models: the modelcar's /models, as a runtime unpacks the image.
    const copy = join(reg.work, 'copy');
    await skopeo(['copy', '--src-tls-verify=false', `docker://${oci.host}/team/mlp:1-modelcar`, `oci:${copy}:car`], reg.home);
    const unpacked = join(reg.work, 'rootfs');
    for (const layer of imageOf(copy, 'car').manifest.layers) await extractLayer(copy, layer.digest, unpacked);

    // The runtime's command as the pod runs it, with `maas` this checkout's CLI, the mount somewhere
    // writable, free ports. It starts before the model is there, as KServe allows (MODEL_INIT_MODE=async).
    const mnt = join(reg.work, 'mnt');
    const bin = join(reg.work, 'bin');
    mkdirSync(bin);
    writeFileSync(join(bin, 'maas'), `#!/bin/sh\nexec "${process.execPath}" "${BIN}" "$@"\n`);
    chmodSync(join(bin, 'maas'), 0o755);
    const [port, grpcPort] = [await freePort(), await freePort()];
    const script = (runtime.spec.containers[0].command[2] as string).replace('--port 8080', `--port ${port}`).replace('--grpc-port 8081', `--grpc-port ${grpcPort}`);
    const env = Object.fromEntries([...runtime.spec.containers[0].env, ...isvc.spec.predictor.model.env].map((e: { name: string; value: string }) => [e.name, e.value.replace(/^\/tmp\//, `${reg.work}/`).replace('/mnt/models', join(mnt, 'models'))]));
    const child = spawn('sh', ['-c', script], { env: { ...reg.env, ...env, PATH: `${bin}:${process.env.PATH}` }, stdio: ['ignore', 'pipe', 'pipe'] });
    let log = '';
    child.stdout.on('data', (d) => (log += d));
    child.stderr.on('data', (d) => (log += d));
    onTestFinished(() => void child.kill('SIGKILL'));
    await new Promise((r) => setTimeout(r, 1500));
    expect(log).toContain('waiting for');
    mkdirSync(mnt);
    renameSync(join(unpacked, 'models'), join(mnt, 'models'));

    const url = `http://127.0.0.1:${port}`;
    let ready = false;
    for (let i = 0; i < 300 && !ready; i++) {
      await new Promise((r) => setTimeout(r, 100));
      ready = await fetch(`${url}/v2/health/ready`).then((res) => res.ok, () => false);
    }
    expect(ready, log).toBe(true);
    const infer = await fetch(`${url}${result.inferPath}`, { method: 'POST', body: JSON.stringify({ inputs: [{ name: 'input', shape: [1, 4], datatype: 'FP32', data: [1, 2, 3, 4] }] }) });
    expect(infer.status, log).toBe(200);
    expect(await infer.json()).toMatchObject({ model_name: 'mlp', model_version: '1', outputs: [{ name: 'output', shape: [1, 3] }] });
    // It served the version as pushed: the same ModelPack manifest digest, pulled from the modelcar's layout.
    expect(log).toContain(result.manifestDigest);
    expect(existsSync(join(reg.work, 'maas-cache'))).toBe(true);
    child.kill('SIGTERM');
    expect(await new Promise((r) => child.on('exit', (code, signal) => r(code ?? signal)))).toBe(0);
  });
});
