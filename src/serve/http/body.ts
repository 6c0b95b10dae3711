/**
 * Request bodies: read under a size limit, then parsed into tensors. A typical body (up to
 * INLINE_PARSE_BYTES) parses right here on the HTTP thread: no hop, no added latency. A larger
 * one parses in one of a few parse processes, so the HTTP thread keeps answering liveness probes
 * and small requests while megabytes of JSON parse. Processes, not worker threads: a parse
 * process has its own heap limit, and a body that needs more memory than that ends only the
 * parse process (the request gets a 413); a worker thread at its heap limit can take the whole
 * server down with it.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import type { IncomingMessage } from 'node:http';
import { setPriority } from 'node:os';
import { fileURLToPath } from 'node:url';
import { MaasError, type ErrorCode } from '../../core/errors.js';
import type { Signature } from '../../onnx/inspect.js';
import type { ParsedInfer } from '../../inference/protocol.js';
import { parseInferRequest, splitBody } from './kserve.js';
import { type ParsedPredict, parsePredictRequest } from './tfserving.js';

/** Parsing this much JSON takes a few milliseconds: not worth a round trip to a parse process. */
export const INLINE_PARSE_BYTES = 256 << 10;
/** Parse processes; each parses one body at a time. */
const PARSE_PROCESSES = 2;
const PARSE_NICENESS = 10;
/** Large bodies read and waiting for a parse process, beyond which a request gets a 503. */
const MAX_PARSE_QUEUE = 8;
/** A parse process's heap: JSON takes up to ~25× its size as JS values (`[[0],[0],…]`). */
const MIN_PARSE_HEAP_MB = 128;
const PARSE_HEAP_PER_BODY = 4;

// From src/ under vitest the parser is the built one: Node 20 cannot run a .ts entry point.
const PARSE_PROCESS = fileURLToPath(new URL(import.meta.url.endsWith('.ts') ? '../../../dist/serve/http/parse-process.js' : './parse-process.js', import.meta.url));

/** What a parse process reads on its stdin, before `bodyLength` bytes of body. */
export type ParseJob =
  | { kind: 'infer'; bodyLength: number; headerLength: string | undefined; signature: Signature }
  | { kind: 'predict'; bodyLength: number; signature: Signature };

export type ParseReply =
  | { ok: true; parsed: ParsedInfer | ParsedPredict }
  | { ok: false; code: ErrorCode | undefined; message: string; hint: string | undefined };

/** A request body as it arrived: the socket's chunks, joined only where a parse needs one buffer. */
export interface Body {
  chunks: Buffer[];
  length: number;
}

/** Reads a body of at most `limit` bytes; rejects if it is larger or the client goes away first. */
export function readBody(req: IncomingMessage, limit: number): Promise<Body> {
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > limit) return Promise.reject(tooLarge(declared, limit));
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let length = 0;
    const onData = (chunk: Buffer) => {
      length += chunk.length;
      if (length > limit) {
        req.off('data', onData);
        reject(tooLarge(length, limit));
        return;
      }
      chunks.push(chunk);
    };
    req.on('data', onData);
    req.on('end', () => resolve({ chunks, length }));
    req.on('error', reject);
    // Without this a client that leaves mid-body would leave the request pending for ever.
    req.on('close', () => {
      if (!req.complete) reject(new MaasError('MAAS_BAD_INPUT', 'the client closed the connection before the body ended'));
    });
  });
}

/** The body as one buffer; most small bodies arrive in one chunk, which needs no copy. */
function joined(body: Body): Buffer {
  return body.chunks.length === 1 ? body.chunks[0]! : Buffer.concat(body.chunks, body.length);
}

function tooLarge(size: number, limit: number): MaasError {
  return new MaasError('MAAS_PAYLOAD_TOO_LARGE', `the request body (${size} bytes) is larger than the limit of ${limit} bytes (the server's --max-body-mb)`, { hint: 'Raise --max-body-mb.' });
}

interface Queued {
  job: ParseJob;
  body: Body;
  resolve: (parsed: ParsedInfer | ParsedPredict) => void;
  reject: (error: Error) => void;
}

interface ParseProcess {
  child: ChildProcess;
  current: Queued | undefined;
}

export class BodyParser {
  private readonly heapMb: number;
  private readonly pool: ParseProcess[] = [];
  private readonly queue: Queued[] = [];
  private closed = false;

  constructor(maxBodyBytes: number) {
    this.heapMb = Math.max(MIN_PARSE_HEAP_MB, Math.ceil((PARSE_HEAP_PER_BODY * maxBodyBytes) / 2 ** 20));
    // Started now, not on the first large body: spawning blocks this thread for ~100 ms.
    for (let i = 0; i < PARSE_PROCESSES; i++) this.spawn();
  }

  /**
   * Parsed here, at once, when its JSON is small (no promise to wait for); in a parse process
   * otherwise. Only the JSON counts: binary tensors after it are sliced, not parsed, so a large
   * binary-extension body with a small JSON header never waits for a parse process.
   */
  infer(body: Body, headerLength: string | undefined, signature: Signature): ParsedInfer | Promise<ParsedInfer> {
    const jsonLength = headerLength !== undefined && /^\d+$/.test(headerLength) ? Math.min(Number(headerLength), body.length) : body.length;
    if (jsonLength <= INLINE_PARSE_BYTES) return parseInferRequest(joined(body), headerLength, signature);
    return this.offload({ kind: 'infer', bodyLength: body.length, headerLength, signature }, body) as Promise<ParsedInfer>;
  }

  async predict(body: Body, signature: Signature): Promise<ParsedPredict> {
    if (body.length <= INLINE_PARSE_BYTES) return parsePredictRequest(splitBody(joined(body), undefined).json, signature);
    return (await this.offload({ kind: 'predict', bodyLength: body.length, signature }, body)) as ParsedPredict;
  }

  close(): void {
    this.closed = true;
    for (const q of this.queue.splice(0)) q.reject(shuttingDown());
    for (const member of this.pool.splice(0)) member.child.kill();
  }

  private offload(job: ParseJob, body: Body): Promise<ParsedInfer | ParsedPredict> {
    if (this.closed) return Promise.reject(shuttingDown());
    if (this.queue.length >= MAX_PARSE_QUEUE) {
      return Promise.reject(new MaasError('MAAS_OVERLOADED', `${this.queue.length} large request bodies are waiting to be parsed`, {
        hint: 'Retry after a moment, or send tensors with the binary tensor extension, which needs no parsing.',
      }));
    }
    return new Promise((resolve, reject) => {
      this.queue.push({ job, body, resolve, reject });
      this.next();
    });
  }

  private next(): void {
    while (this.queue.length > 0) {
      let member = this.pool.find((p) => !p.current);
      if (!member) {
        if (this.pool.length >= PARSE_PROCESSES) return;
        member = this.spawn(); // replaces one that died
      }
      const queued = this.queue.shift()!;
      member.current = queued;
      const header = Buffer.from(JSON.stringify(queued.job));
      const length = Buffer.alloc(4);
      length.writeUInt32LE(header.length);
      // The socket's chunks go down the pipe as they are: no copy of the body on this thread.
      for (const chunk of [length, header, ...queued.body.chunks]) member.child.stdin!.write(chunk);
    }
  }

  private spawn(): ParseProcess {
    const child = spawn(process.execPath, [`--max-old-space-size=${this.heapMb}`, PARSE_PROCESS], {
      stdio: ['pipe', 'ignore', 'ignore', 'ipc'],
      serialization: 'advanced', // typed arrays and sets cross as they are
    });
    const member: ParseProcess = { child, current: undefined };
    // Parsing is bulk work: on a busy machine the HTTP thread and inference come first.
    try {
      setPriority(child.pid!, PARSE_NICENESS);
    } catch {
      // not permitted here: parse at the normal priority
    }
    // An idle parse process never keeps the server's process alive.
    child.unref();
    child.channel?.unref();
    (child.stdin as unknown as { unref(): void }).unref();
    child.stdin!.on('error', () => undefined); // a parse process that died is handled on exit
    child.on('message', (reply: ParseReply) => {
      const queued = member.current!;
      member.current = undefined;
      if (reply.ok) queued.resolve(reply.parsed);
      else queued.reject(reply.code ? new MaasError(reply.code, reply.message, { hint: reply.hint }) : new Error(reply.message));
      this.next();
    });
    child.on('exit', (code, signal) => this.lost(member, code, signal));
    this.pool.push(member);
    return member;
  }

  private lost(member: ParseProcess, code: number | null, signal: NodeJS.Signals | null): void {
    const at = this.pool.indexOf(member);
    if (at !== -1) this.pool.splice(at, 1);
    const queued = member.current;
    member.current = undefined;
    if (queued) {
      // V8 aborts a process that reaches its heap limit.
      const outOfMemory = signal === 'SIGABRT' || code === 134;
      queued.reject(outOfMemory
        ? new MaasError('MAAS_PAYLOAD_TOO_LARGE', `parsing this ${queued.body.length}-byte body needs more than the ${this.heapMb} MB a request may use`, {
          hint: 'Send the tensors with the binary tensor extension (parameters.binary_data_size), or split the batch.',
        })
        : new Error(`the body parser stopped (${signal ?? `exit code ${code}`})`));
    }
    if (!this.closed) this.next();
  }
}

function shuttingDown(): MaasError {
  return new MaasError('MAAS_MODEL_NOT_READY', 'the server is shutting down');
}
