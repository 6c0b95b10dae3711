/**
 * Non-ONNX sources, exported by the user's own Python exporters when they are installed:
 * TorchScript through torch.onnx.export, Keras / TFLite / SavedModel through tf2onnx.
 * Without them, the exact command that installs them.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { extname, join } from 'node:path';
import type { Env } from '../core/context.js';
import { MaasError } from '../core/errors.js';

type Exporter = 'torch' | 'tf2onnx';

const EXPORTERS: Record<string, Exporter> = { '.pt': 'torch', '.pth': 'torch', '.torchscript': 'torch', '.h5': 'tf2onnx', '.keras': 'tf2onnx', '.tflite': 'tf2onnx', '.pb': 'tf2onnx' };

const INSTALL: Record<Exporter, string> = {
  torch: 'apt-get install python3-torch (Debian) or pip install torch',
  tf2onnx: 'pip install tensorflow tf2onnx',
};

/** Exports TorchScript with a dynamic batch dim; argv: model, output, comma-separated input shape. */
const TORCH_SCRIPT = `
import sys, torch
try:
    model = torch.jit.load(sys.argv[1])
except Exception as e:
    sys.exit("torch.jit.load failed (maas exports TorchScript files; save yours with torch.jit.save(torch.jit.script(model), path)): %s" % str(e).splitlines()[0])
model.eval()
shape = [int(d) for d in sys.argv[3].split(",")]
torch.onnx.export(model, torch.randn(*shape), sys.argv[2], input_names=["input"], output_names=["output"],
                  dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}}, opset_version=17)
`;

export function exporterFor(source: string): Exporter | undefined {
  if (existsSync(source) && statSync(source).isDirectory() && existsSync(join(source, 'saved_model.pb'))) return 'tf2onnx';
  return EXPORTERS[extname(source).toLowerCase()];
}

/** The first Python (MAAS_PYTHON, python3 on PATH, Debian's /usr/bin/python3) that imports the exporter. */
function pythonWith(module: string, env: Env): string | undefined {
  const candidates = [env.MAAS_PYTHON, 'python3', '/usr/bin/python3'].filter((c): c is string => Boolean(c));
  return candidates.find((python) => spawnSync(python, ['-c', `import ${module}`], { stdio: 'ignore', env: env as NodeJS.ProcessEnv }).status === 0);
}

export async function exportToOnnx(source: string, output: string, options: { inputShape?: string | undefined; env: Env }): Promise<{ exporter: Exporter; python: string }> {
  const exporter = exporterFor(source)!;
  const python = pythonWith(exporter, options.env);
  if (!python) {
    throw new MaasError('MAAS_MODEL_INVALID', `${source} is not ONNX, and no Python here has ${exporter} to export it`, {
      hint: `Install the exporter (${INSTALL[exporter]}), or set MAAS_PYTHON to a Python that has it; then run the same command again.`,
    });
  }
  let args: string[];
  if (exporter === 'torch') {
    if (!options.inputShape || !/^\d+(,\d+)*$/.test(options.inputShape)) {
      throw new MaasError('MAAS_USAGE', 'exporting a TorchScript model needs the shape of one input', { hint: 'Pass --input-shape, e.g. --input-shape 1,3,224,224 (the first dim becomes a dynamic batch dim).' });
    }
    args = ['-c', TORCH_SCRIPT, source, output, options.inputShape];
  } else {
    const ext = extname(source).toLowerCase();
    const kind = ext === '.tflite' ? '--tflite' : ext === '.h5' || ext === '.keras' ? '--keras' : '--saved-model';
    args = ['-m', 'tf2onnx.convert', kind, source, '--output', output, '--opset', '17'];
  }
  const child = spawn(python, args, { stdio: ['ignore', 'ignore', 'pipe'], env: options.env as NodeJS.ProcessEnv });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const code = await new Promise<number | null>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', resolve);
  });
  if (code !== 0 || !existsSync(output)) {
    const last = stderr.trim().split('\n').filter((l) => !/Warning|warnings.warn/.test(l)).pop() ?? `exit code ${code}`;
    throw new MaasError('MAAS_MODEL_INVALID', `${exporter} could not export ${source}: ${last}`, { hint: 'Export the model to ONNX from your own code, then convert or register the .onnx file.' });
  }
  return { exporter, python };
}
