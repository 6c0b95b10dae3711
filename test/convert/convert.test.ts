import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { constantWeights, deepMlp, writeModel } from '../../fixtures/models.js';
import { inspectModel } from '../../src/onnx/inspect.js';
import { quantizePerChannel } from '../../src/onnx/quantize.js';
import { toHalf } from '../../src/onnx/fp16.js';
import { DataType } from '../../src/onnx/dtypes.js';
import { valueInfoProto } from '../../src/onnx/build.js';
import { halfToNumber } from '../../src/inference/tensors.js';
import { makeRegistry } from '../helpers/registry.js';
import { BIN } from '../helpers/run-cli.js';

describe('quantizePerChannel', () => {
  it('scales each output channel by its own max and rounds into [-127, 127]', () => {
    const { q, scales } = quantizePerChannel(Float32Array.from([1, -0.5, 0.25, 2, -1, 0]), [3, 2], 1);
    expect(Array.from(scales)).toEqual([Math.fround(1 / 127), Math.fround(2 / 127)]);
    expect(Array.from(q)).toEqual([127, -32, 32, 127, -127, 0]);
  });
});

describe('maas convert --int8 / --optimize', () => {
  it('quarters the weights, loads in onnxruntime, stays within tolerance, keeps the signature', async () => {
    const reg = await makeRegistry();
    const source = writeModel(reg.work, 'deep.onnx', deepMlp({ input: 64, hidden: 256, layers: 3, output: 8, seed: 5 }));
    const r = await reg.cli('convert', source, '--int8', '-o', join(reg.work, 'deep.int8.onnx'), '--json');
    expect(r.exitCode, r.stdout).toBe(0);
    const result = r.json();
    expect(result.quantize.quantized.map((w: { name: string; axis: number }) => `${w.name}:${w.axis}`)).toEqual(['w0:1', 'w1:1', 'w2:1']);
    expect(result.output.size).toBeLessThan(result.source.size * 0.3);
    expect(result.accuracy).toMatchObject({ passed: true, tolerance: 0.05, samples: 4 });
    expect(result.accuracy.outputs[0].cosine).toBeGreaterThan(0.999);
    const before = inspectModel(source);
    const after = inspectModel(join(reg.work, 'deep.int8.onnx'));
    expect(after.graphFingerprint).not.toBe(before.graphFingerprint);
    expect(after.signature).toEqual(before.signature);
    expect(after.precisions[0]).toBe('int8');
    const session = await ort.InferenceSession.create(join(reg.work, 'deep.int8.onnx'));
    expect(session.inputNames).toEqual(['input']);
    const human = await reg.cli('convert', source, '--int8', '-o', join(reg.work, 'again.onnx'));
    expect(human.stdout).toMatch(/size {9}\d+\.\d+ KB → \d+\.\d+ KB \(7\d % smaller\)/);
  });

  it('also compares on user samples given as KServe v2 infer requests', async () => {
    const reg = await makeRegistry();
    const source = writeModel(reg.work, 'm.onnx', deepMlp({ input: 4, hidden: 16, layers: 2, output: 2 }));
    const samples = [1, 2, 3].map((k) => ({ inputs: [{ name: 'input', shape: [1, 4], datatype: 'FP32', data: [k, -k, k / 2, 0] }] }));
    writeFileSync(join(reg.work, 'samples.json'), JSON.stringify(samples));
    const r = await reg.cli('convert', source, '--fp16', '--keep-io-types', '--samples', join(reg.work, 'samples.json'), '--json');
    expect(r.exitCode, r.stdout).toBe(0);
    expect(r.json().accuracy.samples).toBe(7);
    writeFileSync(join(reg.work, 'bad.json'), JSON.stringify({ inputs: [{ name: 'input', shape: [1, 5], datatype: 'FP32', data: [1, 2, 3, 4, 5] }] }));
    const bad = await reg.cli('convert', source, '--fp16', '--samples', join(reg.work, 'bad.json'));
    expect(bad.exitCode).toBe(2);
    expect(bad.stderr).toContain("input 'input': dim 1 is 5, the model expects 4");
  });

  it('refuses a conversion beyond tolerance (exit 8) and writes nothing, unless --force', async () => {
    const reg = await makeRegistry();
    const source = writeModel(reg.work, 'm.onnx', deepMlp({ input: 32, hidden: 64, layers: 2, output: 4 }));
    const out = join(reg.work, 'strict.onnx');
    const refused = await reg.cli('convert', source, '--int8', '--tolerance', '0', '-o', out, '--json');
    expect(refused.exitCode).toBe(8);
    expect(refused.json().error).toMatchObject({ code: 'MAAS_ACCURACY_FAILED', details: { accuracy: { passed: false, tolerance: 0 } } });
    expect(existsSync(out)).toBe(false);
    const forced = await reg.cli('convert', source, '--int8', '--tolerance', '0', '--force', '-o', out, '--json');
    expect(forced.exitCode).toBe(0);
    expect(forced.json().forced).toBe(true);
    expect(existsSync(out)).toBe(true);
  });

  it('refuses to call outputs that never vary a proof (exit 8), unless real samples make them vary or --force', async () => {
    const reg = await makeRegistry();
    // A detector that sees nothing in noise: whatever its weights, the generated inputs give one answer.
    const model = deepMlp({ input: 4, hidden: 16, layers: 2, output: 2 });
    model.graph.nodes.push({ op: 'Relu', inputs: ['output'], outputs: ['positive'] }, { op: 'Sub', inputs: ['positive', 'far'], outputs: ['shifted'] }, { op: 'Relu', inputs: ['shifted'], outputs: ['found'] });
    model.graph.initializers.push({ name: 'far', dataType: DataType.FLOAT, dims: [], raw: Buffer.from(new Float32Array([50]).buffer) });
    model.graph.outputs = [valueInfoProto('found', DataType.FLOAT, ['batch', 2])];
    const source = writeModel(reg.work, 'detector.onnx', model);
    const out = join(reg.work, 'detector.fp16.onnx');
    const refused = await reg.cli('convert', source, '--fp16', '--keep-io-types', '-o', out, '--json');
    expect(refused.exitCode).toBe(8);
    expect(refused.json().error).toMatchObject({ code: 'MAAS_ACCURACY_FAILED', hint: expect.stringContaining('--samples') });
    expect(refused.json().error.message).toContain('do not vary (found)');
    expect(refused.json().error.details.accuracy.outputs[0]).toMatchObject({ name: 'found', constant: true });
    expect(existsSync(out)).toBe(false);
    const samples = [1000, 2000].map((k) => ({ inputs: [{ name: 'input', shape: [1, 4], datatype: 'FP32', data: [k, -k, k, -k] }] }));
    writeFileSync(join(reg.work, 'loud.json'), JSON.stringify(samples));
    const proven = await reg.cli('convert', source, '--fp16', '--keep-io-types', '--samples', join(reg.work, 'loud.json'), '-o', out, '--json');
    expect(proven.exitCode, proven.stdout).toBe(0);
    expect(proven.json().accuracy.outputs[0].constant).toBeUndefined();
    const forced = await reg.cli('convert', source, '--fp16', '--keep-io-types', '--force', '-o', join(reg.work, 'forced.onnx'));
    expect(forced.exitCode).toBe(0);
    expect(forced.stdout).toContain('constant on these inputs: proves nothing');
  });

  it('refuses an -o that is the source or its external data, a folder, or a path through a file, before converting', async () => {
    const reg = await makeRegistry();
    const source = writeModel(reg.work, 'm.onnx', deepMlp({ input: 4, hidden: 8, layers: 1, output: 2 }));
    const before = statSync(source).mtimeMs;
    for (const output of [source, join(reg.work, '.', 'm.onnx'), reg.work, join(source, 'out.onnx')]) {
      const r = await reg.cli('convert', source, '--int8', '-o', output, '--json');
      expect(r.exitCode, `${output}: ${r.stdout}`).toBe(2);
      expect(r.json().error).toMatchObject({ code: 'MAAS_USAGE', hint: expect.any(String) });
    }
    expect(statSync(source).mtimeMs).toBe(before);
    reg.fixture('mlp_external.onnx.data');
    const data = await reg.cli('convert', reg.fixture('mlp_external.onnx'), '--fp16', '-o', reg.fixture('mlp_external.onnx.data'), '--json');
    expect(data.exitCode).toBe(2);
    // Nor into the registry's own folders, where it would overwrite a version's blob.
    await reg.cli('register', reg.fixture('mlp.onnx'));
    const blob = (await reg.cli('show', 'mlp@1', '--json')).json().digest.replace('sha256:', '');
    for (const inside of [join(reg.dir, 'blobs', 'sha256', blob), join(reg.dir, 'models', 'x.onnx')]) {
      const r = await reg.cli('convert', source, '--int8', '-o', inside, '--json');
      expect(r.exitCode, inside).toBe(2);
      expect(r.json().error.message).toMatch(/is inside the registry's (blobs|models)\/ folder/);
    }
    expect((await reg.cli('verify', 'mlp@1')).exitCode).toBe(0);
  });

  it('names the output of a registered version after the model and version, and says plainly when int8 grew', async () => {
    const reg = await makeRegistry();
    await reg.cli('register', reg.fixture('mlp.onnx'));
    const fromRegistry = await reg.cli('convert', 'mlp@1', '--fp16', '--keep-io-types', '--json');
    expect(fromRegistry.exitCode, fromRegistry.stdout).toBe(0);
    expect(fromRegistry.json().output.path).toBe(join(reg.dir, 'mlp-v1.fp16.onnx'));
    expect(fromRegistry.json().source.ref).toBe('mlp@1');
    expect((await reg.cli('convert', 'mlp@1', '--fp16', '-o', join(reg.work, 'named.onnx'))).stdout).toMatch(/Converted mlp@1 → /);
    // the fixture's weights are so small that per-channel scales and Dequantize nodes outweigh them
    const grown = await reg.cli('convert', reg.fixture('mlp.onnx'), '--int8', '--force');
    expect(grown.exitCode, grown.stderr).toBe(0);
    expect(grown.stdout).toMatch(/size {9}\d+ B → [\d.]+ K?B \(grew by \d+ %\)/);
    expect(grown.stdout.split('\n').find((l) => l.includes('size'))).not.toContain('×');
    const shrunk = await reg.cli('convert', writeModel(reg.work, 'deep.onnx', deepMlp({ input: 64, hidden: 256, layers: 3, output: 8, seed: 5 })), '--int8');
    expect(shrunk.stdout).toMatch(/\(7\d % smaller\)/);
  });

  it('optimizes with onnxruntime and converts registered versions and external-data models', async () => {
    const reg = await makeRegistry();
    await reg.cli('register', reg.fixture('mlp.onnx'));
    const optimized = await reg.cli('convert', 'mlp@1', '--optimize', 'basic', '-o', join(reg.work, 'opt.onnx'), '--json');
    expect(optimized.exitCode, optimized.stdout).toBe(0);
    expect(optimized.json()).toMatchObject({ steps: ['optimize basic'], accuracy: { passed: true } });
    reg.fixture('mlp_external.onnx.data');
    const external = await reg.cli('convert', reg.fixture('mlp_external.onnx'), '--int8', '-o', join(reg.work, 'ext.int8.onnx'), '--json');
    expect(external.exitCode, external.stdout).toBe(0);
    expect(inspectModel(join(reg.work, 'ext.int8.onnx')).externalDataFiles).toEqual([]); // weights inlined: the file stands alone
    // The source's size is the graph file and its external data together.
    expect(external.json().source.size).toBe(statSync(reg.fixture('mlp_external.onnx')).size + statSync(reg.fixture('mlp_external.onnx.data')).size);
    expect(statSync(join(reg.work, 'ext.int8.onnx')).size).toBeGreaterThan(0);
  });

  it('refuses a .pt that is not TorchScript (exit 7) and a model with nothing to quantize', async () => {
    const reg = await makeRegistry();
    writeFileSync(join(reg.work, 'model.pt'), 'torch');
    const torch = await reg.cli('convert', join(reg.work, 'model.pt'), '--input-shape', '1,4');
    expect(torch.exitCode).toBe(7);
    expect(torch.stderr).toMatch(/torch\.jit\.load failed|no Python here has torch/);
    expect(torch.stderr).toContain('torch');
    const nothing = await reg.cli('convert', reg.fixture('multi_io.onnx'), '--int8');
    expect(nothing.exitCode).toBe(7);
    expect(nothing.stderr).toContain('nothing to quantize');
    expect((await reg.cli('convert', reg.fixture('mlp.onnx'))).exitCode).toBe(2);
  });
});

describe('maas register --int8', () => {
  it('registers the converted model with its source digest and accuracy report, shown by maas show', async () => {
    const reg = await makeRegistry();
    const source = writeModel(reg.work, 'deep.onnx', deepMlp({ input: 64, hidden: 256, layers: 3, output: 8, seed: 9 }));
    const r = await reg.cli('register', source, '--name', 'deep', '--optimize', 'basic', '--int8', '--json');
    expect(r.exitCode, r.stdout).toBe(0);
    const show = (await reg.cli('show', 'deep@1', '--json')).json();
    expect(show.conversion).toMatchObject({
      source: { file: 'deep.onnx', digest: expect.stringMatching(/^sha256:/), graphFingerprint: inspectModel(source).graphFingerprint },
      steps: ['optimize basic', expect.stringMatching(/^int8 dynamic \(per-channel int8 weights, activations quantized at run time\)/)],
      accuracy: { passed: true, samples: 4, tolerance: 0.05 },
      forced: false,
    });
    expect(show.files[0].path).toBe('deep.basic.int8.onnx');
    expect(show.size).toBeLessThan(statSync(source).size * 0.3);
    const human = (await reg.cli('show', 'deep')).stdout;
    expect(human).toContain('converted    from deep.onnx');
    expect(human).toMatch(/accuracy {5}worst normalized error \S+ \(tolerance 0\.05\), cosine ≥ 0\.99\d+ on 4 inputs/);
    const refused = await reg.cli('register', source, '--name', 'deep', '--int8', '--tolerance', '0');
    expect(refused.exitCode).toBe(8);
    expect((await reg.cli('list', 'deep', '--json')).json().models[0].versions).toHaveLength(1);
    // Kept with --force: said at once, not only by `show`.
    const forced = await reg.cli('register', source, '--name', 'deep', '--int8', '--tolerance', '0', '--force', '--no-latency');
    expect(forced.exitCode, forced.stderr).toBe(0);
    expect(forced.stdout).toMatch(/⚠ Kept beyond tolerance \(--force\): worst normalized error \S+ over the tolerance 0\n/);
    const json = await reg.cli('register', source, '--name', 'deep', '--int8', 'weight-only', '--tolerance', '0', '--force', '--no-latency', '--json');
    expect(json.json().forcedConversion).toMatchObject({ forced: true, accuracy: { passed: false } });
    // The same bytes again: nothing registered, and still said.
    const again = await reg.cli('register', source, '--name', 'deep', '--int8', 'weight-only', '--tolerance', '0', '--force', '--no-latency');
    expect(again.stdout).toContain('already holds these bytes');
    expect(again.stdout).toContain('⚠ Kept beyond tolerance (--force)');
  });
});

describe('maas convert --fp16', () => {
  it('halves the weights, keeps float32 IO with --keep-io-types, and stays within tolerance', async () => {
    const reg = await makeRegistry();
    const source = writeModel(reg.work, 'deep.onnx', deepMlp({ input: 64, hidden: 256, layers: 3, output: 8, seed: 5 }));
    const r = await reg.cli('convert', source, '--fp16', '--keep-io-types', '-o', join(reg.work, 'deep.fp16.onnx'), '--json');
    expect(r.exitCode, r.stdout).toBe(0);
    const result = r.json();
    expect(result.fp16).toMatchObject({ float16Nodes: 5, float32Nodes: [], initializers: 3 });
    expect(result.output.size).toBeLessThan(result.source.size * 0.55);
    expect(result.output.size).toBeGreaterThan(result.source.size * 0.45);
    expect(result.accuracy).toMatchObject({ passed: true, tolerance: 0.01 });
    const before = inspectModel(source);
    const after = inspectModel(join(reg.work, 'deep.fp16.onnx'));
    expect(after.signature).toEqual(before.signature);
    expect(after.graphFingerprint).not.toBe(before.graphFingerprint);
    expect(after.precisions).toEqual(['float16']);
  });

  it('changes the IO types without --keep-io-types, which maas diff calls breaking', async () => {
    const reg = await makeRegistry();
    const source = writeModel(reg.work, 'deep.onnx', deepMlp({ input: 16, hidden: 32, layers: 2, output: 4 }));
    await reg.cli('register', source, '--name', 'deep');
    const r = await reg.cli('register', source, '--name', 'deep', '--fp16', '--json');
    expect(r.exitCode, r.stdout).toBe(0);
    expect(r.json().signature.inputs[0].dtype).toBe('float16');
    const diff = await reg.cli('diff', 'deep@1', 'deep@2', '--fail-on-breaking');
    expect(diff.exitCode).toBe(8);
    expect(diff.stdout).toContain("BREAKING input 'input' dtype float32 → float16");
  });

  it("unblocked Pow in an opset before 12 gets a float16 exponent too (its T is shared); a typo in --fp16-block is refused", async () => {
    const reg = await makeRegistry();
    const model = deepMlp({ input: 8, hidden: 16, layers: 2, output: 4 });
    model.opset = 9;
    model.graph.nodes.push({ op: 'Pow', inputs: ['output', 'two'], outputs: ['squared'] });
    model.graph.initializers.push({ name: 'two', dataType: DataType.FLOAT, dims: [], raw: Buffer.from(new Float32Array([2]).buffer) });
    model.graph.outputs = [valueInfoProto('squared', DataType.FLOAT, ['batch', 4])];
    const source = writeModel(reg.work, 'pow9.onnx', model);
    const r = await reg.cli('convert', source, '--fp16', '--keep-io-types', '--fp16-block', 'none', '-o', join(reg.work, 'pow9.fp16.onnx'), '--json');
    expect(r.exitCode, r.stdout).toBe(0);
    expect(r.json().fp16.float32Nodes).toEqual([]);
    const typo = await reg.cli('convert', source, '--fp16', '--fp16-block', 'Softmx,ReduceMaen,NotAnOp', '--json');
    expect(typo.exitCode).toBe(2);
    expect(typo.json().error.message).toBe('--fp16-block names ops the float16 rewrite never converts: Softmx (did you mean Softmax?), ReduceMaen (did you mean ReduceMean?), NotAnOp');
  });

  it('leaves ops without float16 kernels in float32 behind Casts', async () => {
    const reg = await makeRegistry();
    const model = deepMlp({ input: 8, hidden: 16, layers: 2, output: 4 });
    model.graph.nodes.push({ op: 'Greater', inputs: ['output', 'threshold'], outputs: ['positive'] });
    model.graph.initializers.push({ name: 'threshold', dataType: DataType.FLOAT, dims: [], raw: Buffer.alloc(4) });
    model.graph.outputs.push(valueInfoProto('positive', DataType.BOOL, ['batch', 4]));
    const source = writeModel(reg.work, 'mixed.onnx', model);
    const r = await reg.cli('convert', source, '--fp16', '--keep-io-types', '-o', join(reg.work, 'mixed.fp16.onnx'), '--json');
    expect(r.exitCode, r.stdout).toBe(0);
    expect(r.json().fp16.float32Nodes).toEqual([{ op: 'Greater', count: 1, why: 'float32 op' }]);
    expect(r.json().fp16.casts).toBeGreaterThanOrEqual(3);
    expect(r.json().accuracy.outputs.map((o: { name: string }) => o.name)).toEqual(['output', 'positive']);
  });

  it('closes both models\' workers when the comparison fails: nothing keeps the process alive', async () => {
    const reg = await makeRegistry();
    writeModel(reg.work, 'cw.onnx', constantWeights());
    // The built convertModel in a bare node process (no process.exit): it ends by itself only
    // if every worker it started was closed.
    const convertJs = pathToFileURL(join(import.meta.dirname, '../../dist/convert/convert.js')).href;
    // A script file, not `node -e`: workers inherit execArgv, and `--input-type` would break them.
    writeFileSync(join(reg.work, 'convert.mjs'), `import(${JSON.stringify(convertJs)}).then((m) => m.convertModel({ source: 'cw.onnx', fp16: true, tolerance: 0 }, { cwd: ${JSON.stringify(reg.work)}, env: {} }))
      .then(() => console.log('converted'), (e) => console.log(e.code));`);
    const child = spawn(process.execPath, ['convert.mjs'], { cwd: reg.work });
    let stdout = '';
    child.stdout.on('data', (d) => (stdout += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    const [code, signal] = await new Promise<[number | null, string | null]>((resolve) => child.on('close', (c, s) => resolve([c, s])));
    clearTimeout(timer);
    expect(signal, 'the process was still alive after 30 s').toBeNull();
    expect(code).toBe(0);
    expect(stdout.trim()).toBe('MAAS_ACCURACY_FAILED');
  }, 60_000);

  it('Ctrl-C mid-conversion says so, ends by the signal, and leaves no temporary folder', async () => {
    const reg = await makeRegistry();
    const source = writeModel(reg.work, 'big.onnx', deepMlp({ input: 256, hidden: 1024, layers: 4, output: 8, seed: 3 }));
    const tmp = join(reg.home, 'tmp');
    mkdirSync(tmp);
    const child = spawn(process.execPath, [BIN, 'convert', source, '--int8', '-o', join(reg.work, 'big.int8.onnx')], { cwd: reg.work, env: { ...reg.env, TMPDIR: tmp } });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    const closed = new Promise<[number | null, string | null]>((resolve) => child.on('close', (c, s) => resolve([c, s])));
    for (let waited = 0; readdirSync(tmp).length === 0 && waited < 30_000; waited += 20) await sleep(20);
    expect(readdirSync(tmp)).toEqual([expect.stringMatching(/^maas-convert-/)]);
    child.kill('SIGINT');
    const [code, signal] = await closed;
    expect(signal ?? code).toBe('SIGINT');
    expect(stderr).toContain('✖ interrupted (SIGINT)');
    expect(stderr).not.toMatch(/\n\s+at /);
    expect(readdirSync(tmp)).toEqual([]);
    expect(existsSync(join(reg.work, 'big.int8.onnx'))).toBe(false);
  }, 60_000);

  it('rounds to the nearest float16', () => {
    for (const v of [0, 1, -2, 0.5, 65504]) expect(halfToNumber(toHalf(v))).toBe(v);
    expect(halfToNumber(toHalf(3.14159))).toBe(3.140625); // nearer than 3.142578
    expect(halfToNumber(toHalf(1e-7))).toBeCloseTo(1.19e-7, 9); // subnormal
    expect(toHalf(70000)).toBe(0x7c00);
    expect(toHalf(-0)).toBe(0x8000);
  });
});
