/**
 * `maas export NAME@V --format kserve`: an InferenceService (serving.kserve.io/v1beta1) for the
 * version, whose storageUri is the version's modelcar on the remote (`oci://HOST/REPO:V-modelcar@sha256:…`,
 * pinned by digest), pushed first when the remote lacks it. KServe's `oci://` runs that image
 * beside the predictor and mounts its /models at /mnt/models (modelcar.ts lays it out for Triton
 * and for maas), so the model crosses the cluster as the same bytes and digests as everywhere else.
 *
 * Runtimes: `triton` names kserve-tritonserver, the runtime KServe serves ONNX with; `onnx` names
 * none, and KServe picks the ServingRuntime that declares onnx with protocol v2 (the same Triton in
 * a stock install, or whatever the cluster put first); `maas` also writes a ServingRuntime that runs
 * `maas serve` on the OCI layout inside the modelcar, and the Dockerfile of its image. Each serves
 * the model under its own name, so a client calls /v2/models/NAME/infer as it does on maas serve.
 */
import { existsSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { stringify } from 'yaml';
import { MaasError } from '../core/errors.js';
import { checkNewFolder, checkOutputFile, writeNewFolder, writeOutputFile } from '../core/fs.js';
import { VERSION } from '../core/version.js';
import type { Device } from '../registry/config.js';
import { renderTemplate } from '../registry/init.js';
import { formatRef, parseRef } from '../registry/refs.js';
import { Registry } from '../registry/registry.js';
import { checkTritonServes } from './triton.js';
import type { OnBytes } from '../registry/store.js';
import { type FoundModelcar, findModelcar, modelcarTag } from '../remote/modelcar.js';
import { MANIFEST_MEDIA_TYPE } from '../remote/artifact.js';
import { type PushResult, type TransferContext, baseImage, clientFor, push, remoteFor } from '../remote/transfer.js';

export type KServeRuntime = 'triton' | 'onnx' | 'maas';

/** KServe's Triton ClusterServingRuntime, which serves its onnx model format. */
const TRITON_RUNTIME = 'kserve-tritonserver';
/** The ServingRuntime --runtime maas writes. */
const MAAS_RUNTIME = 'maas';
/** Where KServe mounts the storageUri in the predictor container. */
const MOUNT = '/mnt/models';
/** The ports KServe's model servers listen on: REST (what the predictor's service targets), gRPC. */
const HTTP_PORT = 8080;
const GRPC_PORT = 8081;

/**
 * The maas runtime's entrypoint. KServe links /mnt/models to the modelcar's /models once that
 * container runs (it tells the predictor so: MODEL_INIT_MODE=async), so it waits for the layout
 * first. No `$(…)` in it: Kubernetes would expand that in a container's command.
 */
const SERVE_SCRIPT = [
  'set -e',
  'dir="${MAAS_SERVE#oci-layout:}"',
  'dir="${dir%:*}"',
  'until [ -f "$dir/oci-layout" ]; do echo "waiting for $dir"; sleep 1; done',
  `exec maas serve "$MAAS_SERVE" --host 0.0.0.0 --port ${HTTP_PORT} --grpc-port ${GRPC_PORT} --insecure --device "\${MAAS_DEVICE:-auto}"`,
].join('\n');

export interface KServeExportOptions {
  ref: string;
  /** --runtime maas: a folder for the three files; otherwise the InferenceService's YAML file. Default: the result's yaml only. */
  output?: string | undefined;
  /** where the modelcar is (or is pushed): oci://HOST/REPO or a named remote; default maas.yaml's defaults.remote. */
  remote?: string | undefined;
  plainHttp?: boolean | undefined;
  runtime: KServeRuntime;
  /** the InferenceService's name; default the model's name as a DNS-1035 label. */
  name?: string | undefined;
  namespace?: string | undefined;
  minReplicas?: number | undefined;
  maxReplicas?: number | undefined;
  /** Kubernetes quantities, as request and limit. */
  cpu?: string | undefined;
  memory?: string | undefined;
  /** cuda asks for one nvidia.com/gpu; default maas.yaml's device. */
  device?: Device | undefined;
  /** canaryTrafficPercent: the share this version gets when it replaces the one the InferenceService serves. */
  canary?: number | undefined;
  /** the modelcar's base image when one is pushed (push.ts's --modelcar-base). */
  modelcarBase?: string | undefined;
  /** --runtime maas: the image of the ServingRuntime; default maas-serve:<maas version> beside the model's repository. */
  runtimeImage?: string | undefined;
  onProgress?: (label: string, total: number) => OnBytes;
}

export interface KServeExportResult {
  format: 'kserve';
  ref: string;
  /** the InferenceService's name and namespace. */
  name: string;
  namespace?: string;
  runtime: KServeRuntime;
  /** the ServingRuntime the predictor names; absent: KServe picks one for onnx and protocol v2. */
  servingRuntime?: string;
  storageUri: string;
  /** the version's ModelPack manifest, which the modelcar holds (and its OCI layout names). */
  manifestDigest: string;
  modelcar: { image: string; digest: string; status: 'pushed' | 'present'; base?: string };
  /** what was pushed first, when the remote lacked the modelcar. */
  pushed?: Omit<PushResult, 'ref'>;
  /** where clients send KServe v2 requests, on the InferenceService's URL: the same path as on maas serve. */
  inferPath: string;
  /** the manifests as YAML documents: the ServingRuntime, then the InferenceService. */
  yaml: string;
  /** --runtime maas: the ServingRuntime's image, and the Dockerfile that builds it. */
  runtimeImage?: string;
  dockerfile?: string;
  /** the files written (absolute), when -o was given. */
  files: string[];
}

const DNS_1035 = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;
const DNS_1123 = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

/** A model name (lowercase, digits, . _ -) as a Kubernetes resource name: a DNS-1035 label. */
export function dnsLabel(name: string): string {
  return `${/^[a-z]/.test(name) ? '' : 'model-'}${name.replace(/[._]+/g, '-')}`.slice(0, 63).replace(/-+$/, '');
}

function checkName(flag: string, value: string, re: RegExp, example: string): string {
  if (value.length > 63 || !re.test(value)) {
    throw new MaasError('MAAS_USAGE', `${flag} '${value.slice(0, 80)}' is not a Kubernetes name: at most 63 lowercase letters, digits and -, starting with a ${re === DNS_1035 ? 'letter' : 'letter or digit'} and ending with a letter or digit`, {
      hint: `For example ${flag} ${example}.`,
    });
  }
  return value;
}

/** The image a user builds from the Dockerfile: beside the model's repository, named for this maas. */
function defaultRuntimeImage(host: string, repository: string): string {
  const parent = repository.split('/').slice(0, -1).join('/');
  return `${host}/${parent ? `${parent}/` : ''}maas-serve:${VERSION}`;
}

function resourcesOf(options: KServeExportOptions, device: Device): { requests?: Record<string, string>; limits: Record<string, string> } | undefined {
  const quantities: Record<string, string> = {};
  if (options.cpu) quantities.cpu = options.cpu;
  if (options.memory) quantities.memory = options.memory;
  const any = Object.keys(quantities).length > 0;
  if (!any && device !== 'cuda') return undefined;
  // An extended resource such as a GPU goes in limits; Kubernetes copies it to requests.
  return { ...(any ? { requests: { ...quantities } } : {}), limits: device === 'cuda' ? { ...quantities, 'nvidia.com/gpu': '1' } : quantities };
}

/** The modelcar of a version that KServe can run: one on a base image (its sidecar runs `sh`). */
function usable(found: FoundModelcar | undefined, manifestDigest: string, base: string | undefined): found is FoundModelcar & { base: { name: string } } {
  return found?.modelpackDigest === manifestDigest && found.base !== undefined && (base === undefined || found.base.name === base);
}

export async function exportKServe(options: KServeExportOptions, ctx: TransferContext): Promise<KServeExportResult> {
  const registry = await Registry.open(ctx);
  const asked = parseRef(options.ref);
  const { name, version } = registry.resolve(asked);
  const ref = formatRef(name, version);
  const { manifestDigest } = registry.readVersion(name, version);
  const device = options.device ?? registry.config.defaults.device;
  if (device === 'webgpu') {
    throw new MaasError('MAAS_USAGE', 'KServe has no WebGPU device: the predictor runs on CPUs or NVIDIA GPUs', { hint: 'Pass --device cuda (one nvidia.com/gpu) or --device cpu.' });
  }
  if (options.minReplicas !== undefined && options.maxReplicas !== undefined && options.minReplicas > options.maxReplicas) {
    throw new MaasError('MAAS_USAGE', `--min-replicas ${options.minReplicas} is more than --max-replicas ${options.maxReplicas}`);
  }
  // KServe serves ONNX with Triton unless maas is the runtime: what Triton cannot describe is refused here.
  if (options.runtime !== 'maas') checkTritonServes(registry.readVersion(name, version));
  const isvcName = options.name === undefined ? dnsLabel(name) : checkName('--name', options.name, DNS_1035, dnsLabel(name));
  const namespace = options.namespace === undefined ? undefined : checkName('--namespace', options.namespace, DNS_1123, 'models');

  const remote = remoteFor(registry, options.remote, name, 'Pass --remote oci://HOST/REPOSITORY, a registry the cluster pulls from, or set defaults.remote in maas.yaml.');
  if (remote.kind === 'layout') {
    throw new MaasError('MAAS_USAGE', `${remote.url} is a folder here, which a cluster cannot pull from`, {
      hint: `Name a registry the cluster can reach: --remote oci://HOST/REPOSITORY (or copy the layout there: skopeo copy --all oci:${remote.path}:${version}-modelcar docker://HOST/REPOSITORY:${version}-modelcar).`,
    });
  }
  // Where it writes is checked before anything is pushed.
  const target = options.output === undefined ? undefined : outputPath(resolve(ctx.cwd, options.output), options.runtime === 'maas');
  const base = options.modelcarBase === undefined ? undefined : baseImage(registry, options.modelcarBase, ctx, options.plainHttp).name;
  const tag = modelcarTag(String(version));
  const client = clientFor(remote, ctx, options.plainHttp);
  const found = await findModelcar({ kind: 'registry', client }, tag);
  let modelcar: KServeExportResult['modelcar'];
  let pushed: Omit<PushResult, 'ref'> | undefined;
  const image = `${remote.host}/${remote.repository}`;
  if (usable(found, manifestDigest, base)) {
    modelcar = { image: `${image}:${tag}`, digest: found.digest, status: 'present', base: found.base.name };
  } else {
    if (base === undefined) {
      throw new MaasError('MAAS_USAGE', `${image}:${tag} ${found?.modelpackDigest === manifestDigest ? 'has no base image' : 'does not exist yet'}, and KServe's oci:// storage runs the modelcar with a shell`, {
        hint: 'Pass --modelcar-base with an image that has one, copied to a registry you control: --modelcar-base oci://HOST/base/busybox:1.37 (or set MAAS_MODELCAR_BASE).',
      });
    }
    // An export adds this version where it is missing; it never moves a tag that names other bytes.
    const tagged = (await client.hasManifest(String(version), [MANIFEST_MEDIA_TYPE])) ? (await client.getManifest(String(version))).digest : undefined;
    if (tagged !== undefined && tagged !== manifestDigest) {
      throw new MaasError('MAAS_VERSION_CONFLICT', `${image}:${version} already names other bytes (${tagged}, not ${ref}'s ${manifestDigest})`, {
        hint: `Export to another --remote repository, or replace it on purpose with maas push ${ref} ${options.remote ?? `oci://${image}`} --modelcar.`,
      });
    }
    const { ref: _ref, ...sent } = await push({ ref, remote: options.remote, plainHttp: options.plainHttp, modelcar: true, modelcarBase: options.modelcarBase, ...(options.onProgress ? { onProgress: options.onProgress } : {}) }, ctx);
    pushed = sent;
    const car = sent.modelcar!;
    modelcar = { image: `${image}:${tag}`, digest: car.digest, status: car.status, ...(car.base ? { base: car.base.name } : {}) };
  }
  const storageUri = `oci://${modelcar.image}@${modelcar.digest}`;

  const servingRuntime = options.runtime === 'triton' ? TRITON_RUNTIME : options.runtime === 'maas' ? MAAS_RUNTIME : undefined;
  const resources = resourcesOf(options, device);
  const env = options.runtime === 'maas'
    ? [{ name: 'MAAS_SERVE', value: `oci-layout:${MOUNT}/${name}:${version}` }, ...(device === 'auto' ? [] : [{ name: 'MAAS_DEVICE', value: device }])]
    : undefined;
  const isvc = {
    apiVersion: 'serving.kserve.io/v1beta1',
    kind: 'InferenceService',
    metadata: {
      name: isvcName,
      ...(namespace ? { namespace } : {}),
      annotations: {
        'maas.dev/ref': ref,
        ...(asked.selector.kind === 'alias' ? { 'maas.dev/alias': asked.selector.alias } : {}),
        'maas.dev/manifest-digest': manifestDigest,
      },
    },
    spec: {
      predictor: {
        ...(options.minReplicas !== undefined ? { minReplicas: options.minReplicas } : {}),
        ...(options.maxReplicas !== undefined ? { maxReplicas: options.maxReplicas } : {}),
        ...(options.canary !== undefined ? { canaryTrafficPercent: options.canary } : {}),
        model: {
          modelFormat: { name: 'onnx' },
          protocolVersion: 'v2',
          ...(servingRuntime ? { runtime: servingRuntime } : {}),
          storageUri,
          ...(env ? { env } : {}),
          ...(resources ? { resources } : {}),
        },
      },
    },
  };

  const docs: object[] = [isvc];
  let runtimeImage: string | undefined;
  let dockerfile: string | undefined;
  if (options.runtime === 'maas') {
    runtimeImage = options.runtimeImage ?? defaultRuntimeImage(remote.host, remote.repository);
    dockerfile = renderTemplate('kserve/Dockerfile', { image: runtimeImage, maasVersion: VERSION });
    docs.unshift(servingRuntimeOf(runtimeImage, namespace));
  }
  const yaml = docs.map((doc) => stringify(doc, { lineWidth: 0 })).join('---\n');
  const files = target === undefined ? [] : writeOutput(target, { docs, dockerfile });
  return {
    format: 'kserve',
    ref,
    name: isvcName,
    ...(namespace ? { namespace } : {}),
    runtime: options.runtime,
    ...(servingRuntime ? { servingRuntime } : {}),
    storageUri,
    manifestDigest,
    modelcar,
    ...(pushed ? { pushed } : {}),
    inferPath: `/v2/models/${name}/infer`,
    yaml,
    ...(runtimeImage ? { runtimeImage, dockerfile } : {}),
    files,
  };
}

/** `maas serve` as a KServe custom runtime, chosen only by name (autoSelect off: it takes no other onnx model). */
function servingRuntimeOf(image: string, namespace: string | undefined): object {
  return {
    apiVersion: 'serving.kserve.io/v1alpha1',
    kind: 'ServingRuntime',
    metadata: { name: MAAS_RUNTIME, ...(namespace ? { namespace } : {}) },
    spec: {
      annotations: { 'prometheus.kserve.io/port': String(HTTP_PORT), 'prometheus.kserve.io/path': '/metrics' },
      supportedModelFormats: [{ name: 'onnx', version: '1', autoSelect: false }],
      protocolVersions: ['v2', 'grpc-v2'],
      multiModel: false,
      containers: [
        {
          name: 'kserve-container',
          image,
          command: ['sh', '-c', SERVE_SCRIPT],
          env: [{ name: 'MAAS_CACHE_DIR', value: '/tmp/maas-cache' }],
          resources: { requests: { cpu: '1', memory: '2Gi' }, limits: { cpu: '1', memory: '2Gi' } },
        },
      ],
    },
  };
}

/**
 * Where -o writes, checked before anything is pushed: --runtime maas, a new folder of three files;
 * otherwise the InferenceService file (inferenceservice.yaml inside a folder that exists).
 */
function outputPath(path: string, folder: boolean): string {
  if (folder) {
    if (/\.(ya?ml|json)$/i.test(path)) {
      throw new MaasError('MAAS_USAGE', `--runtime maas writes a folder of three files (servingruntime.yaml, inferenceservice.yaml, Dockerfile), and ${path} names a file`, {
        hint: `Pass a folder: -o ${join(dirname(path), 'deploy')}`,
      });
    }
    checkNewFolder(path);
    return path;
  }
  const file = existsSync(path) && statSync(path).isDirectory() ? join(path, 'inferenceservice.yaml') : path;
  checkOutputFile(file);
  return file;
}

function writeOutput(target: string, content: { docs: object[]; dockerfile: string | undefined }): string[] {
  const yaml = (doc: object) => stringify(doc, { lineWidth: 0 });
  if (content.dockerfile === undefined) {
    writeOutputFile(target, yaml(content.docs[0]!));
    return [target];
  }
  const [runtime, isvc] = content.docs as [object, object];
  const files: [string, string][] = [['servingruntime.yaml', yaml(runtime)], ['inferenceservice.yaml', yaml(isvc)], ['Dockerfile', content.dockerfile]];
  writeNewFolder(target, (staging) => {
    for (const [file, text] of files) writeFileSync(join(staging, file), text);
  });
  return files.map(([file]) => join(target, file));
}
