import { defineCommand, option } from '../core/define-command.js';
import { MaasError } from '../core/errors.js';
import { DEVICES } from '../registry/config.js';
import { renderKServeExport } from '../ui/render/kserve.js';
import { renderTritonExport } from '../ui/render/triton.js';
import { byteProgress, modelcarBaseOption, plainHttpOption, registryOptions } from './shared.js';

/** `--cpu 2`, `--memory 4Gi`: Kubernetes quantities, passed through as written once they look like one. */
function quantity(flag: string): (value: string) => string {
  return (value) => {
    if (!/^\d+(\.\d+)?(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$/.test(value) || !/[1-9]/.test(value)) {
      throw new MaasError('MAAS_USAGE', `${flag} expects a Kubernetes quantity above zero such as 2, 500m, 4Gi; got '${value.slice(0, 40)}'`, { hint: `${flag} sets the predictor's request and limit.` });
    }
    return value;
  };
}

/** `--runtime-image`: an image reference as Kubernetes takes it (lowercase repository, optional tag or digest). */
function imageRef(value: string): string {
  if (!/^[a-z0-9]+([._-][a-z0-9]+)*(:\d+)?(\/[a-z0-9]+([._-][a-z0-9]+)*)*(:[A-Za-z0-9_][A-Za-z0-9._-]{0,127})?(@sha256:[0-9a-f]{64})?$/.test(value)) {
    throw new MaasError('MAAS_USAGE', `--runtime-image '${value.slice(0, 80)}' is not an image reference`, { hint: 'For example registry.example.com/team/maas-serve:0.1.0.' });
  }
  return value;
}

/** Flags that only one format reads: given to the other, they would be silently ignored. */
const KSERVE_ONLY = ['remote', 'runtime', 'runtimeImage', 'name', 'namespace', 'minReplicas', 'maxReplicas', 'cpu', 'memory', 'canary'] as const;
const TRITON_ONLY = ['workers'] as const;

function refuseOtherFormats(format: 'triton' | 'kserve', opts: Record<string, unknown>): void {
  const stray = (format === 'triton' ? KSERVE_ONLY : TRITON_ONLY).filter((key) => opts[key] !== undefined);
  if (stray.length === 0) return;
  const flags = stray.map((key) => `--${key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`).join(', ');
  throw new MaasError('MAAS_USAGE', `${flags} ${stray.length === 1 ? 'is' : 'are'} not for --format ${format}`, { hint: `maas export --help says which flags each format reads.` });
}

function percent(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 100) throw new MaasError('MAAS_USAGE', `--canary expects a whole percentage 0-100, got '${value.slice(0, 20)}'`);
  return n;
}

export const exportCommand = defineCommand({
  name: 'export',
  summary: 'hand a version over to Triton (a model repository) or KServe (an InferenceService on its pushed OCI artifact)',
  args: ['<ref>'],
  options: {
    format: option.choice('--format <format>', ['triton', 'kserve'] as const, 'what to write', { required: true }),
    output: option.string('-o, --output <path>', 'triton: the model repository folder (required); kserve: the YAML file (--runtime maas: a folder of three files)', { defaultText: 'kserve: stdout' }),
    device: option.choice('--device <device>', DEVICES, 'triton: instance_group kind (cuda → KIND_GPU); kserve: a GPU in the resources', { defaultText: "maas.yaml's device" }),
    workers: option.integer('--workers <n>', 'triton: instances per device (instance_group count)', { defaultText: "maas.yaml's workers" }),
    remote: option.string('--remote <remote>', 'kserve: where the version is (or is pushed) for storageUri: oci://host/repo or a named remote', { defaultText: "maas.yaml's defaults.remote" }),
    plainHttp: plainHttpOption,
    runtime: option.choice('--runtime <runtime>', ['triton', 'onnx', 'maas'] as const, "kserve: Triton (kserve-tritonserver), onnx (whichever runtime KServe picks for onnx + v2: Triton in a stock install), or maas serve itself (writes a ServingRuntime and a Dockerfile too)", { defaultText: 'triton' }),
    runtimeImage: option.custom('--runtime-image <image>', 'kserve --runtime maas: the image the ServingRuntime runs, built from the Dockerfile', imageRef, { defaultText: 'maas-serve:<maas version> beside the model repository' }),
    modelcarBase: modelcarBaseOption,
    name: option.string('--name <name>', 'kserve: the InferenceService name', { defaultText: 'the model name' }),
    namespace: option.string('--namespace <ns>', 'kserve: the namespace'),
    minReplicas: option.integer('--min-replicas <n>', 'kserve: minReplicas (0 scales to zero)', { min: 0 }),
    maxReplicas: option.integer('--max-replicas <n>', 'kserve: maxReplicas', { min: 1 }),
    cpu: option.custom('--cpu <quantity>', 'kserve: CPU request and limit (2, 500m)', quantity('--cpu')),
    memory: option.custom('--memory <quantity>', 'kserve: memory request and limit (4Gi)', quantity('--memory')),
    canary: option.custom('--canary <percent>', 'kserve: canaryTrafficPercent for a promotion (an alias moving to this version)', percent),
  },
  examples: [
    'maas export mlp@2 --format triton -o model_repository',
    'maas export mlp --format triton -o model_repository --device cuda   # every version its policy serves',
    'maas export mlp@prod --format kserve --remote oci://registry.example.com/team/mlp --namespace models > isvc.yaml',
    'maas export mlp@3 --format kserve --canary 10 --modelcar-base oci://registry.example.com/base/busybox:1.37 -o isvc.yaml',
    'maas export mlp@2 --format kserve --runtime maas -o deploy/   # ServingRuntime, Dockerfile and InferenceService',
  ],
  async run([ref], opts, ctx) {
    refuseOtherFormats(opts.format!, opts);
    if (opts.runtimeImage !== undefined && opts.runtime !== 'maas') throw new MaasError('MAAS_USAGE', '--runtime-image is the image of --runtime maas', { hint: 'Add --runtime maas, or leave --runtime-image out.' });
    if (opts.format === 'triton') {
      if (opts.output === undefined) throw new MaasError('MAAS_USAGE', '--format triton writes a model repository folder: pass -o DIR', { hint: 'maas export mlp@2 --format triton -o model_repository' });
      const { exportTriton } = await import('../export/triton.js');
      return exportTriton({ ref: ref!, output: opts.output, device: opts.device, workers: opts.workers }, registryOptions(ctx));
    }
    const { exportKServe } = await import('../export/kserve.js');
    const exported = await exportKServe(
      {
        ref: ref!, output: opts.output, remote: opts.remote, plainHttp: opts.plainHttp, runtime: opts.runtime ?? 'triton', name: opts.name, namespace: opts.namespace,
        minReplicas: opts.minReplicas, maxReplicas: opts.maxReplicas, cpu: opts.cpu, memory: opts.memory, device: opts.device, canary: opts.canary,
        modelcarBase: opts.modelcarBase, runtimeImage: opts.runtimeImage, onProgress: byteProgress(ctx),
      },
      registryOptions(ctx),
    );
    // The YAML may be all stdout shows: what was sent to the registry is said on stderr.
    if (exported.pushed) ctx.out.info(`pushed ${exported.ref} and its modelcar to ${exported.pushed.remote}`);
    return exported;
  },
  render: (r, t) => (r.format === 'triton' ? renderTritonExport(r, t) : renderKServeExport(r, t)),
});
