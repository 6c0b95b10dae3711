/**
 * A client of a running `maas serve`'s REST API, for `maas deploy`, `undeploy` and `ps`: JSON in,
 * JSON out, over HTTP or HTTPS (with the server's CA when it is private), the token as a bearer.
 * The server's answer is bounded in size and time like any remote's.
 */
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { MaasError } from '../../core/errors.js';
import { connectionFailure, readClientTls } from '../../core/client-tls.js';

export interface ServerTarget {
  /** http(s)://host:port of the server. */
  url: string;
  token?: string | undefined;
  /** a PEM CA that signed the server's certificate. */
  ca?: string | undefined;
  /** a PEM client certificate and its key, for a server that asks for one (mTLS). */
  cert?: string | undefined;
  key?: string | undefined;
  /** how long one call may take (a load pulls and warms up a model). */
  timeoutMs: number;
  cwd: string;
}

/** What a client says when a server refuses a version its memory budget cannot hold (REST 507, gRPC RESOURCE_EXHAUSTED). */
export const BUDGET_EXCEEDED_HINT = "Raise the server's --memory-budget / --max-loaded-models, or pin fewer versions there.";

/** Management answers are a few KiB; an index of thousands of versions still fits. */
const MAX_ANSWER_BYTES = 16 << 20;

function serverUrl(target: ServerTarget, path: string): URL {
  let base: URL;
  try {
    base = new URL(target.url);
  } catch {
    throw new MaasError('MAAS_USAGE', `'${target.url.slice(0, 200)}' is not a server URL`, { hint: 'Give http://host:port or https://host:port, as `maas serve` printed it.' });
  }
  if (base.protocol !== 'http:' && base.protocol !== 'https:') throw new MaasError('MAAS_USAGE', `'${target.url.slice(0, 200)}' is not http:// or https://`, { hint: 'Give the URL `maas serve` printed.' });
  return new URL(path, base);
}

/** The server's `{"error": ...}`, or the status line. */
function errorText(status: number, body: string): string {
  try {
    const parsed = JSON.parse(body) as { error?: unknown };
    if (typeof parsed.error === 'string') return parsed.error.slice(0, 2000);
  } catch {
    /* not JSON */
  }
  return `HTTP ${status}`;
}

function failure(target: ServerTarget, status: number, body: string): MaasError {
  const message = `${target.url} answered ${status}: ${errorText(status, body)}`;
  if (status === 401) return new MaasError('MAAS_REMOTE_UNAUTHORIZED', message, { hint: "Pass the server's token with --token (or MAAS_TOKEN)." });
  if (status === 403) return new MaasError('MAAS_REMOTE_UNAUTHORIZED', message, { hint: 'Start the server with --token to manage it from the network.' });
  if (status === 404) return new MaasError('MAAS_MODEL_NOT_FOUND', message, { hint: 'Check the name and version; POST /v2/repository/index lists what the server can load.' });
  if (status === 507) return new MaasError('MAAS_BUDGET_EXCEEDED', message, { hint: BUDGET_EXCEEDED_HINT });
  return new MaasError('MAAS_REMOTE_REJECTED', message, { hint: status === 503 ? 'The server is busy or starting; retry in a moment.' : 'See the server\'s log for more.' });
}

/** POSTs `body` as JSON to `path` and returns the parsed answer; any status but 200 is an error with the server's message. */
export function callServer<T>(target: ServerTarget, path: string, body: unknown): Promise<T> {
  const url = serverUrl(target, path);
  const payload = Buffer.from(JSON.stringify(body));
  const tls = readClientTls(target, target.cwd);
  const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise<T>((resolvePromise, reject) => {
    const req = send(url, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'content-length': String(payload.length),
        ...(target.token ? { authorization: `Bearer ${target.token}` } : {}),
      },
      ...tls,
    }, (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > MAX_ANSWER_BYTES) {
          req.destroy(new MaasError('MAAS_REMOTE_REJECTED', `${target.url} sent an answer over ${MAX_ANSWER_BYTES} bytes`, { hint: 'Is this a maas server?' }));
          return;
        }
        chunks.push(chunk);
      });
      res.on('end', () => {
        clearTimeout(timer);
        const text = Buffer.concat(chunks).toString('utf8');
        if (res.statusCode !== 200) return reject(failure(target, res.statusCode ?? 0, text));
        try {
          resolvePromise(JSON.parse(text) as T);
        } catch {
          reject(new MaasError('MAAS_REMOTE_REJECTED', `${target.url} answered ${path} with something that is not JSON`, { hint: 'Is this a maas server?' }));
        }
      });
      res.on('error', (error) => reject(error));
    });
    const timer = setTimeout(() => req.destroy(new MaasError('MAAS_REMOTE_UNREACHABLE', `${target.url} did not answer ${path} within ${Math.round(target.timeoutMs / 1000)} s`, { hint: 'Raise --timeout-ms, or look at the server.' })), target.timeoutMs);
    req.on('error', (error) => {
      clearTimeout(timer);
      reject(error instanceof MaasError ? error : connectionFailure(target.url, error, target.cert !== undefined,
        'Is `maas serve` running there? Check the URL (https:// needs --tls-ca for a private CA, and --tls-cert with --tls-key where it asks for a client certificate).'));
    });
    req.end(payload);
  });
}
