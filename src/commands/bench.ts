import { defineCommand, option } from '../core/define-command.js';
import { MaasError } from '../core/errors.js';
import { formatDuration, parseDuration } from '../core/units.js';
import { BENCH_DEFAULTS, SERVING_DEFAULTS } from '../inference/config.js';
import { DEVICES } from '../registry/config.js';
import { renderBench } from '../ui/render/bench.js';
import { checkClientCertificate, registryOptions, stepProgress } from './shared.js';

/** `--batch 1,8,32`: distinct batch sizes, in the order given. */
function parseBatches(text: string): number[] {
  const parts = text.split(',').map((p) => p.trim());
  if (parts.some((p) => !/^\d+$/.test(p) || Number(p) < 1 || Number(p) > BENCH_DEFAULTS.maxBatch)) {
    throw new MaasError('MAAS_USAGE', `--batch expects batch sizes from 1 to ${BENCH_DEFAULTS.maxBatch} separated by commas, got '${text.slice(0, 40)}'`, { hint: 'For example --batch 1,8,32.' });
  }
  return [...new Set(parts.map(Number))];
}

function parseBenchDuration(text: string): number {
  const ms = parseDuration(text);
  if (ms === undefined) throw new MaasError('MAAS_USAGE', `--duration expects a duration such as 500ms, 10s or 1m, got '${text.slice(0, 40)}'`, { hint: 'For example --duration 10s.' });
  return ms;
}

export const benchCommand = defineCommand({
  name: 'bench',
  summary: 'a latency profile of a version (p50/p90/p99, rows/s, req/s per batch size), here or through a server, recorded beside it',
  args: ['<ref>'],
  options: {
    batch: option.custom('--batch <sizes>', 'batch sizes to measure, separated by commas', parseBatches, { default: [...BENCH_DEFAULTS.batches], defaultText: BENCH_DEFAULTS.batches.join(',') }),
    device: option.choice('--device <device>', DEVICES, 'execution provider in-process (a server uses its own)', { defaultText: "maas.yaml's" }),
    duration: option.custom('--duration <time>', 'measuring time per batch size, after a warm-up (500ms, 10s, 1m)', parseBenchDuration, {
      default: BENCH_DEFAULTS.durationMs,
      defaultText: formatDuration(BENCH_DEFAULTS.durationMs),
    }),
    server: option.string('--server <url>', 'measure end to end through the `maas serve` at this URL (KServe v2 REST) instead of in-process'),
    token: option.string('--token <token>', "with --server: the server's bearer token", { env: 'MAAS_TOKEN' }),
    tlsCa: option.string('--tls-ca <file>', "with --server https://: a PEM CA that signed the server's certificate"),
    tlsCert: option.string('--tls-cert <file>', 'with --server https://: a PEM client certificate, for a server that asks for one (mTLS)'),
    tlsKey: option.string('--tls-key <file>', 'the PEM private key of --tls-cert'),
    timeoutMs: option.integer('--timeout-ms <ms>', 'the longest one request may take before the bench fails', { default: SERVING_DEFAULTS.timeoutMs }),
  },
  examples: [
    'maas bench mlp@2',
    'maas bench mlp@2 --batch 1,8,32 --duration 5s --device cuda',
    'maas bench mlp@prod --server http://127.0.0.1:8080 --token "$MAAS_TOKEN" --json',
    'maas diff mlp@1 mlp@2 --fail-on-regression 10%   # after benching both here',
  ],
  async run([ref], opts, ctx) {
    if ((opts.tlsCa ?? opts.tlsCert ?? opts.tlsKey) !== undefined && opts.server === undefined) {
      throw new MaasError('MAAS_USAGE', '--tls-ca, --tls-cert and --tls-key are for a server measured through --server https://...', { hint: 'Add --server, or leave them out.' });
    }
    checkClientCertificate(opts);
    if (opts.server !== undefined && opts.device !== undefined) {
      throw new MaasError('MAAS_USAGE', '--device applies in-process; through --server the server runs the model on its own --device', { hint: `Drop --device, or drop --server to measure here.` });
    }
    const { benchVersion } = await import('../inference/bench.js');
    const step = stepProgress(ctx);
    const per = formatDuration(opts.duration);
    step(opts.server === undefined ? `Loading ${ref}…` : `Reaching ${opts.server}…`);
    try {
      return await benchVersion({
        ref: ref!,
        batches: opts.batch,
        durationMs: opts.duration,
        device: opts.device,
        server: opts.server,
        token: opts.token,
        tls: { ca: opts.tlsCa, cert: opts.tlsCert, key: opts.tlsKey },
        timeoutMs: opts.timeoutMs,
        onBatch: (batch, index, total) => step(`Measuring ${ref} at batch ${batch} for ${per} (${index + 1}/${total})…`),
      }, registryOptions(ctx));
    } finally {
      step(undefined);
    }
  },
  render: renderBench,
});
