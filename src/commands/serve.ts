import { constants } from 'node:buffer';
import { availableParallelism } from 'node:os';
import { defineCommand } from '../core/define-command.js';
import { MaasError } from '../core/errors.js';
import { DEVICES, type Device } from '../registry/config.js';
import { parseRef } from '../registry/refs.js';
import type { RunningServer } from '../serve/http/server.js';
import { renderServing } from '../ui/render/serve.js';
import { registryOptions } from './shared.js';

export type ServeResult = Omit<RunningServer, 'close'> & { stoppedBy: string };

function count(flag: string, min = 1, max = Number.MAX_SAFE_INTEGER) {
  return (value: string): number => {
    if (!/^\d+$/.test(value) || Number(value) < min || Number(value) > max) {
      const range = max === Number.MAX_SAFE_INTEGER ? `≥ ${min}` : `from ${min} to ${max}`;
      throw new MaasError('MAAS_USAGE', `${flag} expects an integer ${range}, got '${value.slice(0, 40)}'`);
    }
    return Number(value);
  };
}

/** The most one Buffer holds (4 GiB in Node 20): a larger body could never be read. */
const MAX_BODY_MB = Math.floor(constants.MAX_LENGTH / (1024 * 1024));

export const serveCommand = defineCommand<ServeResult>({
  name: 'serve',
  summary: 'serve models over KServe v2 (and TF Serving) HTTP with onnxruntime, GPU when asked',
  args: ['[models...]'],
  options: [
    { flags: '--host <host>', description: 'address to bind (default 127.0.0.1; others need --token or --insecure)' },
    { flags: '--port <port>', description: 'port (default 8080; 0 picks a free one)', parse: count('--port', 0) },
    { flags: '--device <device>', description: 'auto tries cuda, webgpu, then cpu; cuda/webgpu fail rather than fall back (default: maas.yaml)', choices: DEVICES },
    { flags: '--threads <n>', description: 'onnxruntime intra-op threads per worker (default: cores / workers)', parse: count('--threads') },
    { flags: '--workers <n>', description: 'inference workers (sessions) per model version (default 1)', parse: count('--workers') },
    { flags: '--max-batch <n>', description: 'rows merged into one run by dynamic batching; 1 turns it off (default 32)', parse: count('--max-batch') },
    { flags: '--batch-delay-ms <ms>', description: 'how long an under-full batch waits for more requests (default 0)', parse: count('--batch-delay-ms', 0) },
    { flags: '--max-queue <n>', description: 'queued requests per version before 503 (default 1024)', parse: count('--max-queue') },
    { flags: '--timeout-ms <ms>', description: 'per-request deadline, then 504 (default 30000)', parse: count('--timeout-ms') },
    { flags: '--max-body-mb <mb>', description: `largest request body, then 413 (default 64, at most ${MAX_BODY_MB})`, parse: count('--max-body-mb', 1, MAX_BODY_MB) },
    { flags: '--poll-ms <ms>', description: 'how often to look for new versions and alias moves (default 1000)', parse: count('--poll-ms', 50) },
    { flags: '--token <token>', description: 'require `Authorization: Bearer <token>` on every route but liveness (or MAAS_TOKEN)' },
    { flags: '--name <name>', description: 'with one oci:// or oci-layout: reference: the name to serve it under (default: the name it was pushed under)' },
    { flags: '--insecure', description: 'allow a non-loopback --host without a token' },
    { flags: '--json-logs', description: 'one JSON line per event and request on stderr' },
  ],
  examples: ['maas serve', 'maas serve mlp@prod --port 8080 --device cuda', 'maas serve mlp --host 0.0.0.0 --token "$MAAS_TOKEN" --json-logs', 'maas serve oci://registry.example.com/team/mlp:2   # pull (cached by digest), then serve'],
  printsOwnResult: true,
  async run(modelArgs, opts, ctx) {
    let models = modelArgs;
    const [{ startServer }, { Registry }, { VERSION }, cache] = await Promise.all([
      import('../serve/http/server.js'), import('../registry/registry.js'), import('../core/version.js'), import('../remote/cache.js'),
    ]);
    let registry = registryOptions(ctx);
    const remotes = models.filter(cache.isRemoteTarget);
    const name = opts.name as string | undefined;
    if (name !== undefined && (remotes.length !== 1 || models.length !== 1)) {
      throw new MaasError('MAAS_USAGE', '--name renames one remote reference, and serve was given ' + (remotes.length ? `${models.length} models` : 'registered models'), {
        hint: 'Serve one oci:// or oci-layout: reference with --name; a registered model is served under its own name.',
      });
    }
    if (remotes.length) {
      if (remotes.length !== models.length) {
        throw new MaasError('MAAS_USAGE', 'serve takes either registered models or remote references, not both', { hint: 'Run one maas serve per kind.' });
      }
      const cached = await cache.pullForServing(remotes, { ...registry, now: ctx.now }, name);
      for (const p of cached.pulled) {
        ctx.out.info(`${p.status === 'unchanged' ? 'cached' : 'pulled'} ${p.remote} as ${p.ref} (${p.manifestDigest})`);
        ctx.out.info(servedNameLine(p.remote, parseRef(p.ref).name, name !== undefined));
      }
      registry = { ...registry, registry: cached.registry };
      models = cached.refs;
    }
    const config = (await Registry.open(registry)).config;
    const workers = (opts.workers as number | undefined) ?? 1;
    const server = await startServer({
      registry,
      targets: models.map((m) => parseRef(m)),
      runtime: {
        device: (opts.device as Device | undefined) ?? config.defaults.device,
        workers,
        threads: (opts.threads as number | undefined) ?? Math.max(1, Math.floor(availableParallelism() / workers)),
        maxBatch: (opts.maxBatch as number | undefined) ?? 32,
        batchDelayMs: (opts.batchDelayMs as number | undefined) ?? 0,
        maxQueue: (opts.maxQueue as number | undefined) ?? 1024,
      },
      host: (opts.host as string | undefined) ?? '127.0.0.1',
      port: (opts.port as number | undefined) ?? 8080,
      token: (opts.token as string | undefined) ?? ctx.env.MAAS_TOKEN,
      insecure: Boolean(opts.insecure),
      maxBodyBytes: ((opts.maxBodyMb as number | undefined) ?? 64) * 1024 * 1024,
      timeoutMs: (opts.timeoutMs as number | undefined) ?? 30_000,
      pollMs: (opts.pollMs as number | undefined) ?? 1000,
      jsonLogs: Boolean(opts.jsonLogs),
      log: (line) => ctx.out.info(line),
      version: VERSION,
    });
    const { close, ...running } = server;
    ctx.out.result(ctx.globals.json ? JSON.stringify(running) : renderServing(running, ctx.out.theme));
    const stoppedBy = await ctx.shutdownSignal();
    ctx.out.info(`${stoppedBy}: finishing requests in flight…`);
    await close();
    ctx.out.info('stopped');
    return { ...running, stoppedBy };
  },
  render: () => '',
});

/** Which name a pulled reference is served under, and why: it need not be the repository's. */
function servedNameLine(remote: string, served: string, byFlag: boolean): string {
  if (byFlag) return `serving it as '${served}' (--name)`;
  const repository = /([^/:]+)(?::[^/:]*)?$/.exec(remote)?.[1];
  const why = repository === served ? "the repository's name" : 'the name it was pushed under';
  return `serving it as '${served}', ${why} (--name picks another)`;
}
