/**
 * `npm run soak`: saturates `maas serve` on loopback for MAAS_SOAK_SECONDS (60 by default) with
 * 64 keep-alive connections sending batch-1 JSON infer requests to a small MLP (--max-queue 16,
 * so admission control turns some away), and prints p50/p99, throughput, the answers by status
 * and the server's RSS after warm-up and at the end. Exits 1 if anything but 200 and 503 came
 * back, a connection failed, or RSS grew 10 % or more after warm-up.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { mlp, randomFloats, writeModel } from '../fixtures/models.js';
import { soak } from '../test/soak/load.js';

const SECONDS = Number(process.env.MAAS_SOAK_SECONDS ?? 60);
const BIN = resolve(import.meta.dirname, '../bin/maas.js');

const home = mkdtempSync(join(tmpdir(), 'maas-soak-'));
try {
  const env = { ...process.env, HOME: home, GIT_CONFIG_NOSYSTEM: '1', GIT_CONFIG_GLOBAL: join(home, '.gitconfig'), NO_COLOR: '1', CI: '1', MAAS_NO_UPDATE_CHECK: '1' };
  const registry = join(home, 'registry');
  execFileSync(process.execPath, [BIN, 'init', registry, '--yes'], { env, stdio: 'ignore' });
  const model = writeModel(home, 'mlp.onnx', mlp({ inputSize: 64, hiddenSize: 256, outputSize: 8 }));
  execFileSync(process.execPath, [BIN, 'register', model, '--name', 'mlp'], { cwd: registry, env, stdio: 'ignore' });
  const data = Array.from(new Float32Array(randomFloats(64, 1).buffer));
  const body = Buffer.from(JSON.stringify({ inputs: [{ name: 'input', shape: [1, 64], datatype: 'FP32', data }] }));
  const connections = 64;
  console.log(`soak: ${SECONDS} s at saturation, ${connections} keep-alive connections, mlp 64→256→8, batch-1 JSON, --max-queue 16`);
  const result = await soak({ cwd: registry, env, model: 'mlp', body, seconds: SECONDS, connections, maxQueue: 16, log: (line) => console.log(`  ${line}`) });
  const { load } = result;
  const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(1)} MiB`;
  const unexpected = Object.keys(load.statuses).filter((s) => s !== '200' && s !== '503');
  console.log(`requests    ${load.requests} in ${load.seconds.toFixed(1)} s: ${(load.requests / load.seconds).toFixed(0)} req/s (${((load.statuses[200] ?? 0) / load.seconds).toFixed(0)} answered 200/s)`);
  console.log(`latency     p50 ${load.p50.toFixed(2)} ms, p99 ${load.p99.toFixed(2)} ms`);
  console.log(`statuses    ${JSON.stringify(load.statuses)}, connection errors ${load.connectionErrors}`);
  console.log(`RSS         ${mib(result.rssAfterWarmup)} after ${result.warmupSeconds} s warm-up → ${mib(result.rssAtEnd)} at the end (${(result.rssGrowth * 100).toFixed(1)} %; medians of the middle and last third of one reading a second)`);
  console.log(JSON.stringify({ soak: { seconds: SECONDS, connections, rps: load.requests / load.seconds, p50: load.p50, p99: load.p99, statuses: load.statuses, connectionErrors: load.connectionErrors, rssAfterWarmup: result.rssAfterWarmup, rssAtEnd: result.rssAtEnd } }));
  if (unexpected.length > 0 || load.connectionErrors > 0 || result.rssGrowth >= 0.1) {
    console.error('soak FAILED: ' + [unexpected.length ? `statuses ${unexpected.join(', ')}` : '', load.connectionErrors ? `${load.connectionErrors} connection errors` : '', result.rssGrowth >= 0.1 ? 'RSS grew 10 % or more' : ''].filter(Boolean).join('; '));
    process.exitCode = 1;
  }
} finally {
  rmSync(home, { recursive: true, force: true });
}
