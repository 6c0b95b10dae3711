/**
 * Request bodies: read under a size limit, then parsed into tensors. A typical body (up to
 * INLINE_PARSE_BYTES) parses right here on the HTTP thread: no hop, no added latency. A larger
 * one parses in a small pool of parse workers with a heap limit, so the HTTP thread keeps
 * answering liveness probes and small requests while megabytes of JSON parse, and a body whose
 * parse needs more memory than the bound gets a 413 instead of taking the process down.
 */
import type { IncomingMessage } from 'node:http';
import { Worker } from 'node:worker_threads';
import { MaasError, type ErrorCode } from '../core/errors.js';
import type { Signature } from '../onnx/inspect.js';
import { type ParsedInfer, parseInferRequest, splitBody } from './kserve.js';
import { type ParsedPredict, parsePredictRequest } from './tfserving.js';
import type { WireTensor } from './tensors.js';

/** Parsing this much JSON takes a few milliseconds: not worth a round trip to a worker. */
export const INLINE_PARSE_BYTES = 256 << 10;
/** Parse workers; each holds one body at a time. */
const PARSE_WORKERS = 2;
/** Large bodies read and waiting for a parse worker, beyond which a request gets a 503. */
const MAX_PARSE_QUEUE = 8;
/** A parse worker's heap: JSON takes up to ~25× its size as JS values (`[[0],[0],…]`). */
const MIN_PARSE_HEAP_MB = 128;
const PARSE_HEAP_PER_BODY = 4;

// From src/ under vitest the worker is the built one: Node 20 cannot run a .ts worker.
const PARSE_WORKER_URL = new URL(import.meta.url.endsWith('.ts') ? '../../dist/serve/parse-worker.js' : './parse-worker.js', import.meta.url);

export type ParseJob =
  | { kind: 'infer'; body: Uint8Array; headerLength: string | undefined; signature: Signature }
  | { kind: 'predict'; body: Uint8Array; signature: Signature };

export type ParseReply =
  | { ok: true; parsed: ParsedInfer | ParsedPredict }
  | { ok: false; code: ErrorCode | undefined; message: string; hint: string | undefined };

/** Reads a body of at most `limit` bytes; rejects if it is larger or the client goes away first. */
export function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const declared = req.headers['content-length'] === undefined ? undefined : Number(req.headers['content-length']);
  if (declared !== undefined && declared > limit) return Promise.reject(tooLarge(declared, limit));
  return new Promise((resolve, reject) => {
    // A declared large body is written into one buffer as it arrives: no concatenating copy of
    // tens of megabytes on this thread at the end.
    const whole = declared !== undefined && declared > INLINE_PARSE_BYTES ? Buffer.allocUnsafe(declared) : undefined;
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      if (size + chunk.length > limit) {
        req.off('data', onData);
        reject(tooLarge(size + chunk.length, limit));
        return;
      }
      if (whole) chunk.copy(whole, size);
      else chunks.push(chunk);
      size += chunk.length;
    };
    req.on('data', onData);
    req.on('end', () => resolve(whole ?? Buffer.concat(chunks, size)));
    req.on('error', reject);
    // Without this a client that leaves mid-body would leave the request pending for ever.
    req.on('close', () => {
      if (!req.complete) reject(new MaasError('MAAS_BAD_INPUT', 'the client closed the connection before the body ended'));
    });
  });
}

function tooLarge(size: number, limit: number): MaasError {
  return new MaasError('MAAS_PAYLOAD_TOO_LARGE', `the request body (${size} bytes) is larger than the limit of ${limit} bytes`, { hint: 'Raise --max-body-mb.' });
}

interface Queued {
  job: ParseJob;
  resolve: (parsed: ParsedInfer | ParsedPredict) => void;
  reject: (error: Error) => void;
}

interface ParseWorker {
  worker: Worker;
  current: Queued | undefined;
}

export class BodyParser {
  private readonly heapMb: number;
  private readonly pool: ParseWorker[] = [];
  private readonly queue: Queued[] = [];
  private closed = false;

  constructor(maxBodyBytes: number) {
    this.heapMb = Math.max(MIN_PARSE_HEAP_MB, Math.ceil((PARSE_HEAP_PER_BODY * maxBodyBytes) / 2 ** 20));
  }

  async infer(body: Buffer, headerLength: string | undefined, signature: Signature): Promise<ParsedInfer> {
    if (body.length <= INLINE_PARSE_BYTES) return parseInferRequest(body, headerLength, signature);
    return (await this.offload({ kind: 'infer', body, headerLength, signature })) as ParsedInfer;
  }

  async predict(body: Buffer, signature: Signature): Promise<ParsedPredict> {
    if (body.length <= INLINE_PARSE_BYTES) return parsePredictRequest(splitBody(body, undefined).json, signature);
    return (await this.offload({ kind: 'predict', body, signature })) as ParsedPredict;
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const q of this.queue.splice(0)) q.reject(new MaasError('MAAS_MODEL_NOT_READY', 'the server is shutting down'));
    await Promise.all(this.pool.splice(0).map((w) => w.worker.terminate()));
  }

  private offload(job: ParseJob): Promise<ParsedInfer | ParsedPredict> {
    if (this.closed) return Promise.reject(new MaasError('MAAS_MODEL_NOT_READY', 'the server is shutting down'));
    if (this.queue.length >= MAX_PARSE_QUEUE) {
      return Promise.reject(new MaasError('MAAS_OVERLOADED', `${this.queue.length} large request bodies are waiting to be parsed`, {
        hint: 'Retry after a moment, or send tensors with the binary tensor extension, which needs no parsing.',
      }));
    }
    return new Promise((resolve, reject) => {
      this.queue.push({ job, resolve, reject });
      this.next();
    });
  }

  private next(): void {
    while (this.queue.length > 0) {
      let member = this.pool.find((w) => !w.current);
      if (!member) {
        if (this.pool.length >= PARSE_WORKERS) return;
        member = this.spawn();
      }
      const queued = this.queue.shift()!;
      member.current = queued;
      const { body } = queued.job;
      // The body is this request's alone once read: hand its memory over instead of copying,
      // unless it is a slice of a shared pool.
      const owned = body.byteOffset === 0 && body.byteLength === body.buffer.byteLength;
      member.worker.postMessage(queued.job, owned ? [body.buffer as ArrayBuffer] : []);
    }
  }

  private spawn(): ParseWorker {
    const worker = new Worker(PARSE_WORKER_URL, { resourceLimits: { maxOldGenerationSizeMb: this.heapMb } });
    const member: ParseWorker = { worker, current: undefined };
    worker.unref(); // an idle parse worker never keeps the process alive
    worker.on('message', (reply: ParseReply) => {
      const queued = member.current!;
      member.current = undefined;
      if (reply.ok) queued.resolve(reply.parsed);
      else queued.reject(reply.code ? new MaasError(reply.code, reply.message, { hint: reply.hint }) : new Error(reply.message));
      this.next();
    });
    // Only a body too big to parse within the heap limit (or a bug) ends a parse worker.
    worker.on('error', (error) => this.lost(member, error));
    worker.on('exit', () => this.lost(member, undefined));
    this.pool.push(member);
    return member;
  }

  private lost(member: ParseWorker, error: Error | undefined): void {
    const at = this.pool.indexOf(member);
    if (at !== -1) this.pool.splice(at, 1);
    const queued = member.current;
    member.current = undefined;
    if (queued) {
      const outOfMemory = (error as { code?: string } | undefined)?.code === 'ERR_WORKER_OUT_OF_MEMORY';
      queued.reject(outOfMemory
        ? new MaasError('MAAS_PAYLOAD_TOO_LARGE', `parsing this ${queued.job.body.length}-byte body needs more than the ${this.heapMb} MB a request may use`, {
          hint: 'Send the tensors with the binary tensor extension (parameters.binary_data_size), or split the batch.',
        })
        : new Error(`the body parser stopped: ${error?.message ?? 'exited'}`));
    }
    if (!this.closed) this.next();
  }
}

/** The transferable buffers of parsed tensors, each once. */
export function tensorBuffers(feeds: Record<string, WireTensor>): ArrayBuffer[] {
  return [...new Set(Object.values(feeds).flatMap((t) => (Array.isArray(t.data) ? [] : [t.data.buffer as ArrayBuffer])))];
}
