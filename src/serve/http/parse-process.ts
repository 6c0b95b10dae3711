/**
 * A parse process: reads jobs from stdin (a uint32 LE header length, the JSON header, then the
 * body), parses each body into tensors and answers on the IPC channel, one at a time.
 */
import { isMaasError, messageOf } from '../../core/errors.js';
import type { ParseJob, ParseReply } from './body.js';
import { parseInferRequest, splitBody } from './kserve.js';
import { parsePredictRequest } from './tfserving.js';

function parse(job: ParseJob, body: Buffer): ParseReply {
  try {
    const parsed = job.kind === 'infer'
      ? parseInferRequest(body, job.headerLength, job.signature)
      : parsePredictRequest(splitBody(body, undefined).json, job.signature);
    return { ok: true, parsed };
  } catch (error) {
    return isMaasError(error)
      ? { ok: false, code: error.code, message: error.message, hint: error.hint }
      : { ok: false, code: undefined, message: messageOf(error), hint: undefined };
  }
}

let pending: Buffer = Buffer.alloc(0);
let job: ParseJob | undefined;
let body: Buffer | undefined;
let received = 0;

process.stdin.on('data', (chunk: Buffer) => {
  let data = pending.length > 0 ? Buffer.concat([pending, chunk]) : chunk;
  pending = Buffer.alloc(0);
  while (data.length > 0) {
    if (!job) {
      if (data.length < 4 || data.length < 4 + data.readUInt32LE(0)) {
        pending = data;
        return;
      }
      const end = 4 + data.readUInt32LE(0);
      job = JSON.parse(data.toString('utf8', 4, end)) as ParseJob;
      body = Buffer.allocUnsafe(job.bodyLength);
      received = 0;
      data = data.subarray(end);
    }
    const take = Math.min(data.length, job.bodyLength - received);
    data.copy(body!, received, 0, take);
    received += take;
    data = data.subarray(take);
    if (received === job.bodyLength) {
      const reply = parse(job, body!);
      job = undefined;
      body = undefined;
      process.send!(reply);
    }
  }
});
// The server went away: so does its parser.
process.on('disconnect', () => process.exit(0));
