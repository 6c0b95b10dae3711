/**
 * Non-ONNX sources through the user's own exporter: Debian's python3-torch (installed by
 * .ci/run). Without a Python that has torch these tests are skipped, saying so.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { makeRegistry } from '../helpers/registry.js';

const PYTHON = [process.env.MAAS_PYTHON, 'python3', '/usr/bin/python3'].find((p) => p && spawnSync(p, ['-c', 'import torch'], { stdio: 'ignore' }).status === 0);
if (!PYTHON && !process.env.MAAS_REQUIRE_TOOLS) console.warn('SKIPPED: PyTorch export tests need a Python with torch (apt-get install python3-torch)');

const MAKE_TORCHSCRIPT = `
import sys, torch
torch.manual_seed(0)
model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))
torch.jit.save(torch.jit.script(model), sys.argv[1])
torch.save(model.state_dict(), sys.argv[2])
`;

describe.skipIf(!PYTHON && !process.env.MAAS_REQUIRE_TOOLS)('PyTorch sources', () => {
  it('exports TorchScript with torch.onnx, converts and registers it with its source recorded', async () => {
    const reg = await makeRegistry();
    const [scripted, stateDict] = [join(reg.work, 'net.pt'), join(reg.work, 'weights.pth')];
    execFileSync(PYTHON ?? 'python3', ['-c', MAKE_TORCHSCRIPT, scripted, stateDict]);

    const exported = await reg.cli('convert', scripted, '--input-shape', '1,4', '--json');
    expect(exported.exitCode, exported.stdout).toBe(0);
    expect(exported.json()).toMatchObject({ steps: ['export with torch'], exportedFrom: { path: scripted, exporter: 'torch' }, output: { path: join(reg.dir, 'net.onnx') } });
    const session = await ort.InferenceSession.create(join(reg.dir, 'net.onnx'));
    const out = await session.run({ input: new ort.Tensor('float32', new Float32Array(8), [2, 4]) });
    expect(out.output!.dims).toEqual([2, 3]); // the batch dim is dynamic

    const registered = await reg.cli('register', scripted, '--input-shape', '1,4', '--fp16', '--keep-io-types', '--json');
    expect(registered.exitCode, registered.stdout).toBe(0);
    expect(registered.json()).toMatchObject({ name: 'net', version: 1, files: [{ path: 'net.fp16.onnx' }] });
    const show = (await reg.cli('show', 'net', '--json')).json();
    expect(show.conversion).toMatchObject({ source: { file: 'net.pt' }, steps: ['export with torch', 'fp16 (float32 inputs and outputs)'], accuracy: { passed: true } });

    const noShape = await reg.cli('convert', scripted);
    expect(noShape.exitCode).toBe(2);
    expect(noShape.stderr).toContain('--input-shape');
    const weightsOnly = await reg.cli('convert', stateDict, '--input-shape', '1,4');
    expect(weightsOnly.exitCode).toBe(7);
    expect(weightsOnly.stderr).toContain('torch.jit.load failed');
  });
});
