import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { modelProto, writeMessage } from '../../src/onnx/build.js';
import { DataType } from '../../src/onnx/dtypes.js';
import { inspectModel, paramSize } from '../../src/onnx/inspect.js';
import { MaasError } from '../../src/core/errors.js';
import { constantWeights, mlp, multiIo, randomFloats, writeModel } from '../../fixtures/models.js';
import * as ort from 'onnxruntime-node';
import { FIXTURES } from '../helpers/registry.js';
import { useTempDir } from '../helpers/temp.js';

describe('inspectModel', () => {
  it('reads the signature with symbolic dims, opsets and parameter count of the MLP fixture', () => {
    const info = inspectModel(join(FIXTURES, 'mlp.onnx'));
    expect(info.signature).toEqual({
      inputs: [{ name: 'input', dtype: 'float32', shape: ['batch', 4] }],
      outputs: [{ name: 'output', dtype: 'float32', shape: ['batch', 3] }],
    });
    expect(info.opsetImports).toEqual([{ domain: '', version: 17 }]);
    expect(info.irVersion).toBe(8);
    expect(info.parameterCount).toBe(4 * 8 + 8 + 8 * 3 + 3);
    expect(info.precisions).toEqual(['float32']);
    expect(info.producer).toEqual({ name: 'maas-fixtures', version: '1' });
    expect(info.graphFingerprint).toMatch(/^sha256:[0-9a-f]{64}$/);
  });

  it('counts weights stored as Constant nodes, in subgraphs too, and their precisions', async () => {
    const dir = useTempDir();
    const flat = inspectModel(writeModel(dir, 'cw.onnx', constantWeights()));
    expect(flat.initializerCount).toBe(0);
    expect(flat.parameterCount).toBe(4 * 8 + 8);
    expect(flat.precisions).toEqual(['float32']);
    // one Constant [8] in each If branch
    const branched = writeModel(dir, 'cwb.onnx', constantWeights({ branches: true }));
    expect(inspectModel(branched).parameterCount).toBe(4 * 8 + 8 + 8 + 8);
    expect((await ort.InferenceSession.create(branched)).inputNames).toEqual(['input', 'flag']);
    // value_ints counts as its elements, in its own precision
    const model = constantWeights();
    model.graph.nodes.push({ op: 'Constant', inputs: [], outputs: ['shape'], attributes: { value_ints: [1, -1, 2, 4, 5, 6, 7, 8, 9, 10] } });
    const withInts = inspectModel(writeModel(dir, 'ints.onnx', model));
    expect(withInts.parameterCount).toBe(4 * 8 + 8 + 10);
    expect(withInts.precisions).toEqual(['float32', 'int64']);
  });

  it('refuses a graph with a cycle, and a node without an op_type', () => {
    const dir = useTempDir();
    const cyclic = writeModel(dir, 'cycle.onnx', {
      graph: { name: 'g', nodes: [{ op: 'Relu', inputs: ['b'], outputs: ['a'] }, { op: 'Relu', inputs: ['a'], outputs: ['b'], name: 'second' }], initializers: [], inputs: [], outputs: [] },
    });
    expect(() => inspectModel(cyclic)).toThrow(/graph 'g' has a cycle \(through Relu node/);
    const noOp = constantWeights();
    noOp.graph.nodes[2]!.op = '';
    expect(() => inspectModel(writeModel(dir, 'noop.onnx', noOp))).toThrow(/a node has no op_type/);
  });

  it('reads int64 and bool IO and leaves initializers out of the inputs', () => {
    const info = inspectModel(join(FIXTURES, 'multi_io.onnx'));
    expect(info.signature.inputs.map((i) => `${i.name}:${i.dtype}`)).toEqual(['features:float32', 'ids:int64']);
    expect(info.signature.outputs.map((o) => `${o.name}:${o.dtype}`)).toEqual(['positive:bool', 'ids_doubled:int64']);
  });

  it('keeps the graph fingerprint across a new doc string and producer, changes it for a changed weight', () => {
    const dir = useTempDir();
    const base = inspectModel(writeModel(dir, 'a.onnx', mlp()));
    const redoc = inspectModel(writeModel(dir, 'b.onnx', mlp({ docString: 'retitled', producerName: 'pytorch' })));
    const reweighted = inspectModel(writeModel(dir, 'c.onnx', mlp({ seed: 43 })));
    expect(redoc.graphFingerprint).toBe(base.graphFingerprint);
    expect(reweighted.graphFingerprint).not.toBe(base.graphFingerprint);
    expect(reweighted.signature).toEqual(base.signature);
  });

  it('hashes external data into the fingerprint and lists its files', () => {
    const info = inspectModel(join(FIXTURES, 'mlp_external.onnx'));
    expect(info.externalDataFiles).toEqual(['mlp_external.onnx.data']);
    const dir = useTempDir();
    const path = writeModel(dir, 'ext.onnx', mlp({ externalData: 'ext.data', seed: 7 }), 'ext.data');
    expect(inspectModel(path).graphFingerprint).toBe(info.graphFingerprint);
    writeFileSync(join(dir, 'ext.data'), randomFloats(67, 99));
    expect(inspectModel(path).graphFingerprint).not.toBe(info.graphFingerprint);
  });

  it('names a missing or truncated external data file', () => {
    const dir = useTempDir();
    const path = writeModel(dir, 'ext.onnx', mlp({ externalData: 'ext.data' }));
    expect(() => inspectModel(path)).toThrow(/external data file 'ext.data' is missing/);
    writeFileSync(join(dir, 'ext.data'), Buffer.alloc(10));
    expect(() => inspectModel(path)).toThrow(/past the end of 'ext.data'/);
  });

  it('refuses external data that points outside the model folder', () => {
    const dir = useTempDir();
    const path = writeModel(dir, 'evil.onnx', mlp({ externalData: '../../etc/passwd' }));
    const error = (() => { try { inspectModel(path); } catch (e) { return e; } })() as MaasError;
    expect(error.code).toBe('MAAS_MODEL_INVALID');
    expect(error.message).toMatch(/outside the model's folder/);
  });

  it('fails with MAAS_MODEL_INVALID on empty, garbage and truncated files', () => {
    const dir = useTempDir();
    const cases: [string, Buffer][] = [
      ['empty.onnx', Buffer.alloc(0)],
      ['text.onnx', Buffer.from('this is not a model\n')],
      ['truncated.onnx', Buffer.from(modelProto(multiIo()).toBuffer().subarray(0, 100))],
    ];
    for (const [name, bytes] of cases) {
      writeFileSync(join(dir, name), bytes);
      expect(() => inspectModel(join(dir, name)), name).toThrow(MaasError);
    }
  });

  it('fingerprints float_data initializers as well as raw_data ones', () => {
    const dir = useTempDir();
    const withThreshold = (floatData: number[]) => {
      const model = multiIo();
      model.graph.initializers = [{ name: 'threshold', dataType: DataType.FLOAT, dims: [], floatData }];
      writeMessage(join(dir, 'm.onnx'), modelProto(model));
      return inspectModel(join(dir, 'm.onnx'));
    };
    const zero = withThreshold([0]);
    expect(zero.parameterCount).toBe(1);
    expect(withThreshold([0]).graphFingerprint).toBe(zero.graphFingerprint);
    expect(withThreshold([0.5]).graphFingerprint).not.toBe(zero.graphFingerprint);
  });

  it('formats ModelPack paramSize', () => {
    expect(paramSize(67)).toBe('67');
    expect(paramSize(6_700_000_000)).toBe('6.7B');
    expect(paramSize(125_000_000)).toBe('125M');
  });
});
