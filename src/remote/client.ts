/**
 * An OCI distribution client: `/v2/` ping, Basic auth and the Bearer token challenge flow,
 * blob HEAD, monolithic and chunked uploads with resume, retries with backoff on 5xx and
 * network errors, manifest PUT/GET. `fetch` and `sleep` are injected for tests.
 *
 * Every answer is hostile until checked: a request that sees no byte for the idle timeout is
 * abandoned, manifests and error bodies are read up to a bound, digests in headers are checked.
 */
import { createHash } from 'node:crypto';
import { open } from 'node:fs/promises';
import { MaasError, messageOf } from '../core/errors.js';
import { isDigest } from '../registry/layout.js';
import { type Descriptor, MAX_MANIFEST_BYTES, digestOf } from '../registry/manifest.js';
import type { OnBytes } from '../registry/store.js';
import { INDEX_MEDIA_TYPE, MANIFEST_MEDIA_TYPE } from './artifact.js';

export interface Credentials {
  username?: string | undefined;
  password?: string | undefined;
  /** used as the bearer token as it is. */
  token?: string | undefined;
}

export interface ClientOptions {
  host: string;
  repository: string;
  plainHttp: boolean;
  credentials: Credentials;
  userAgent: string;
  fetch?: typeof fetch;
  sleep?: (ms: number) => Promise<void>;
  /** attempts per request on 5xx and network errors (default 5). */
  attempts?: number;
  /** blobs above this go up in PATCH chunks of this size (default 16 MiB). */
  chunkBytes?: number;
  /** a request that neither connects nor moves a byte for this long is abandoned (default 30 s). */
  idleTimeoutMs?: number;
}

export const DEFAULT_IDLE_TIMEOUT_MS = 30_000;

/**
 * Aborts a request when no byte has moved for `ms`. Unref'd: a finished request whose body
 * nobody reads does not keep the process alive.
 */
class Watchdog {
  private readonly controller = new AbortController();
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly ms: number, private readonly timeout: () => MaasError) {
    this.kick();
  }

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  kick(): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.controller.abort(this.timeout()), this.ms);
    this.timer.unref();
  }

  stop(): void {
    clearTimeout(this.timer);
  }

  /** `bytes` as a stream of 64 KiB pieces, each one pulled rearming the watch. */
  watch(bytes: Buffer): ReadableStream<Uint8Array> {
    let offset = 0;
    return new ReadableStream<Uint8Array>({
      pull: (controller) => {
        this.kick();
        if (offset >= bytes.length) return controller.close();
        controller.enqueue(bytes.subarray(offset, offset + (64 << 10)));
        offset += 64 << 10;
      },
    });
  }

  /** The response with its body under the same watch: each chunk rearms it, the end stops it. */
  guard(response: Response): Response {
    if (!response.body || [101, 204, 205, 304].includes(response.status)) {
      this.stop();
      return response;
    }
    const body = response.body.pipeThrough(new TransformStream<Uint8Array, Uint8Array>({
      transform: (chunk, controller) => {
        this.kick();
        controller.enqueue(chunk);
      },
      flush: () => this.stop(),
    }));
    return new Response(body, { status: response.status, statusText: response.statusText, headers: response.headers });
  }
}

/** Reads a body up to `limit` bytes; `over` says there was more (the rest is not read). */
async function readLimited(response: Response, limit: number): Promise<{ bytes: Buffer; over: boolean }> {
  if (!response.body) return { bytes: Buffer.alloc(0), over: false };
  const parts: Buffer[] = [];
  let size = 0;
  const reader = response.body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return { bytes: Buffer.concat(parts), over: false };
    size += value.length;
    if (size > limit) {
      await reader.cancel().catch(() => undefined);
      return { bytes: Buffer.concat(parts), over: true };
    }
    parts.push(Buffer.from(value));
  }
}

interface Challenge {
  scheme: string;
  params: Record<string, string>;
}

/** Parses `Bearer realm="...",service="...",scope="a b"` (quoted values may hold commas). */
export function parseChallenge(header: string): Challenge {
  const match = /^\s*(\w+)\s*(.*)$/s.exec(header);
  const params: Record<string, string> = {};
  const re = /(\w+)=(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))\s*,?\s*/g;
  for (let m = re.exec(match?.[2] ?? ''); m; m = re.exec(match?.[2] ?? '')) {
    params[m[1]!.toLowerCase()] = m[2] !== undefined ? m[2].replace(/\\(.)/g, '$1') : (m[3] ?? '');
    if (m[0] === '') break;
  }
  return { scheme: (match?.[1] ?? '').toLowerCase(), params };
}

interface RequestOptions {
  headers?: Record<string, string>;
  body?: Buffer;
  /** statuses that count as success; others become errors. */
  ok: number[];
  /** retried on 5xx and network errors (true for everything but a PATCH, which resumes instead). */
  retry?: boolean;
}

const RETRY_BASE_MS = 200;

export class RegistryClient {
  private readonly base: string;
  private readonly fetch: typeof fetch;
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly attempts: number;
  private readonly idleTimeoutMs: number;
  readonly chunkBytes: number;
  private authorization: string | undefined;
  private tokenExpires = 0;
  private challenge: Challenge | undefined;

  constructor(private readonly options: ClientOptions) {
    this.base = `${options.plainHttp ? 'http' : 'https'}://${options.host}`;
    this.fetch = options.fetch ?? fetch;
    this.sleep = options.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms)));
    this.attempts = options.attempts ?? 5;
    this.chunkBytes = options.chunkBytes ?? 16 << 20;
    this.idleTimeoutMs = options.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS;
    if (options.credentials.token) this.authorization = `Bearer ${options.credentials.token}`;
  }

  private get repo(): string {
    return `/v2/${this.options.repository}`;
  }

  private url(pathOrUrl: string): string {
    return /^https?:\/\//.test(pathOrUrl) ? pathOrUrl : new URL(pathOrUrl, this.base).toString();
  }

  /** Sends a request, answering auth challenges once and retrying transient failures. */
  async request(method: string, pathOrUrl: string, options: RequestOptions): Promise<Response> {
    const retry = options.retry ?? true;
    let authRetried = false;
    for (let attempt = 1; ; attempt++) {
      let response: Response;
      try {
        if (this.challenge?.scheme === 'bearer' && Date.now() > this.tokenExpires && !this.options.credentials.token) await this.fetchToken(this.challenge);
        response = await this.send(this.url(pathOrUrl), {
          method,
          headers: { 'user-agent': this.options.userAgent, ...(this.authorization ? { authorization: this.authorization } : {}), ...options.headers },
          ...(options.body ? { body: options.body } : {}),
        });
      } catch (error) {
        if (error instanceof MaasError) throw error;
        if (/redirect count exceeded/.test(messageOf((error as { cause?: unknown }).cause ?? error))) {
          throw new MaasError('MAAS_REMOTE_REJECTED', `${this.options.host}: ${method} ${new URL(this.url(pathOrUrl)).pathname} redirects in a loop`, {
            hint: 'The registry (or a proxy before it) is misconfigured; ask its operator.',
          });
        }
        if (retry && attempt < this.attempts) {
          await this.sleep(RETRY_BASE_MS * 2 ** (attempt - 1));
          continue;
        }
        throw new MaasError('MAAS_REMOTE_UNREACHABLE', `cannot reach ${this.base}: ${messageOf((error as { cause?: unknown }).cause ?? error)}`, {
          hint: `Check the address and that the registry is running; a registry on loopback is spoken to over plain HTTP, others need HTTPS or --plain-http.`,
        });
      }
      if (response.status === 401 && !authRetried) {
        authRetried = true;
        await response.arrayBuffer().catch(() => undefined);
        await this.authenticate(response.headers.get('www-authenticate') ?? '');
        attempt--;
        continue;
      }
      if (response.status >= 500 && retry && attempt < this.attempts) {
        await response.arrayBuffer().catch(() => undefined);
        await this.sleep(RETRY_BASE_MS * 2 ** (attempt - 1));
        continue;
      }
      if (!options.ok.includes(response.status)) throw await this.failure(method, pathOrUrl, response);
      return response;
    }
  }

  /** One fetch under the idle watchdog, connection and body alike. */
  private async send(url: string | URL, init: RequestInit): Promise<Response> {
    const what = `${init.method ?? 'GET'} ${new URL(url).pathname}`;
    const watchdog = new Watchdog(this.idleTimeoutMs, () => new MaasError('MAAS_REMOTE_UNREACHABLE', `${new URL(url).host}: ${what} moved no byte for ${this.idleTimeoutMs / 1000} s`, {
      hint: 'The registry stalled; try again later. MAAS_REMOTE_TIMEOUT_S sets how many seconds of silence maas waits (default 30).',
    }));
    // A body goes out as a stream so that each piece sent rearms the watchdog: a slow but moving
    // upload is not cut, a stalled one is.
    const body = init.body instanceof Buffer ? { body: watchdog.watch(init.body), duplex: 'half', headers: { ...(init.headers as Record<string, string>), 'content-length': String(init.body.length) } } : {};
    try {
      return watchdog.guard(await this.fetch(url, { ...init, ...body, redirect: 'follow', signal: watchdog.signal } as RequestInit));
    } catch (error) {
      watchdog.stop();
      throw watchdog.signal.aborted ? watchdog.signal.reason : error;
    }
  }

  private async authenticate(header: string): Promise<void> {
    const challenge = parseChallenge(header);
    const { username, password, token } = this.options.credentials;
    if (challenge.scheme === 'basic') {
      if (!username) throw this.unauthorized('the registry asks for a username and password');
      this.authorization = `Basic ${Buffer.from(`${username}:${password ?? ''}`).toString('base64')}`;
    } else if (challenge.scheme === 'bearer' && !token) {
      this.challenge = challenge;
      await this.fetchToken(challenge);
    } else if (!token) {
      throw this.unauthorized(`unsupported authentication scheme '${challenge.scheme}'`);
    }
  }

  /** The token flow: GET realm?service=&scope= with Basic credentials if we have them. */
  private async fetchToken(challenge: Challenge): Promise<void> {
    const realm = challenge.params.realm;
    if (!realm) throw this.unauthorized('the registry sent a Bearer challenge without a realm');
    const url = new URL(realm);
    if (challenge.params.service) url.searchParams.set('service', challenge.params.service);
    const scopes = new Set((challenge.params.scope ?? '').split(' ').filter(Boolean));
    scopes.add(`repository:${this.options.repository}:pull,push`);
    for (const scope of scopes) url.searchParams.append('scope', scope);
    const { username, password } = this.options.credentials;
    const headers: Record<string, string> = { 'user-agent': this.options.userAgent };
    if (username) headers.authorization = `Basic ${Buffer.from(`${username}:${password ?? ''}`).toString('base64')}`;
    let response: Response;
    try {
      response = await this.send(url, { headers });
    } catch (error) {
      if (error instanceof MaasError) throw error;
      throw new MaasError('MAAS_REMOTE_UNREACHABLE', `cannot reach the token server ${url.origin}: ${messageOf(error)}`);
    }
    if (response.status === 401 || response.status === 403) throw this.unauthorized('the token server refused the credentials');
    if (!response.ok) throw new MaasError('MAAS_REMOTE_REJECTED', `the token server answered ${response.status}`);
    const { bytes, over } = await readLimited(response, MAX_MANIFEST_BYTES);
    let body: { token?: string; access_token?: string; expires_in?: number };
    try {
      if (over) throw new Error(`more than ${MAX_MANIFEST_BYTES} bytes`);
      body = JSON.parse(bytes.toString('utf8')) as typeof body;
    } catch (error) {
      throw new MaasError('MAAS_REMOTE_REJECTED', `the token server answered something that is not a token: ${messageOf(error)}`);
    }
    const token = body.token ?? body.access_token;
    if (!token) throw new MaasError('MAAS_REMOTE_REJECTED', 'the token server answered without a token');
    this.authorization = `Bearer ${token}`;
    // Refresh a little before the token expires (60 s when the server does not say).
    this.tokenExpires = Date.now() + Math.max(1, (body.expires_in ?? 60) - 5) * 1000;
  }

  private unauthorized(why: string): MaasError {
    return new MaasError('MAAS_REMOTE_UNAUTHORIZED', `${this.options.host}: ${why}`, {
      hint: 'Set MAAS_REGISTRY_USERNAME and MAAS_REGISTRY_PASSWORD (or MAAS_REGISTRY_TOKEN), or add the host to your docker config.json.',
    });
  }

  private async failure(method: string, pathOrUrl: string, response: Response): Promise<MaasError> {
    const text = (await readLimited(response, 64 << 10).catch(() => ({ bytes: Buffer.alloc(0) }))).bytes.toString('utf8');
    let detail = text.trim().slice(0, 300);
    try {
      const errors = (JSON.parse(text) as { errors?: { code: string; message?: string }[] }).errors ?? [];
      if (errors.length) detail = errors.map((e) => `${e.code}${e.message ? `: ${e.message}` : ''}`).join('; ');
    } catch {
      /* not JSON: keep the text */
    }
    const what = `${method} ${new URL(this.url(pathOrUrl)).pathname} answered ${response.status}${detail ? ` (${detail})` : ''}`;
    if (response.status === 401 || response.status === 403) return this.unauthorized(`access denied: ${what}`);
    if (response.status === 404) return new MaasError('MAAS_REMOTE_NOT_FOUND', `${this.options.host}/${this.options.repository}: ${what}`, { hint: 'Check the repository and tag.' });
    return new MaasError('MAAS_REMOTE_REJECTED', `${this.options.host}: ${what}`, { hint: 'The registry refused the request; its message is above.' });
  }

  async ping(): Promise<void> {
    await this.request('GET', '/v2/', { ok: [200] });
  }

  async hasBlob(descriptor: Descriptor): Promise<boolean> {
    const response = await this.request('HEAD', `${this.repo}/blobs/${descriptor.digest}`, { ok: [200, 404] });
    return response.status === 200;
  }

  /** Uploads a blob from a file: one PUT when small, PATCH chunks (resumed after a cut) when large. */
  async uploadFile(path: string, descriptor: Descriptor, onBytes: OnBytes = () => {}): Promise<void> {
    const file = await open(path, 'r');
    try {
      const read = async (offset: number, length: number) => {
        const buffer = Buffer.allocUnsafe(length);
        const { bytesRead } = await file.read(buffer, 0, length, offset);
        return buffer.subarray(0, bytesRead);
      };
      await this.upload(descriptor, read, onBytes);
    } finally {
      await file.close();
    }
  }

  async uploadBytes(bytes: Buffer, descriptor: Descriptor): Promise<void> {
    await this.upload(descriptor, async (offset, length) => bytes.subarray(offset, offset + length), () => {});
  }

  /**
   * The bytes are hashed as they are read, so a blob that does not match its digest (damaged on
   * disk, or changed during the push) is never committed: its upload session is cancelled before
   * the final PUT, instead of being left for the registry to refuse.
   */
  private async upload(descriptor: Descriptor, read: (offset: number, length: number) => Promise<Buffer>, onBytes: OnBytes): Promise<void> {
    const open = async () => this.location(await this.request('POST', `${this.repo}/blobs/uploads/`, { ok: [202], headers: { 'content-length': '0' } }));
    const hash = createHash('sha256');
    let hashed = 0;
    /** Throws when the bytes read are not the blob's, cancelling the session if one is open. */
    const checkRead = async (location: string | undefined) => {
      const digest = `sha256:${hash.digest('hex')}`;
      if (hashed === descriptor.size && digest === descriptor.digest) return;
      if (location) await this.request('DELETE', location, { ok: [204, 404] }).catch(() => undefined);
      throw new MaasError('MAAS_DIGEST_MISMATCH', `the ${descriptor.digest} read for upload holds ${hashed} bytes with digest ${digest}${location ? '; the upload was cancelled' : ''}`);
    };
    if (descriptor.size <= this.chunkBytes) {
      // A small blob is read and checked whole before any session is opened.
      const body = await read(0, descriptor.size);
      hash.update(body);
      hashed = body.length;
      await checkRead(undefined);
      await this.request('PUT', withDigest(await open(), descriptor.digest), { ok: [201], body, headers: { 'content-type': 'application/octet-stream' } });
      onBytes(descriptor.size);
      return;
    }
    let location = await open();
    let offset = 0;
    let failures = 0;
    while (offset < descriptor.size) {
      const chunk = await read(offset, Math.min(this.chunkBytes, descriptor.size - offset));
      if (chunk.length === 0) break; // the file ended early: the check below says so
      // After a resume, the part of a chunk read before was hashed the first time.
      if (offset <= hashed && hashed < offset + chunk.length) {
        hash.update(chunk.subarray(hashed - offset));
        hashed = offset + chunk.length;
      }
      try {
        const response = await this.request('PATCH', location, {
          ok: [202],
          retry: false,
          body: chunk,
          headers: { 'content-type': 'application/octet-stream', 'content-range': `${offset}-${offset + chunk.length - 1}` },
        });
        location = this.location(response);
        offset += chunk.length;
        failures = 0;
        onBytes(offset);
      } catch (error) {
        if (!(error instanceof MaasError) || (error.code !== 'MAAS_REMOTE_UNREACHABLE' && error.code !== 'MAAS_REMOTE_REJECTED') || ++failures >= this.attempts) throw error;
        await this.sleep(RETRY_BASE_MS * 2 ** (failures - 1));
        // The connection was cut or the registry failed mid-chunk: ask how much it kept and go
        // on from there. A registry that dropped the session (distribution 2.8 does after a
        // partial PATCH: its signed upload state no longer matches) gets the blob from the start.
        const status = await this.request('GET', location, { ok: [204, 404, 400] });
        if (status.status === 204) {
          location = this.location(status);
          offset = uploadedBytes(status.headers.get('range'));
        } else {
          await status.arrayBuffer().catch(() => undefined);
          location = await open();
          offset = 0;
        }
        onBytes(offset);
      }
    }
    await checkRead(location);
    await this.request('PUT', withDigest(location, descriptor.digest), { ok: [201], headers: { 'content-length': '0' } });
  }

  private location(response: Response): string {
    const location = response.headers.get('location');
    if (!location) throw new MaasError('MAAS_REMOTE_REJECTED', `${this.options.host} answered an upload without a Location`);
    return this.url(location);
  }

  /**
   * PUTs a manifest (an image manifest, or an image index for the referrers tag schema).
   * `subjectProcessed`: the registry answered OCI-Subject, so it indexes referrers itself.
   */
  async putManifest(reference: string, bytes: Buffer, mediaType = MANIFEST_MEDIA_TYPE): Promise<{ digest: string; subjectProcessed: boolean }> {
    const response = await this.request('PUT', `${this.repo}/manifests/${reference}`, { ok: [201], body: bytes, headers: { 'content-type': mediaType } });
    return { digest: this.contentDigest(response) ?? '', subjectProcessed: response.headers.has('oci-subject') };
  }

  /**
   * The manifest's bytes, refused when the answer is none of `accept` (an image manifest by
   * default) or is over 4 MiB. `missing: 'undefined'` answers a 404 with undefined.
   */
  async getManifest(reference: string, accept: string[] = [MANIFEST_MEDIA_TYPE]): Promise<{ bytes: Buffer; digest: string | undefined; mediaType: string }> {
    const response = await this.request('GET', `${this.repo}/manifests/${reference}`, { ok: [200], headers: { accept: accept.join(', ') } });
    const where = `${this.options.host}/${this.options.repository}:${reference}`;
    const refuse = async (why: string) => {
      await response.body?.cancel().catch(() => undefined);
      return new MaasError('MAAS_REMOTE_REJECTED', `${where}: ${why}`, { hint: 'maas pulls the OCI image manifests that maas push writes; nothing was written.' });
    };
    const type = (response.headers.get('content-type') ?? '').split(';')[0]!.trim();
    if (!accept.includes(type)) throw await refuse(`the registry answered ${type ? `a ${type}` : 'without a content type'}, not ${accept.length === 1 ? 'an OCI image manifest' : `one of ${accept.join(', ')}`}`);
    if (Number(response.headers.get('content-length') ?? 0) > MAX_MANIFEST_BYTES) throw await refuse(`the manifest is ${response.headers.get('content-length')} bytes (at most ${MAX_MANIFEST_BYTES})`);
    const digest = this.contentDigest(response);
    const { bytes, over } = await readLimited(response, MAX_MANIFEST_BYTES);
    if (over) throw await refuse(`the manifest is over ${MAX_MANIFEST_BYTES} bytes`);
    return { bytes, digest, mediaType: type };
  }

  /**
   * The digest of the manifest a tag names now, whatever its kind (an image, an index, a docker
   * manifest), or undefined when the repository has no such tag. One over 4 MiB is no maas
   * manifest and reads as `oversize`.
   */
  async taggedDigest(tag: string): Promise<string | undefined> {
    const accept = [MANIFEST_MEDIA_TYPE, INDEX_MEDIA_TYPE, 'application/vnd.docker.distribution.manifest.v2+json', 'application/vnd.docker.distribution.manifest.list.v2+json'];
    const response = await this.request('GET', `${this.repo}/manifests/${tag}`, { ok: [200, 404], headers: { accept: accept.join(', ') } });
    if (response.status === 404) {
      await response.body?.cancel().catch(() => undefined);
      return undefined;
    }
    const { bytes, over } = await readLimited(response, MAX_MANIFEST_BYTES);
    return over ? 'oversize' : digestOf(bytes);
  }

  /** Whether a manifest or tag exists (HEAD). */
  async hasManifest(reference: string, accept: string[]): Promise<boolean> {
    const response = await this.request('HEAD', `${this.repo}/manifests/${reference}`, { ok: [200, 404], headers: { accept: accept.join(', ') } });
    return response.status === 200;
  }

  /**
   * The referrers API (distribution-spec 1.1): the image index of manifests whose subject is
   * `digest`; undefined where the registry does not have the API (distribution 2.8 answers 404),
   * so the caller falls back to the referrers tag schema.
   */
  async referrers(digest: string): Promise<Buffer | undefined> {
    const response = await this.request('GET', `${this.repo}/referrers/${digest}`, { ok: [200, 404, 400], headers: { accept: INDEX_MEDIA_TYPE } });
    const type = (response.headers.get('content-type') ?? '').split(';')[0]!.trim();
    if (response.status !== 200 || type !== INDEX_MEDIA_TYPE) {
      await response.body?.cancel().catch(() => undefined);
      return undefined;
    }
    const { bytes, over } = await readLimited(response, MAX_MANIFEST_BYTES);
    if (over) throw new MaasError('MAAS_REMOTE_REJECTED', `${this.options.host}: the referrers of ${digest} are over ${MAX_MANIFEST_BYTES} bytes`);
    return bytes;
  }

  /** Docker-Content-Digest, when sent, must be a digest: it is compared, never used as a path. */
  private contentDigest(response: Response): string | undefined {
    const digest = response.headers.get('docker-content-digest');
    if (digest === null) return undefined;
    if (!isDigest(digest)) throw new MaasError('MAAS_REMOTE_REJECTED', `${this.options.host} sent the digest '${digest.slice(0, 100)}', which is not sha256: and 64 lowercase hex digits`);
    return digest;
  }

  async getBlob(descriptor: Descriptor): Promise<AsyncIterable<Uint8Array>> {
    const response = await this.request('GET', `${this.repo}/blobs/${descriptor.digest}`, { ok: [200] });
    if (!response.body) throw new MaasError('MAAS_REMOTE_REJECTED', `blob ${descriptor.digest} came without a body`);
    return response.body as unknown as AsyncIterable<Uint8Array>;
  }
}

function withDigest(location: string, digest: string): string {
  return `${location}${location.includes('?') ? '&' : '?'}digest=${encodeURIComponent(digest)}`;
}

/**
 * `Range: 0-1023` means 1024 bytes are stored. distribution answers `0-0` for an empty session
 * too, so that reads as 0: at worst one byte is sent again, which it overwrites in order.
 */
function uploadedBytes(range: string | null): number {
  const end = Number(/^\d+-(\d+)$/.exec(range ?? '')?.[1] ?? 0);
  return end === 0 ? 0 : end + 1;
}
