/** Glue every command uses: registry options from the context, progress bars, option rows several commands share. */
import type { CommandContext } from '../core/context.js';
import { type OptionValues, option } from '../core/define-command.js';
import { MaasError } from '../core/errors.js';
import { CALIBRATION_METHODS, DEFAULT_FP16_BLOCK, DEFAULT_TOLERANCE, INT4_BLOCK_SIZES, INT4_DEFAULTS, INT8_MODES, OPTIMIZE_LEVELS, SEEDED_SAMPLES } from '../convert/config.js';
import type { ConversionFlags } from '../convert/register.js';
import { parseVersion } from '../registry/refs.js';
import type { RegistryOptions } from '../registry/registry.js';
import type { OnBytes } from '../registry/store.js';
import type { ServerTarget } from '../serve/http/client.js';

export function registryOptions(ctx: CommandContext): RegistryOptions {
  return { cwd: ctx.cwd, env: ctx.env, registry: ctx.globals.registry, now: ctx.now };
}

/** A progress bar per byte stream, closed when the stream reports its last byte. */
export function byteProgress(ctx: CommandContext): (label: string, totalBytes: number) => OnBytes {
  return (label, totalBytes) => {
    const bar = ctx.out.progress(label, totalBytes);
    if (totalBytes === 0) bar.stop();
    return (done) => {
      bar.update(done);
      if (done >= totalBytes) bar.stop();
    };
  };
}

/** One spinner per step of a long job, replaced as the job moves on. */
export function stepProgress(ctx: CommandContext): (label: string | undefined) => void {
  let current: { stop(): void } | undefined;
  return (label) => {
    current?.stop();
    current = label === undefined ? undefined : ctx.out.step(label);
  };
}

/** `--name` / `--version` for a version arriving from elsewhere (pull, import). */
export const importAsOptions = {
  name: option.string('--name <name>', 'model name here', { defaultText: 'the one it was pushed or packed with' }),
  version: option.custom('--version <n>', 'version number here', parseVersion, { defaultText: 'the one it was pushed or packed with' }),
};

/** How `deploy`, `undeploy` and `ps` reach a running server, besides its URL. */
export const serverOptions = {
  token: option.string('--token <token>', "the server's bearer token", { env: 'MAAS_TOKEN' }),
  tlsCa: option.string('--tls-ca <file>', "a PEM CA that signed the server's certificate (https:// with a private CA)"),
  tlsCert: option.string('--tls-cert <file>', 'a PEM client certificate, for a server that asks for one (mTLS)'),
  tlsKey: option.string('--tls-key <file>', 'the PEM private key of --tls-cert'),
  timeoutMs: option.integer('--timeout-ms <ms>', 'how long one call may take (a load pulls and warms up the model)', { default: 600_000 }),
};

/** `--to`, which has no default: a deploy must say where. */
export function requiredServer(url: string | undefined): string {
  if (url === undefined) throw new MaasError('MAAS_USAGE', 'no server to talk to', { hint: 'Pass --to http://host:port (as `maas serve` printed it), or set MAAS_SERVER.' });
  return url;
}

export function serverTarget(url: string, opts: OptionValues<typeof serverOptions>, ctx: CommandContext): ServerTarget {
  checkClientCertificate(opts);
  return { url, token: opts.token, ca: opts.tlsCa, cert: opts.tlsCert, key: opts.tlsKey, timeoutMs: opts.timeoutMs, cwd: ctx.cwd };
}

/** `--tls-cert` and `--tls-key` go together. */
export function checkClientCertificate(opts: { tlsCert?: string | undefined; tlsKey?: string | undefined }): void {
  if ((opts.tlsCert === undefined) !== (opts.tlsKey === undefined)) {
    throw new MaasError('MAAS_USAGE', '--tls-cert and --tls-key go together', { hint: 'Pass the client certificate and its private key: --tls-cert client.pem --tls-key client.key.' });
  }
}

/** `--sign-key`: the commands that make or receive a version sign it too. */
export const signKeyOption = option.string('--sign-key <file>', 'sign the result with this PEM private key (ECDSA P-256/P-384)', { defaultText: 'MAAS_SIGNING_KEY (a path or the PEM itself), else unsigned' });

/** Where trusted public keys and CAs come from, for the commands that verify signatures. */
export const trustOptions = {
  key: option.string('--key <pub.pem>', "a signer's PEM public key to trust", { defaultText: 'maas.yaml trust.keys' }),
  trustedKeys: option.string('--trusted-keys <dir>', 'a folder of PEM public keys to trust (*.pem)'),
  trustedCa: option.string('--trusted-ca <file>', 'PEM CA certificates that certificate-chain signatures must lead to'),
};

/** `--require-signature` and the trust it checks against. */
export const requireSignatureOptions = {
  requireSignature: option.flag('--require-signature', 'refuse versions without a signature that verifies with the trusted keys'),
  ...trustOptions,
};

/** `--modelcar-base`: what push --modelcar and export --format kserve layer /models on. */
export const modelcarBaseOption = option.string('--modelcar-base <image>', "the modelcar's base image, one with a shell for KServe's oci:// storage (e.g. busybox): oci://HOST/REPO:TAG or oci-layout:PATH:TAG", {
  env: 'MAAS_MODELCAR_BASE',
  defaultText: 'none: an image of /models alone',
});

/** `--plain-http`, shared by the commands that talk to a registry. */
export const plainHttpOption = option.flag('--plain-http', 'speak HTTP, not HTTPS, to a registry that is not on loopback');

/** `--tolerance`: a conversion's largest accepted normalized error. */
function tolerance(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0) throw new MaasError('MAAS_USAGE', `--tolerance expects a number ≥ 0, got '${value}'`, { hint: 'For example --tolerance 0.02 (2% of the largest output value).' });
  return n;
}

/** `--int4-block`: a power of two MatMulNBits runs. */
function int4Block(value: string): number {
  const n = Number(value);
  if (!(INT4_BLOCK_SIZES as readonly number[]).includes(n)) throw new MaasError('MAAS_USAGE', `--int4-block expects one of ${INT4_BLOCK_SIZES.join(', ')}, got '${value.slice(0, 20)}'`);
  return n;
}

/** `--fp16-block LayerNormalization,Softmax` (or `none`): op types as ONNX names them. */
function opList(value: string): string[] {
  if (value.trim() === 'none') return [];
  const ops = value.split(',').map((s) => s.trim()).filter(Boolean);
  const bad = ops.find((op) => !/^[A-Z][A-Za-z0-9]*$/.test(op));
  if (bad !== undefined || ops.length === 0) throw new MaasError('MAAS_USAGE', `--fp16-block expects ONNX op types separated by commas, or none; got '${value.slice(0, 60)}'`, { hint: 'For example --fp16-block LayerNormalization,Softmax.' });
  return ops;
}

/** The conversion flags `convert` and `register` share. */
export const conversionOptions = {
  optimize: option.choice('--optimize <level>', OPTIMIZE_LEVELS, "onnxruntime's graph optimiser"),
  fp16: option.flag('--fp16', 'float16 weights and math (ops without float16 kernels stay float32 behind Casts), about 2× smaller'),
  keepIoTypes: option.flag('--keep-io-types', 'with --fp16: inputs and outputs stay float32'),
  fp16Block: option.custom('--fp16-block <ops>', 'with --fp16: op types kept float32, comma-separated, or none', opList, { defaultText: DEFAULT_FP16_BLOCK.join(',') }),
  int8: option.optional('--int8 [mode]', INT8_MODES, 'int8 MatMul/Gemm/Conv weights, about 4× smaller: dynamic (activations quantized at run time, faster on CPU), static (QDQ, activation ranges from --calibrate), weight-only (smaller, not faster)', 'dynamic'),
  int4: option.flag('--int4', 'int4 block-wise weights for large MatMuls (onnxruntime MatMulNBits), about 7× smaller'),
  int4Block: option.custom('--int4-block <n>', 'with --int4: weights per block along K, each with its own scale', int4Block, { defaultText: String(INT4_DEFAULTS.blockSize) }),
  int4Accuracy: option.integer('--int4-accuracy <level>', "with --int4: MatMulNBits' accuracy_level, 0 (unset) to 4 (int8 activations, fastest on CPU)", { min: 0, max: 4, defaultText: String(INT4_DEFAULTS.accuracyLevel) }),
  calibrate: option.string('--calibrate <file>', 'with --int8 static: KServe v2 requests like real traffic (JSON, array or JSON Lines) to measure activation ranges on'),
  calibration: option.choice('--calibration <method>', CALIBRATION_METHODS, 'with --int8 static: minmax, or percentile (ignores the 0.01 % outliers at each end)', { default: 'minmax' }),
  tolerance: option.custom('--tolerance <x>', 'largest accepted max |Δ| / max |original| over all outputs', tolerance, {
    defaultText: `int8 ${DEFAULT_TOLERANCE.int8}, fp16 ${DEFAULT_TOLERANCE.fp16}, optimize ${DEFAULT_TOLERANCE.optimize}`,
  }),
  samples: option.string('--samples <file>', `KServe v2 infer request(s) to compare on, besides ${SEEDED_SAMPLES} seeded inputs`),
  force: option.flag('--force', 'keep a conversion even beyond the tolerance'),
  latency: option.flag('--no-latency', 'skip timing the original and converted model (about 2 s)'),
  inputShape: option.string('--input-shape <dims>', 'for a TorchScript (.pt) source: one input shape, e.g. 1,3,224,224 (dim 0 becomes the batch)'),
};

/** The conversion a command's options ask for. */
export function conversionFrom(opts: OptionValues<typeof conversionOptions>): Omit<ConversionFlags, 'onStep'> {
  const { optimize, fp16, keepIoTypes, fp16Block, int8, int4, int4Block, int4Accuracy, calibrate, calibration, tolerance, samples, force, latency, inputShape } = opts;
  return { optimize, fp16, keepIoTypes, fp16Block, int8, int4, int4Block, int4Accuracy, calibrate, calibration, tolerance, samples, force, latency, inputShape };
}
