import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { text } from 'node:stream/consumers';
import { defineCommand, option } from '../core/define-command.js';
import { MaasError, isMaasError } from '../core/errors.js';
import { SERVING_DEFAULTS } from '../inference/config.js';
import { DEVICES } from '../registry/config.js';
import { registryOptions } from './shared.js';

export const predictCommand = defineCommand({
  name: 'predict',
  summary: 'run one inference: a KServe v2 infer request in, the response out; here, or on a server over gRPC',
  args: ['<ref>'],
  options: {
    input: option.string('-i, --input <file>', 'the request JSON file, or - for stdin', { required: true }),
    device: option.choice('--device <device>', DEVICES, 'execution provider, when it runs here', { defaultText: "maas.yaml's" }),
    grpc: option.string('--grpc <host:port>', 'send it to a running `maas serve --grpc-port` instead of running it here'),
    token: option.string('--token <token>', "with --grpc: the server's bearer token", { env: 'MAAS_TOKEN' }),
    tlsCa: option.string('--tls-ca <file>', "with --grpc: speak TLS, trusting this PEM CA for the server's certificate"),
    tlsCert: option.string('--tls-cert <file>', 'with --grpc and --tls-ca: a PEM client certificate (mTLS)'),
    tlsKey: option.string('--tls-key <file>', 'the PEM private key of --tls-cert'),
    timeoutMs: option.integer('--timeout-ms <ms>', 'with --grpc: the call deadline', { default: SERVING_DEFAULTS.timeoutMs }),
  },
  examples: [
    'maas predict mlp@prod --input request.json',
    `echo '{"inputs":[{"name":"input","shape":[1,4],"datatype":"FP32","data":[1,2,3,4]}]}' | maas predict mlp --input -`,
    'maas predict mlp@2 --input request.json --grpc 127.0.0.1:8081 --token "$MAAS_TOKEN"',
  ],
  async run([ref], opts, ctx) {
    const request = opts.input === '-' ? Buffer.from(await text(ctx.io.stdin)) : await readFile(resolve(ctx.cwd, opts.input!));
    if (opts.grpc === undefined) {
      const { predict } = await import('../serve/predict.js');
      return predict({ ref: ref!, request, device: opts.device }, registryOptions(ctx)).catch((error: unknown) => {
        // A request the model refuses: say where its inputs are listed.
        if (isMaasError(error) && error.code === 'MAAS_BAD_INPUT' && error.hint === undefined) {
          throw new MaasError('MAAS_BAD_INPUT', error.message, { hint: `\`maas show ${ref}\` lists the inputs it takes (name, datatype, shape); the request is KServe v2 JSON: {"inputs":[{"name","shape","datatype","data"}]}.` });
        }
        throw error;
      });
    }
    if ((opts.tlsCert === undefined) !== (opts.tlsKey === undefined) || (opts.tlsCert !== undefined && opts.tlsCa === undefined)) {
      throw new MaasError('MAAS_USAGE', '--tls-cert and --tls-key go together, with --tls-ca', { hint: 'maas predict REF -i req.json --grpc HOST:PORT --tls-ca ca.pem [--tls-cert c.pem --tls-key k.pem]' });
    }
    const [{ grpcPredict }, { parseRef }] = await Promise.all([import('../serve/grpc/client.js'), import('../registry/refs.js')]);
    const { name, selector } = parseRef(ref!);
    const version = selector.kind === 'version' ? String(selector.version) : selector.kind === 'alias' ? selector.alias : '';
    return grpcPredict(request, name, version, {
      address: opts.grpc,
      token: opts.token,
      tls: opts.tlsCa ? { ca: opts.tlsCa, cert: opts.tlsCert, key: opts.tlsKey } : undefined,
      timeoutMs: opts.timeoutMs,
      cwd: ctx.cwd,
    });
  },
  render: (r) => JSON.stringify(r, null, 2),
});
