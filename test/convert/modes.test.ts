/**
 * Every conversion mode on graphs shaped like real ones: float16 as a type-consistent rewrite
 * (Constant-node weights, If subgraphs, weights shared by float16 and float32 ops, the block
 * list), int8 dynamic / static (calibrated QDQ) / weight-only, int4 (MatMulNBits) in every block
 * size and accuracy level onnxruntime runs, and what happens when a rewrite goes wrong.
 */
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { constantWeights, convNet, deepMlp, mlp, randomFloats, writeModel } from '../../fixtures/models.js';
import { checkRewrite } from '../../src/convert/convert.js';
import { INT4_BLOCK_SIZES } from '../../src/convert/config.js';
import { modelProto, valueInfoProto, writeMessage } from '../../src/onnx/build.js';
import { DataType } from '../../src/onnx/dtypes.js';
import { type EditModel, allGraphs, openModel } from '../../src/onnx/edit.js';
import { packInt4 } from '../../src/onnx/int4.js';
import { optimizeModel } from '../../src/onnx/load-check.js';
import { quantizeInt8 } from '../../src/onnx/quantize.js';
import { makeRegistry } from '../helpers/registry.js';
import { useTempDir } from '../helpers/temp.js';

/** Op types of a model, subgraphs included, with their domain when it is not the default. */
function opsOf(path: string): string[] {
  const model = openModel(path);
  try {
    return [...allGraphs(model.graph)].flatMap(({ graph }) => graph.nodes.map((n) => (n.domain ? `${n.domain}:${n.op}` : n.op)));
  } finally {
    model.close();
  }
}

/** What onnxruntime makes of a model at the `extended` level: the fused ops serving runs. */
async function fusedOps(path: string): Promise<string[]> {
  const out = `${path}.extended.onnx`;
  await optimizeModel(path, out, 'extended');
  return opsOf(out);
}

function withModel<T>(path: string, use: (model: EditModel) => T): T {
  const model = openModel(path);
  try {
    return use(model);
  } finally {
    model.close();
  }
}

/** Calibration requests for convNet: seeded images. */
function calibration(dir: string, count: number): string {
  const lines = Array.from({ length: count }, (_, i) => JSON.stringify({ inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 3, 16, 16], data: Array.from(new Float32Array(randomFloats(768, 300 + i, 1).buffer)) }] }));
  const path = join(dir, 'calibration.jsonl');
  writeFileSync(path, `${lines.join('\n')}\n`);
  return path;
}

describe('--fp16, type-consistent', () => {
  it('turns Constant-node weights and those in If branches into float16, and the model loads and agrees', async () => {
    const reg = await makeRegistry();
    const source = writeModel(reg.work, 'cw.onnx', constantWeights({ branches: true }));
    const out = join(reg.work, 'cw.fp16.onnx');
    const r = await reg.cli('convert', source, '--fp16', '--keep-io-types', '--no-latency', '-o', out, '--json');
    expect(r.exitCode, r.stdout + r.stderr).toBe(0);
    expect(r.json().fp16).toMatchObject({ initializers: 4, subgraphs: 2 });
    expect(r.json().accuracy.passed).toBe(true);
    const constants = withModel(out, (model) => [...allGraphs(model.graph)].flatMap(({ graph, outer }) => graph.nodes.filter((n) => n.op === 'Constant').map((n) => {
      const value = n.attributes[0]!.ref!.values[0]!;
      return { depth: outer.length, type: value.kind === 'tensor' ? value.value.dataType : undefined };
    })));
    expect(constants).toHaveLength(4);
    expect(constants.every((c) => c.type === DataType.FLOAT16)).toBe(true);
    expect(constants.filter((c) => c.depth === 1)).toHaveLength(2);
    // The branches hand back float32, as the If declares; the model's output stays float32 too.
    const session = await ort.InferenceSession.create(out);
    const result = await session.run({ input: new ort.Tensor('float32', new Float32Array(8).fill(0.5), [2, 4]), flag: new ort.Tensor('bool', [true], []) });
    expect(result.output!.type).toBe('float32');
  });

  it('casts a weight shared by a float16 op and a blocked float32 op once for each', async () => {
    const reg = await makeRegistry();
    const w = { name: 'w', dataType: DataType.FLOAT, dims: [4, 4], raw: randomFloats(16, 7) };
    const path = join(reg.work, 'shared.onnx');
    writeMessage(path, modelProto({
      graph: {
        name: 'shared',
        nodes: [
          { op: 'MatMul', inputs: ['x', 'w'], outputs: ['y'] },
          { op: 'Softmax', inputs: ['w'], outputs: ['p'], attributes: { axis: -1n } },
          { op: 'MatMul', inputs: ['y', 'p'], outputs: ['output'] },
        ],
        initializers: [w],
        inputs: [valueInfoProto('x', DataType.FLOAT, ['batch', 4])],
        outputs: [valueInfoProto('output', DataType.FLOAT, ['batch', 4])],
      },
    }));
    const out = join(reg.work, 'shared.fp16.onnx');
    const r = await reg.cli('convert', path, '--fp16', '--keep-io-types', '--no-latency', '-o', out, '--json');
    expect(r.exitCode, r.stdout + r.stderr).toBe(0);
    expect(r.json().fp16.float32Nodes).toEqual([{ op: 'Softmax', count: 1, why: 'blocked' }]);
    expect(r.json().fp16.blocked).toEqual(['Softmax']);
    withModel(out, (model) => {
      const weight = model.graph.initializers.find((t) => t.name === 'w')!;
      expect(weight.dataType).toBe(DataType.FLOAT16);
      const casts = model.graph.nodes.filter((n) => n.op === 'Cast');
      // w → float32 for Softmax, p → float16 for the second MatMul, the float16 output → float32.
      expect(casts.map((c) => c.inputs[0])).toEqual(expect.arrayContaining(['w', 'p']));
      expect(model.graph.nodes.find((n) => n.op === 'Softmax')!.inputs[0]).not.toBe('w');
    });
    const unblocked = await reg.cli('convert', path, '--fp16', '--fp16-block', 'none', '--no-latency', '-o', join(reg.work, 'shared.all.onnx'), '--json');
    expect(unblocked.exitCode, unblocked.stdout).toBe(0);
    expect(unblocked.json().fp16.float32Nodes).toEqual([]);
    expect((await reg.cli('convert', path, '--fp16', '--fp16-block', 'soft max')).exitCode).toBe(2);
  });

  it('never writes a rewrite onnxruntime refuses, and names the node, the op and the rewrite', async () => {
    const dir = useTempDir();
    const bad = join(dir, 'bad.onnx');
    // Add bound to float16 and float32 at once: what a rewrite that forgot a Cast would write.
    writeMessage(bad, modelProto({
      graph: {
        name: 'bad',
        nodes: [{ op: 'Add', name: 'mixed_add', inputs: ['a', 'b'], outputs: ['c'] }],
        initializers: [],
        inputs: [valueInfoProto('a', DataType.FLOAT16, [2]), valueInfoProto('b', DataType.FLOAT, [2])],
        outputs: [valueInfoProto('c', DataType.FLOAT, [2])],
      },
    }));
    const error = await checkRewrite(bad, 'float16', '--fp16-block').then(() => undefined, (e: unknown) => e as { code: string; message: string; hint: string });
    expect(error?.code).toBe('MAAS_CONVERSION_FAILED');
    expect(error?.message).toMatch(/the float16 rewrite produced a graph onnxruntime refuses at node mixed_add/);
    expect(error?.hint).toMatch(/maas defect, not your model; nothing was written/);
  });
});

describe('--int8', () => {
  it('dynamic: MatMulInteger on int8 weights, which onnxruntime fuses, with the latency change reported', async () => {
    const reg = await makeRegistry();
    const source = writeModel(reg.work, 'deep.onnx', deepMlp({ input: 64, hidden: 256, layers: 3, output: 8, seed: 3 }));
    const out = join(reg.work, 'deep.int8.onnx');
    const r = await reg.cli('convert', source, '--int8', '-o', out);
    expect(r.exitCode, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/steps {8}int8 dynamic/);
    expect(r.stdout).toMatch(/latency {6}p50 [\d.]+ ms → [\d.]+ ms \([\d.]+×\) at batch 1 on this machine's cpu/);
    expect(opsOf(out)).toEqual(expect.arrayContaining(['DynamicQuantizeLinear', 'MatMulInteger', 'Cast', 'Mul']));
    expect(opsOf(out)).not.toContain('MatMul');
    expect(await fusedOps(out)).toContain('com.microsoft:DynamicQuantizeMatMul');
  });

  it('dynamic: Conv through ConvInteger and a transposed Gemm, per channel, within tolerance', async () => {
    const reg = await makeRegistry();
    const source = writeModel(reg.work, 'cnn.onnx', convNet());
    const r = await reg.cli('convert', source, '--int8', 'dynamic', '--no-latency', '-o', join(reg.work, 'cnn.int8.onnx'), '--json');
    expect(r.exitCode, r.stdout + r.stderr).toBe(0);
    expect(r.json().quantize.quantized.map((q: { name: string; op: string }) => `${q.op}:${q.name}`)).toEqual(['Conv:c1_w', 'Conv:c2_w', 'Gemm:fc_w']);
    expect(opsOf(join(reg.work, 'cnn.int8.onnx'))).toEqual(expect.arrayContaining(['ConvInteger', 'MatMulInteger']));
    expect(r.json().accuracy.outputs[0].cosine).toBeGreaterThan(0.999);
  });

  it('keeps weights to 7 bits where the CPU would saturate full-range int8', () => {
    const dir = useTempDir();
    const path = writeModel(dir, 'deep.onnx', deepMlp({ input: 32, hidden: 64, layers: 2, output: 4, seed: 8 }));
    withModel(path, (model) => {
      const report = quantizeInt8(model, { mode: 'dynamic', reduceRange: true });
      expect(report.weightBits).toBe(7);
      const int8 = model.graph.initializers.filter((t) => t.dataType === DataType.INT8 && t.dims.length === 2);
      expect(int8.length).toBe(2);
      for (const t of int8) expect(Math.max(...Array.from(new Int8Array(t.raw!.buffer, t.raw!.byteOffset, t.raw!.length), Math.abs))).toBe(63);
    });
  });

  it('static: QDQ from calibration data that onnxruntime fuses into QLinearConv, checked on that data', async () => {
    const reg = await makeRegistry();
    const source = writeModel(reg.work, 'cnn.onnx', convNet());
    const data = calibration(reg.work, 12);
    for (const method of ['minmax', 'percentile']) {
      const out = join(reg.work, `cnn.${method}.onnx`);
      const r = await reg.cli('convert', source, '--int8', 'static', '--calibrate', data, '--calibration', method, '--no-latency', '-o', out, '--json');
      expect(r.exitCode, r.stdout + r.stderr).toBe(0);
      expect(r.json().steps[0]).toMatch(/^int8 static \(QDQ/);
      expect(r.json().quantize.activations).toBeGreaterThanOrEqual(4);
      expect(r.json().accuracy).toMatchObject({ passed: true, samples: 12 });
      expect(opsOf(out)).toEqual(expect.arrayContaining(['QuantizeLinear', 'DequantizeLinear', 'Conv']));
      expect((await fusedOps(out)).filter((op) => op === 'QLinearConv')).toHaveLength(2);
    }
    const missing = await reg.cli('convert', source, '--int8', 'static');
    expect(missing.exitCode).toBe(2);
    expect(missing.stderr).toMatch(/needs calibration data[\s\S]*--calibrate samples\.jsonl/);
    expect((await reg.cli('convert', source, '--int8', '--calibrate', data)).exitCode).toBe(2);
    writeFileSync(join(reg.work, 'wrong.jsonl'), JSON.stringify({ inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 3, 8, 8], data: Array(192).fill(0) }] }));
    const wrong = await reg.cli('convert', source, '--int8', 'static', '--calibrate', join(reg.work, 'wrong.jsonl'));
    expect(wrong.exitCode).toBe(2);
    expect(wrong.stderr).toMatch(/calibration request 1 in .*wrong\.jsonl/);
    expect((await reg.cli('convert', source, '--int8', 'fast')).exitCode).toBe(2);
  });

  it('weight-only keeps the float ops behind DequantizeLinear, and quantizes Constant-node weights too', async () => {
    const reg = await makeRegistry();
    const source = writeModel(reg.work, 'cw.onnx', constantWeights({ branches: true }));
    const out = join(reg.work, 'cw.wo.onnx');
    const r = await reg.cli('convert', source, '--int8', 'weight-only', '--no-latency', '--force', '-o', out, '--json');
    expect(r.exitCode, r.stdout + r.stderr).toBe(0);
    expect(r.json().quantize.quantized).toEqual([{ name: 'w', op: 'MatMul', dims: [4, 8], axis: 1 }]);
    expect(opsOf(out)).toEqual(expect.arrayContaining(['DequantizeLinear', 'MatMul']));
    expect(opsOf(out).filter((op) => op === 'Constant')).toHaveLength(3); // b and the branches' shifts; w is int8 now
  });

  it('refuses a model whose opset has no DynamicQuantizeLinear, with the fix', async () => {
    const reg = await makeRegistry();
    const old = join(reg.work, 'old.onnx');
    writeMessage(old, modelProto({ ...mlp().model, opset: 10 }));
    const r = await reg.cli('convert', old, '--int8');
    expect(r.exitCode).toBe(7);
    expect(r.stderr).toMatch(/int8 dynamic needs opset 11 or later[\s\S]*opset_version/);
  });
});

describe('--int4', () => {
  it('packs 4-bit blocks the way MatMulNBits reads them', () => {
    const k = 40;
    const n = 3;
    const values = new Float32Array(randomFloats(k * n, 21, 1).buffer);
    const { b, scales, zeroPoints, blocks } = packInt4(values, k, n, 16);
    expect(blocks).toBe(3);
    for (let col = 0; col < n; col++) {
      for (let row = 0; row < k; row++) {
        const blk = Math.floor(row / 16);
        const byte = b[(col * blocks + blk) * 8 + ((row % 16) >> 1)]!;
        const q = row % 2 ? byte >> 4 : byte & 15;
        const zpByte = zeroPoints[col * 2 + (blk >> 1)]!;
        const zp = blk % 2 ? zpByte >> 4 : zpByte & 15;
        const scale = scales[col * blocks + blk]!;
        expect(Math.abs((q - zp) * scale - values[row * n + col]!)).toBeLessThanOrEqual(scale * 1.5);
      }
    }
  });

  it('runs in every block size and accuracy level onnxruntime takes, about 6× smaller', async () => {
    const reg = await makeRegistry();
    const source = writeModel(reg.work, 'deep.onnx', deepMlp({ input: 256, hidden: 256, layers: 3, output: 256, seed: 4 }));
    const out = join(reg.work, 'deep.int4.onnx');
    const r = await reg.cli('convert', source, '--int4', '--tolerance', '0.3', '--no-latency', '-o', out, '--json');
    expect(r.exitCode, r.stdout + r.stderr).toBe(0);
    expect(r.json().int4).toMatchObject({ blockSize: 32, accuracyLevel: 4 });
    expect(r.json().output.size * 5.5).toBeLessThan(r.json().source.size);
    expect(opsOf(out).filter((op) => op === 'com.microsoft:MatMulNBits')).toHaveLength(3);
    for (const block of INT4_BLOCK_SIZES) {
      const each = await reg.cli('convert', source, '--int4', '--int4-block', String(block), '--int4-accuracy', String(block % 5), '--tolerance', '0.3', '--no-latency', '-o', join(reg.work, `b${block}.onnx`), '--json');
      expect(each.exitCode, `${block}: ${each.stdout}`).toBe(0);
      expect(existsSync(join(reg.work, `b${block}.onnx`))).toBe(true);
    }
    expect((await reg.cli('convert', source, '--int4', '--int4-block', '48')).exitCode).toBe(2);
    expect((await reg.cli('convert', source, '--int4', '--int8')).exitCode).toBe(2);
    const small = await reg.cli('convert', writeModel(reg.work, 'small.onnx', mlp()), '--int4');
    expect(small.exitCode).toBe(7);
    expect(small.stderr).toMatch(/nothing to quantize to int4/);
  });
});
