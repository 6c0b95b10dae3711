/**
 * `maas bench --server URL`: the bench loop (bench.ts) end to end through a running `maas serve`,
 * so the profile includes HTTP. Each request is KServe v2 REST's
 * `POST /v2/models/NAME/versions/V/infer` with its inputs in the binary tensor extension and its
 * outputs asked for as binary, over one kept-alive connection; every wait is bounded by the
 * timeout. The server's repository index says which provider runs the version and which manifest
 * it serves: a server serving other bytes under NAME@V is refused, as its profile would be
 * recorded against the wrong version.
 */
import { Agent as HttpAgent, type IncomingMessage, request as httpRequest } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { type ClientTls, connectionFailure } from '../core/client-tls.js';
import { MaasError } from '../core/errors.js';
import type { Signature } from '../onnx/inspect.js';
import { type ModelProfile, type ProfileOptions, checkProfileOptions, measureBatches } from './bench-loop.js';
import { SERVING_DEFAULTS } from './config.js';
import { kserveDatatype, toBinary, type WireTensor } from './tensors.js';

/** KServe's binary tensor extension: the JSON header's length. */
const HEADER_LENGTH = 'inference-header-content-length';
/** An answer larger than this is no inference answer of a benchmark input. */
const MAX_ANSWER_BYTES = 1 << 30;

export interface ServerBenchTarget {
  url: URL;
  token?: string | undefined;
  /** the CA that signed the server's certificate (https:// with a private CA), and a client certificate (mTLS). */
  tls?: ClientTls | undefined;
  name: string;
  version: number;
  /** the manifest digest here; the server must serve the same. */
  manifestDigest: string;
  signature: Signature;
}

/** `--server`'s value as a URL, or MAAS_USAGE. */
export function serverUrl(text: string): URL {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new MaasError('MAAS_USAGE', `'${text.slice(0, 200)}' is not a server URL`, { hint: 'Give http://host:port or https://host:port, as `maas serve` printed it.' });
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new MaasError('MAAS_USAGE', `'${text.slice(0, 200)}' is not http:// or https://`, { hint: 'Give the URL `maas serve` printed.' });
  }
  return url;
}

/** A request's body in the binary tensor extension: the JSON header, then each input's bytes. */
export function encodeBinaryInfer(feeds: Record<string, WireTensor>): { body: Buffer; headerLength: number } {
  const chunks: Buffer[] = [];
  const inputs = Object.entries(feeds).map(([name, tensor]) => {
    const bytes = toBinary(tensor);
    chunks.push(bytes);
    return { name, datatype: kserveDatatype(tensor.type), shape: tensor.dims, parameters: { binary_data_size: bytes.length } };
  });
  const json = Buffer.from(JSON.stringify({ inputs, parameters: { binary_data_output: true } }));
  return { body: Buffer.concat([json, ...chunks]), headerLength: json.length };
}

interface Answer {
  status: number;
  body: Buffer;
}

/** A server's refusal of a request for its content (400, 413, or a failed run): at a batch size's first request, a reason to skip it. */
class ServerAnswer extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

/** The server's `{"error": "..."}`, or the status. */
function errorText(answer: Answer): string {
  try {
    const parsed = JSON.parse(answer.body.toString('utf8')) as { error?: unknown };
    if (typeof parsed.error === 'string') return parsed.error.slice(0, 500);
    if (parsed.error && typeof parsed.error === 'object' && typeof (parsed.error as { message?: unknown }).message === 'string') return (parsed.error as { message: string }).message.slice(0, 500);
  } catch {
    /* not JSON */
  }
  return `HTTP ${answer.status}`;
}

class Client {
  private readonly agent: HttpAgent;
  private readonly send: typeof httpRequest;

  private readonly sendsCertificate: boolean;

  constructor(readonly base: URL, private readonly token: string | undefined, private readonly timeoutMs: number, tls: ClientTls | undefined) {
    this.sendsCertificate = tls?.cert !== undefined;
    const https = base.protocol === 'https:';
    this.agent = https ? new HttpsAgent({ keepAlive: true, maxSockets: 1, ...tls }) : new HttpAgent({ keepAlive: true, maxSockets: 1 });
    this.send = https ? (httpsRequest as typeof httpRequest) : httpRequest;
  }

  post(path: string, body: Buffer, headers: Record<string, string>): Promise<Answer> {
    const url = new URL(path, this.base);
    const origin = this.base.origin;
    return new Promise<Answer>((resolve, reject) => {
      let settled = false;
      const finish = (error: unknown, answer?: Answer) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        if (answer) resolve(answer);
        else reject(error);
      };
      const req = this.send(url, {
        method: 'POST',
        agent: this.agent,
        headers: { ...headers, 'content-length': String(body.length), ...(this.token ? { authorization: `Bearer ${this.token}` } : {}) },
      }, (res: IncomingMessage) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > MAX_ANSWER_BYTES) {
            req.destroy();
            finish(new MaasError('MAAS_REMOTE_REJECTED', `${origin} sent an answer over ${MAX_ANSWER_BYTES} bytes`, { hint: 'Is this a maas server?' }));
            return;
          }
          chunks.push(chunk);
        });
        res.on('end', () => finish(undefined, { status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
        res.on('error', (error) => finish(this.unreachable(error)));
      });
      const timer = setTimeout(() => {
        req.destroy();
        finish(new MaasError('MAAS_REMOTE_UNREACHABLE', `${origin} did not answer ${url.pathname} within ${this.timeoutMs} ms`, {
          hint: 'Is the server overloaded or stuck? Raise --timeout-ms for a model whose requests take longer.',
        }));
      }, this.timeoutMs);
      req.on('error', (error) => finish(this.unreachable(error)));
      req.end(body);
    });
  }

  close(): void {
    this.agent.destroy();
  }

  private unreachable(error: unknown): MaasError {
    return connectionFailure(this.base.origin, error, this.sendsCertificate, 'Is `maas serve` running there? Check the URL (as `maas serve` printed it).');
  }
}

/** An answer to anything but an infer request that is not 200: what it means for the user. */
function failure(origin: string, answer: Answer, what: string): MaasError {
  const message = `${origin} answered ${what} with ${answer.status}: ${errorText(answer)}`;
  if (answer.status === 401 || answer.status === 403) return new MaasError('MAAS_REMOTE_UNAUTHORIZED', message, { hint: "Pass the server's token with --token (or MAAS_TOKEN)." });
  return new MaasError('MAAS_REMOTE_REJECTED', message, { hint: answer.status === 503 ? 'The server is busy or still loading; retry in a moment.' : "See the server's log for more." });
}

interface IndexEntry {
  name?: unknown;
  version?: unknown;
  digest?: unknown;
  device?: unknown;
}

/** The server's repository index line of the version, or undefined when it does not say (no index, not allowed). */
async function indexEntry(client: Client, target: ServerBenchTarget): Promise<IndexEntry | undefined> {
  let answer: Answer;
  try {
    answer = await client.post('/v2/repository/index', Buffer.from('{}'), { 'content-type': 'application/json' });
  } catch (error) {
    if (error instanceof MaasError && (error.code === 'MAAS_REMOTE_UNREACHABLE' || error.code === 'MAAS_REMOTE_UNAUTHORIZED')) throw error;
    return undefined;
  }
  if (answer.status === 401) throw failure(client.base.origin, answer, 'the repository index');
  if (answer.status !== 200) return undefined;
  try {
    const index = JSON.parse(answer.body.toString('utf8')) as unknown;
    if (!Array.isArray(index)) return undefined;
    return (index as IndexEntry[]).find((e) => e && e.name === target.name && e.version === String(target.version));
  } catch {
    return undefined;
  }
}

/**
 * Profiles a version through a running server: the same closed loop as profileModel, one
 * request in flight. A batch size the server refuses (400 or 413, or a failed run at its first
 * request) is `skipped` with the server's reason. Throws MaasError: MAAS_REMOTE_UNREACHABLE
 * (exit 5: no connection, or no answer within `timeoutMs`), MAAS_REMOTE_UNAUTHORIZED (401/403),
 * MAAS_MODEL_NOT_FOUND (404: the server does not serve NAME@V), MAAS_VERSION_CONFLICT (the server
 * serves other bytes as NAME@V), MAAS_REMOTE_REJECTED (any other failure).
 */
export async function profileServer(target: ServerBenchTarget, options: ProfileOptions): Promise<ModelProfile> {
  checkProfileOptions(options);
  const client = new Client(target.url, target.token, options.timeoutMs ?? SERVING_DEFAULTS.timeoutMs, target.tls);
  const origin = target.url.origin;
  const ref = `${target.name}@${target.version}`;
  try {
    const before = await indexEntry(client, target);
    if (before && typeof before.digest === 'string' && before.digest !== target.manifestDigest) {
      throw new MaasError('MAAS_VERSION_CONFLICT', `${origin} serves other bytes as ${ref} (manifest ${before.digest}; here ${target.manifestDigest})`, {
        hint: 'Benchmark a server that serves this registry, or run `maas bench` in the registry that server serves.',
      });
    }
    const path = `/v2/models/${encodeURIComponent(target.name)}/versions/${target.version}/infer`;
    const encoded = new WeakMap<object, { body: Buffer; headerLength: number }>();
    const batches = await measureBatches(
      target.signature,
      options,
      async (feeds) => {
        let request = encoded.get(feeds);
        if (!request) {
          request = encodeBinaryInfer(feeds);
          encoded.set(feeds, request);
        }
        const answer = await client.post(path, request.body, { 'content-type': 'application/octet-stream', [HEADER_LENGTH]: String(request.headerLength) });
        if (answer.status === 200) return;
        if (answer.status === 404) {
          throw new MaasError('MAAS_MODEL_NOT_FOUND', `${origin} does not serve ${ref}: ${errorText(answer)}`, { hint: `Serve it there: \`maas serve ${ref}\`, or load it with \`maas deploy ${ref} --to ${origin}\`.` });
        }
        if (answer.status === 400 || answer.status === 413 || answer.status === 500) throw new ServerAnswer(answer.status, errorText(answer));
        throw failure(origin, answer, `${ref}'s infer request`);
      },
      (error) => (error instanceof ServerAnswer ? `the server refused it (${error.status}): ${error.message}` : undefined),
    ).catch((error: unknown) => {
      // A refusal after the batch size had worked is a failure of the server, not of the batch size.
      if (error instanceof ServerAnswer) throw new MaasError('MAAS_REMOTE_REJECTED', `${origin} answered ${ref}'s infer request with ${error.status}: ${error.message}`, { hint: "See the server's log for more." });
      throw error;
    });
    const after = await indexEntry(client, target);
    const provider = after && typeof after.device === 'string' ? after.device : 'unknown';
    return { provider, durationMs: options.durationMs, batches };
  } finally {
    client.close();
  }
}
