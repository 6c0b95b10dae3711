/**
 * Load and soak: `maas serve` saturated on loopback for MAAS_SOAK_SECONDS (10 by default, as in
 * CI; `npm run soak` runs 60 and prints the numbers). Under saturation the only errors are
 * admission control's 503s, no connection fails, and memory stops growing after warm-up.
 */
import { describe, expect, it } from 'vitest';
import { mlp, randomFloats, writeModel } from '../../fixtures/models.js';
import { makeRegistry } from '../helpers/registry.js';
import { soak } from './load.js';

const SECONDS = Number(process.env.MAAS_SOAK_SECONDS ?? 10);

describe('soak', () => {
  it(`answers ${SECONDS} s of saturation with only 200s and 503s, and RSS stops growing`, async () => {
    const reg = await makeRegistry();
    const r = await reg.cli('register', writeModel(reg.work, 'm.onnx', mlp({ inputSize: 64, hiddenSize: 256, outputSize: 8 })), '--name', 'mlp');
    expect(r.exitCode, r.stderr).toBe(0);
    const data = Array.from(new Float32Array(randomFloats(64, 1).buffer));
    const body = Buffer.from(JSON.stringify({ inputs: [{ name: 'input', shape: [1, 64], datatype: 'FP32', data }] }));
    // More connections than the queue holds: admission control has to turn some away.
    const result = await soak({ cwd: reg.dir, env: reg.env, model: 'mlp', body, seconds: SECONDS, connections: 64, maxQueue: 16 });
    const { load } = result;
    console.log(`soak ${SECONDS} s: ${load.requests} requests, ${(load.requests / load.seconds).toFixed(0)} req/s, p50 ${load.p50.toFixed(1)} ms, p99 ${load.p99.toFixed(1)} ms, statuses ${JSON.stringify(load.statuses)}, RSS ${(result.rssAfterWarmup / 2 ** 20).toFixed(1)} → ${(result.rssAtEnd / 2 ** 20).toFixed(1)} MiB (medians of the middle and last third; readings ${result.rssSamples.map((r) => (r / 2 ** 20).toFixed(0)).join(' ')})`);
    expect(load.connectionErrors).toBe(0);
    expect(Object.keys(load.statuses).filter((s) => s !== '200' && s !== '503')).toEqual([]);
    expect(load.statuses[200]).toBeGreaterThan(0);
    expect(result.rssGrowth).toBeLessThan(0.1);
  }, (SECONDS * 1.25 + 70) * 1000);
});
