import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { largeMatmul, writeModel } from '../../fixtures/models.js';
import { makeRegistry } from '../helpers/registry.js';
import { freePort } from '../helpers/oci-registry.js';
import { BIN, runCli } from '../helpers/run-cli.js';

const request = { id: 'one', inputs: [{ name: 'input', shape: [1, 4], datatype: 'FP32', data: [1, 1, 1, 1] }] };

describe('serve, predict and doctor from the command line', () => {
  it('predict: reads a request from a file or stdin and prints the response', async () => {
    const reg = await makeRegistry();
    await reg.cli('register', reg.fixture('mlp.onnx'));
    writeFileSync(join(reg.work, 'req.json'), JSON.stringify(request));
    const fromFile = await reg.cli('predict', 'mlp@1', '--input', join(reg.work, 'req.json'), '--json');
    expect(fromFile.exitCode, fromFile.stdout + fromFile.stderr).toBe(0);
    expect(fromFile.json()).toMatchObject({ model_name: 'mlp', model_version: '1', id: 'one', outputs: [{ name: 'output', shape: [1, 3], datatype: 'FP32' }] });
    expect(fromFile.json().outputs[0].data[0]).toBeCloseTo(0.3632404, 6);
    const fromStdin = await runCli(['predict', 'mlp', '--input', '-'], { cwd: reg.dir, env: reg.env, input: JSON.stringify(request) });
    expect(JSON.parse(fromStdin.stdout)).toEqual(fromFile.json());
    const bad = await reg.cli('predict', 'mlp', '--input', join(reg.work, 'req.json').replace('req', 'nope'));
    expect(bad.exitCode).toBe(4);
    writeFileSync(join(reg.work, 'bad.json'), JSON.stringify({ inputs: [{ ...request.inputs[0], datatype: 'INT8' }] }));
    const wrong = await reg.cli('predict', 'mlp', '--input', join(reg.work, 'bad.json'));
    expect(wrong.exitCode).toBe(2);
    expect(wrong.stderr).toContain("input 'input' has datatype INT8, the model expects FP32");
    expect(wrong.stderr).toContain('`maas show mlp` lists the inputs it takes');
  });

  it('serve: prints its address as JSON, answers, and exits 0 on SIGTERM', async () => {
    const reg = await makeRegistry();
    await reg.cli('register', reg.fixture('mlp.onnx'), '--alias', 'prod');
    const child = spawn(process.execPath, [BIN, 'serve', 'mlp@prod', '--port', '0', '--device', 'cpu', '--json', '--json-logs'], { cwd: reg.dir, env: reg.env });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    const started = await new Promise<{ url: string; models: unknown[] }>((resolve, reject) => {
      let out = '';
      child.stdout.on('data', (d) => {
        out += d;
        if (out.includes('\n')) resolve(JSON.parse(out));
      });
      child.once('exit', () => reject(new Error(`serve exited: ${stderr}`)));
    });
    expect(started.models).toEqual([{ name: 'mlp', versions: [1], aliases: { prod: 1 }, provider: 'cpu' }]);
    const res = await fetch(`${started.url}/v2/models/mlp/versions/prod/infer`, { method: 'POST', body: JSON.stringify(request) });
    expect(res.status).toBe(200);
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    const events = stderr.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l));
    expect(events).toContainEqual(expect.objectContaining({ event: 'loaded', model: 'mlp', version: 1, provider: 'cpu' }));
    expect(events).toContainEqual(expect.objectContaining({ event: 'request', method: 'POST', path: '/v2/models/mlp/versions/prod/infer', status: 200, model: 'mlp', version: '1' }));
    // --json-logs: every line is JSON, the shutdown too.
    expect(events.length).toBe(stderr.split('\n').filter(Boolean).length);
    expect(events.map((e) => e.event).slice(-2)).toEqual(['stopping', 'stopped']);
    expect(events.at(-2)).toMatchObject({ signal: 'SIGTERM' });
  });

  it('serve: a signal while the models still load stops it cleanly, exit 0', async () => {
    const reg = await makeRegistry();
    for (const name of ['a', 'b', 'c']) expect((await reg.cli('register', writeModel(reg.work, `${name}.onnx`, largeMatmul(32 << 20)), '--name', name)).exitCode).toBe(0);
    const port = await freePort();
    for (const signal of ['SIGTERM', 'SIGINT'] as const) {
      const child = spawn(process.execPath, [BIN, 'serve', '--port', String(port), '--device', 'cpu'], { cwd: reg.dir, env: reg.env });
      let stderr = '';
      child.stderr.on('data', (d) => (stderr += d));
      const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
      // Liveness answers as soon as the port is bound, readiness only once every model loaded.
      let live = 0;
      while (live !== 200) live = await fetch(`http://127.0.0.1:${port}/v2/health/live`).then((r) => r.status, () => 0);
      expect((await fetch(`http://127.0.0.1:${port}/v2/health/ready`)).status).toBe(503);
      child.kill(signal);
      expect(await exited, stderr).toBe(0);
      expect(stderr).toContain(`${signal}: stopped while the models loaded`);
      expect(stderr).not.toContain('interrupted');
    }
  });

  it('serve --device cuda fails at start with the reason and the fix when there is no CUDA provider', async () => {
    const reg = await makeRegistry();
    await reg.cli('register', reg.fixture('mlp.onnx'));
    const r = await reg.cli('serve', '--device', 'cuda', '--port', '0', '--json');
    expect(r.exitCode).toBe(3);
    expect(r.json().error).toMatchObject({ code: 'MAAS_DEVICE_UNAVAILABLE', message: expect.stringContaining('cannot load mlp@1 on cuda'), hint: expect.stringContaining('ONNXRUNTIME_NODE_INSTALL=cuda12') });
  });

  it('doctor: lists the providers and what --device auto picks', async () => {
    const reg = await makeRegistry();
    const r = await reg.cli('doctor', '--json');
    expect(r.exitCode).toBe(0);
    const result = r.json();
    expect(result.providers.map((p: { name: string }) => p.name)).toEqual(['cpu', 'webgpu', 'cuda']);
    expect(result.providers[0]).toMatchObject({ name: 'cpu', available: true });
    expect(['cpu', 'cuda', 'webgpu']).toContain(result.autoDevice);
    for (const p of result.providers.filter((p: { available: boolean }) => !p.available)) expect(p.fix).toEqual(expect.any(String));
    const human = await reg.cli('doctor');
    expect(human.stdout).toMatch(/cpu\s+yes/);
  });
});
