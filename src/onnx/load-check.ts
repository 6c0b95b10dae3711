/**
 * Proves onnxruntime can load a model, in a child process: a native crash on a hostile file
 * kills the child, not the CLI. Weights are not optimised, so the check costs one load.
 */
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { MaasError } from '../core/errors.js';

const CHECK_TIMEOUT_MS = 10 * 60_000;

/** CommonJS run with `node -e`: argv[1] is onnxruntime-node's entry, argv[2] the model. */
const CHILD_SCRIPT = `
const [ortPath, modelPath] = process.argv.slice(1);
let ort;
try { ort = require(ortPath); } catch (e) { process.stdout.write(JSON.stringify({ runtime: String(e && e.message || e) })); process.exit(3); }
ort.InferenceSession.create(modelPath, { graphOptimizationLevel: 'disabled', logSeverityLevel: 3 }).then(
  async (s) => { process.stdout.write(JSON.stringify({ inputs: s.inputNames, outputs: s.outputNames })); await s.release(); process.exit(0); },
  (e) => { process.stdout.write(JSON.stringify({ error: String(e && e.message || e) })); process.exit(2); });
`;

export interface LoadCheck {
  inputs: string[];
  outputs: string[];
}

function resolveRuntime(): string {
  try {
    return createRequire(import.meta.url).resolve('onnxruntime-node');
  } catch (error) {
    throw new MaasError('MAAS_RUNTIME_UNAVAILABLE', 'onnxruntime-node is not installed', {
      hint: 'Reinstall maas (npm install) so its onnxruntime-node dependency is present.',
      cause: error,
    });
  }
}

export async function checkLoads(modelPath: string): Promise<LoadCheck> {
  const child = spawn(process.execPath, ['-e', CHILD_SCRIPT, resolveRuntime(), modelPath], {
    stdio: ['ignore', 'pipe', 'pipe'],
    timeout: CHECK_TIMEOUT_MS,
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (c, s) => resolve([c, s]));
  });
  let report: { inputs?: string[]; outputs?: string[]; error?: string; runtime?: string } = {};
  try {
    report = JSON.parse(stdout) as typeof report;
  } catch {
    /* the child died before reporting */
  }
  if (code === 0 && report.inputs && report.outputs) return { inputs: report.inputs, outputs: report.outputs };
  if (report.runtime) {
    throw new MaasError('MAAS_RUNTIME_UNAVAILABLE', `onnxruntime-node could not start: ${report.runtime}`, {
      hint: `Run \`maas doctor\` to see what this machine supports (${process.platform}-${process.arch}), or register with --no-load-check.`,
    });
  }
  const why = report.error
    ?? (signal ? `onnxruntime crashed (${signal}) while loading it` : `the load check exited with code ${code}: ${stderr.trim().split('\n').pop() ?? ''}`);
  throw new MaasError('MAAS_MODEL_INVALID', `onnxruntime cannot load ${modelPath}: ${why}`, {
    hint: 'Check the opset and operators against onnxruntime 1.30, or pass --no-load-check to register a model that needs custom operators.',
    details: { signal, exitCode: code },
  });
}
