/**
 * Every command on every model of the real-model corpus (fixtures/corpus.ts): register, show,
 * diff, verify, serve (KServe v2 JSON and binary, TF Serving), predict, convert, pack/import and
 * push/pull through Debian's docker-registry. Served and predicted outputs must equal a direct
 * onnxruntime run of the same file with the same session options, bit for bit.
 */
import { existsSync, mkdtempSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CORPUS_MODELS, type CorpusModel, corpusFile, corpusRequest, corpusValues } from '../../fixtures/corpus.js';
import { paramSize } from '../../src/onnx/inspect.js';
import { type RunningServer, startServer } from '../../src/serve/server.js';
import { HAVE_REGISTRY, REQUIRE_TOOLS, skopeo, startOciRegistry } from '../helpers/oci-registry.js';
import { runCli, spawnCli } from '../helpers/run-cli.js';
import { testEnv } from '../helpers/temp.js';

const HAVE_CORPUS = CORPUS_MODELS.every((m) => existsSync(corpusFile(m)));
if (!HAVE_CORPUS && !REQUIRE_TOOLS) console.warn('SKIPPED: the real-model corpus is not in .corpus/ (run `npm run corpus`, which needs the npm registry)');

/** The same request with every input and output in the binary tensor extension. */
function binaryRequest(model: CorpusModel): { body: Buffer; headerLength: number } {
  const tails = model.inputs.map((input, i) => {
    const v = corpusValues(input, i + 1);
    return input.datatype === 'INT64' ? Buffer.from(BigInt64Array.from(v as bigint[]).buffer) : Buffer.from(Float32Array.from(v as number[]).buffer);
  });
  const header = Buffer.from(JSON.stringify({
    inputs: model.inputs.map((input, i) => ({ name: input.name, datatype: input.datatype, shape: input.shape, parameters: { binary_data_size: tails[i]!.length } })),
    parameters: { binary_data_output: true },
  }));
  return { body: Buffer.concat([header, ...tails]), headerLength: header.length };
}

interface Output { name: string; shape: number[]; data: number[] }

/** A direct onnxruntime run with the serving worker's session options. */
async function direct(model: CorpusModel): Promise<Output[]> {
  const ort = await import('onnxruntime-node');
  const session = await ort.InferenceSession.create(corpusFile(model), {
    executionProviders: ['cpu'], intraOpNumThreads: 1, interOpNumThreads: 1, executionMode: 'sequential', graphOptimizationLevel: 'all', logSeverityLevel: 4,
  });
  try {
    const feeds = Object.fromEntries(model.inputs.map((input, i) => {
      const v = corpusValues(input, i + 1);
      const data = input.datatype === 'INT64' ? BigInt64Array.from(v as bigint[]) : Float32Array.from(v as number[]);
      return [input.name, new ort.Tensor(input.datatype === 'INT64' ? 'int64' : 'float32', data, input.shape)];
    }));
    const results = await session.run(feeds);
    return session.outputNames.map((name) => ({ name, shape: [...results[name]!.dims], data: Array.from(results[name]!.data as Float32Array, Number) }));
  } finally {
    await session.release();
  }
}

/** Outputs of a binary infer response: a JSON header, then each output's little-endian bytes. */
function binaryOutputs(raw: Buffer, headerLength: number): Output[] {
  const head = JSON.parse(raw.subarray(0, headerLength).toString('utf8')) as { outputs: { name: string; shape: number[]; datatype: string; parameters: { binary_data_size: number } }[] };
  let offset = headerLength;
  return head.outputs.map((o) => {
    expect(o.datatype).toBe('FP32');
    const bytes = raw.subarray(offset, offset + o.parameters.binary_data_size);
    offset += bytes.length;
    const copy = new Uint8Array(bytes.length);
    copy.set(bytes);
    return { name: o.name, shape: o.shape, data: Array.from(new Float32Array(copy.buffer)) };
  });
}

// JSON has no negative zero: -0 goes out as 0, so both sides compare with -0 read as 0.
const jsonOutputs = (body: { outputs: Output[] }): Output[] => body.outputs.map((o) => ({ name: o.name, shape: o.shape, data: o.data.map(Number) }));
const positiveZero = (outputs: Output[]): Output[] => outputs.map((o) => ({ ...o, data: o.data.map((v) => v + 0) }));

describe.skipIf(!HAVE_CORPUS && !REQUIRE_TOOLS)('real-model corpus', () => {
  let root: string;
  let env: Record<string, string>;
  let registry: string;
  const registered = new Map<string, { status: string; manifestDigest: string }>();
  const cli = (...args: string[]) => runCli(args, { cwd: registry, env });
  const expected = new Map<string, Output[]>();
  /** every conversion's outcome, printed once at the end: what BENCHMARKS.md records. */
  const conversions: { model: string; flags: string; exitCode: number; worst?: number | undefined; error?: string | undefined }[] = [];

  beforeAll(async () => {
    expect(HAVE_CORPUS, 'run `npm run corpus` first').toBe(true);
    root = realpathSync(mkdtempSync(join(tmpdir(), 'maas-corpus-')));
    env = testEnv(root);
    registry = join(root, 'registry');
    expect((await runCli(['init', registry, '--yes'], { cwd: root, env })).exitCode).toBe(0);
    for (const model of CORPUS_MODELS) {
      const r = await cli('register', corpusFile(model), '--name', model.name, '--json');
      expect(r.exitCode, r.stdout + r.stderr).toBe(0);
      registered.set(model.name, r.json());
      expected.set(model.name, await direct(model));
    }
  }, 180_000);
  afterAll(() => {
    if (conversions.length) console.log(`corpus conversions:\n${conversions.map((c) => `  ${c.model} ${c.flags}: ${c.exitCode === 0 ? `ok, worst normalized error ${c.worst!.toExponential(2)}` : `exit ${c.exitCode}: ${c.error}`}`).join('\n')}`);
    rmSync(root, { recursive: true, force: true });
  });

  describe.each(CORPUS_MODELS.map((m) => [m.name, m] as const))('%s', (name, model) => {
    it('registers, load-checked, with the signature onnxruntime reports', async () => {
      expect(registered.get(name)?.status).toBe('registered');
      const show = await cli('show', name, '--json');
      expect(show.exitCode).toBe(0);
      const shown = show.json();
      expect(shown.loadChecked).toBe(true);
      expect(shown.signature.inputs.map((i: { name: string }) => i.name)).toEqual(model.inputs.map((i) => i.name));
      expect(shown.signature.outputs.map((o: { name: string }) => o.name)).toEqual(expected.get(name)!.map((o) => o.name));
      expect(shown.files.every((f: { present: boolean }) => f.present)).toBe(true);
    });

    it('show counts its weights, wherever they live', async () => {
      const shown = (await cli('show', name, '--json')).json();
      expect(paramSize(shown.parameterCount)).toBe(model.parameters);
      expect(shown.precisions).toContain('float32');
      const human = await cli('show', `${name}@1`);
      expect(human.stdout).toMatch(/parameters\s+[\d,]+ \(float32/);
    });

    it('serves it: KServe v2 JSON and binary outputs equal a direct onnxruntime run', async () => {
      const want = expected.get(name)!;
      const json = await fetch(`${server.url}/v2/models/${name}/infer`, { method: 'POST', body: JSON.stringify(corpusRequest(model)) });
      const jsonBody = await json.json() as { id: string; model_version: string; outputs: Output[] };
      expect(json.status, JSON.stringify(jsonBody)).toBe(200);
      expect(jsonBody.id).toBe(name);
      expect(jsonOutputs(jsonBody)).toEqual(positiveZero(want));

      const { body, headerLength } = binaryRequest(model);
      const binary = await fetch(`${server.url}/v2/models/${name}/versions/1/infer`, {
        method: 'POST', body, headers: { 'inference-header-content-length': String(headerLength), 'content-type': 'application/octet-stream' },
      });
      const raw = Buffer.from(await binary.arrayBuffer());
      expect(binary.status, raw.toString('utf8', 0, 300)).toBe(200);
      expect(binaryOutputs(raw, Number(binary.headers.get('inference-header-content-length')))).toEqual(want);

      const meta = await (await fetch(`${server.url}/v2/models/${name}`)).json() as { inputs: { name: string; datatype: string; shape: number[] }[] };
      expect(meta.inputs.map((i) => [i.name, i.datatype, i.shape.length])).toEqual(model.inputs.map((i) => [i.name, i.datatype, i.shape.length]));
    });

    it('predict gives the served answer', async () => {
      const file = join(root, `${name}.request.json`);
      writeFileSync(file, JSON.stringify(corpusRequest(model)));
      const r = await cli('predict', name, '--input', file, '--json');
      expect(r.exitCode, r.stderr).toBe(0);
      expect(jsonOutputs(r.json())).toEqual(positiveZero(expected.get(name)!));
    });

    it('packs and imports as the same manifest, which verify accepts', async () => {
      const archive = join(root, `${name}.tar`);
      expect((await cli('pack', name, '-o', archive, '--json')).exitCode).toBe(0);
      const other = join(root, `import-${name}`);
      expect((await runCli(['init', other, '--yes'], { cwd: root, env })).exitCode).toBe(0);
      const imported = await runCli(['import', archive, '--json'], { cwd: other, env });
      expect(imported.exitCode, imported.stdout).toBe(0);
      expect(imported.json()).toMatchObject({ status: 'imported', name, version: 1, manifestDigest: registered.get(name)!.manifestDigest });
      expect((await runCli(['verify', '--json'], { cwd: other, env })).json().ok).toBe(true);
    });

    it('converts to float16 within tolerance on its own request; every int8 and int4 mode converts or refuses with a reason', async () => {
      // The corpus request: generated inputs do not suit every model (silero's reflect padding needs a real length).
      const samples = join(root, `${name}-samples.json`);
      writeFileSync(samples, JSON.stringify(corpusRequest(model)));
      const runs: [string[], number[]][] = [
        [['--fp16'], [0]],
        [['--int8'], [0, 7, 8]],
        [['--int8', 'weight-only'], [0, 7, 8]],
        [['--int8', 'static', '--calibrate', samples], [0, 7, 8]],
        [['--int4'], [0, 7, 8]],
      ];
      for (const [flags, codes] of runs) {
        const out = join(root, `${name}${flags.slice(0, 2).join('-')}.onnx`);
        const r = await spawnCli(['convert', corpusFile(model), ...flags, '--samples', samples, '-o', out, '--json'], { cwd: root, env, timeoutMs: 120_000 });
        expect(r.signal, `maas convert ${flags.join(' ')} on ${name} did not exit`).toBeNull();
        expect(codes, `${flags.join(' ')}: ${r.stdout}${r.stderr}`).toContain(r.exitCode);
        if (r.exitCode === 0) {
          // Loaded by onnxruntime (convert checks it) and compared with the original on the request and seeded inputs.
          expect(existsSync(out)).toBe(true);
          expect(r.json().accuracy).toMatchObject({ passed: true });
          expect(r.json().accuracy.samples).toBeGreaterThanOrEqual(1);
        } else {
          expect(r.json().error.message).toBeTruthy();
        }
        conversions.push({ model: name, flags: flags.slice(0, 2).join(' '), exitCode: r.exitCode, worst: r.exitCode === 0 ? r.json().accuracy.worst : undefined, error: r.exitCode === 0 ? undefined : r.json().error.message.slice(0, 120) });
      }
    }, 300_000);
  });

  let server: RunningServer;
  beforeAll(async () => {
    server = await startServer({
      registry: { cwd: registry, env },
      targets: [],
      flags: { device: 'cpu', workers: 1, threads: 1, maxQueue: 64 },
      host: '127.0.0.1', port: 0, token: undefined, insecure: false, maxBodyBytes: 64 << 20, timeoutMs: 60_000, pollMs: 60_000, jsonLogs: false, log: () => {}, version: 'test',
    });
  }, 120_000);
  afterAll(() => server?.close());

  it('TF Serving predict on the wake-word head answers the same numbers', async () => {
    const model = CORPUS_MODELS.find((m) => m.name === 'hello-deepa')!;
    const flat = corpusValues(model.inputs[0]!, 1) as number[];
    const rows = Array.from({ length: 25 }, (_, r) => flat.slice(r * 96, (r + 1) * 96));
    const res = await fetch(`${server.url}/v1/models/hello-deepa:predict`, { method: 'POST', body: JSON.stringify({ instances: [rows] }) });
    const body = await res.json() as { predictions: number[][] };
    expect(res.status, JSON.stringify(body)).toBe(200);
    expect(body.predictions.flat()).toEqual(expected.get('hello-deepa')![0]!.data);
  });

  it('diff names what changed between real exports', async () => {
    const window = await cli('diff', 'hello-deepa-old', 'hello-deepa', '--fail-on-breaking', '--json');
    expect(window.exitCode).toBe(8);
    expect(window.json().signatureChanges).toContainEqual(expect.objectContaining({ io: 'input', name: 'onnx::Flatten_0', kind: 'dim', before: '24', after: '25', breaking: true }));

    const vad = (await cli('diff', 'silero-vad-legacy', 'silero-vad', '--json')).json();
    const changes = vad.signatureChanges.map((c: { io: string; name: string; kind: string }) => `${c.io} ${c.name} ${c.kind}`);
    expect(changes).toEqual(expect.arrayContaining(['input h removed', 'input c removed', 'input state added', 'output hn removed', 'output stateN added']));
    expect(vad.breaking).toBe(true);

    const same = (await cli('diff', 'ppocr-det@1', 'ppocr-det', '--json')).json();
    expect(same).toMatchObject({ sameBytes: true, sameGraph: true, signatureChanges: [], breaking: false });
  });

  it('verify re-hashes every real model and finds the registry consistent', async () => {
    const r = await cli('verify', '--json');
    expect(r.exitCode, r.stdout).toBe(0);
    expect(r.json()).toMatchObject({ ok: true, versions: CORPUS_MODELS.length, blobs: CORPUS_MODELS.length });
  });

  it.skipIf(!HAVE_REGISTRY && !REQUIRE_TOOLS)('pushes every model to docker-registry and pulls it back byte for byte', async () => {
    const oci = await startOciRegistry('htpasswd');
    const creds = { MAAS_REGISTRY_USERNAME: oci.username, MAAS_REGISTRY_PASSWORD: oci.password };
    const puller = join(root, 'pulled');
    expect((await runCli(['init', puller, '--yes'], { cwd: root, env })).exitCode).toBe(0);
    for (const model of CORPUS_MODELS) {
      const pushed = await runCli(['push', model.name, `oci://${oci.host}/corpus/${model.name}`, '--json'], { cwd: registry, env: { ...env, ...creds } });
      expect(pushed.exitCode, pushed.stdout).toBe(0);
      expect(pushed.json().manifestDigest).toBe(registered.get(model.name)!.manifestDigest);
      const raw = JSON.parse(await skopeo(['inspect', '--raw', '--tls-verify=false', '--creds', `${oci.username}:${oci.password}`, `docker://${oci.host}/corpus/${model.name}:1`], root));
      expect(raw.artifactType).toBe('application/vnd.cncf.model.manifest.v1+json');
      const pulled = await runCli(['pull', `oci://${oci.host}/corpus/${model.name}:1`, '--json'], { cwd: puller, env: { ...env, ...creds } });
      expect(pulled.exitCode, pulled.stdout).toBe(0);
      expect(pulled.json()).toMatchObject({ status: 'imported', name: model.name, version: 1, manifestDigest: registered.get(model.name)!.manifestDigest });
    }
    const verified = await runCli(['verify', '--json'], { cwd: puller, env });
    expect(verified.json()).toMatchObject({ ok: true, versions: CORPUS_MODELS.length });
  }, 240_000);
});
