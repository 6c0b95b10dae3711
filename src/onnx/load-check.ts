/**
 * onnxruntime in a child process, for what must not take the CLI down: proving a model loads
 * (a native crash on a hostile file kills the child, not maas) and writing ORT-optimised graphs.
 */
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { MaasError } from '../core/errors.js';

const CHILD_TIMEOUT_MS = 10 * 60_000;

/** CommonJS run with `node -e`: argv[1] is onnxruntime-node's entry, argv[2] the model, argv[3] the options (JSON). */
const CHILD_SCRIPT = `
const [ortPath, modelPath, optionsJson] = process.argv.slice(1);
let ort;
try { ort = require(ortPath); } catch (e) { process.stdout.write(JSON.stringify({ runtime: String(e && e.message || e) })); process.exit(3); }
ort.env.logLevel = 'fatal';
ort.InferenceSession.create(modelPath, { logSeverityLevel: 4, ...JSON.parse(optionsJson) }).then(
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

/** Creates one session in a child process with the given options; fails with the reason. */
async function sessionInChild(modelPath: string, sessionOptions: Record<string, unknown>, action: string): Promise<LoadCheck> {
  const child = spawn(process.execPath, ['-e', CHILD_SCRIPT, resolveRuntime(), modelPath, JSON.stringify(sessionOptions)], {
    stdio: ['ignore', 'pipe', 'pipe'],
    timeout: CHILD_TIMEOUT_MS,
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
    ?? (signal ? `onnxruntime crashed (${signal}) while loading it` : `the child exited with code ${code}: ${stderr.trim().split('\n').pop() ?? ''}`);
  throw new MaasError('MAAS_MODEL_INVALID', `onnxruntime cannot ${action} ${modelPath}: ${why}`, {
    hint: 'Check the opset and operators against onnxruntime 1.30, or pass --no-load-check to register a model that needs custom operators.',
    details: { signal, exitCode: code },
  });
}

/** Loads the model without optimising it: the check costs one load. */
export function checkLoads(modelPath: string): Promise<LoadCheck> {
  return sessionInChild(modelPath, { graphOptimizationLevel: 'disabled' }, 'load');
}

/** Loads the model as serving will: every graph optimisation on, so what fusions make of it is checked too. */
export function checkServes(modelPath: string): Promise<LoadCheck> {
  return sessionInChild(modelPath, { graphOptimizationLevel: 'all' }, 'load');
}

/** onnxruntime's levels that give a portable graph (convert/config.ts lists them for --optimize). */
export type OptimizeLevel = 'basic' | 'extended';

/**
 * onnxruntime's own graph optimiser, saved through the session's optimized-model file option.
 * Only `basic` and `extended`: `all` adds layout rewrites tied to the machine that ran them.
 */
export async function optimizeModel(input: string, output: string, level: OptimizeLevel): Promise<void> {
  await sessionInChild(input, { graphOptimizationLevel: level, optimizedModelFilePath: output }, 'optimise');
}
