/** A parse worker: turns one large request body at a time into tensors, off the HTTP thread. */
import { parentPort } from 'node:worker_threads';
import { isMaasError, messageOf } from '../core/errors.js';
import type { ParseJob, ParseReply } from './body.js';
import { tensorBuffers } from './body.js';
import { parseInferRequest, splitBody } from './kserve.js';
import { parsePredictRequest } from './tfserving.js';

parentPort!.on('message', (job: ParseJob) => {
  const body = Buffer.from(job.body.buffer, job.body.byteOffset, job.body.byteLength);
  let reply: ParseReply;
  try {
    const parsed = job.kind === 'infer'
      ? parseInferRequest(body, job.headerLength, job.signature)
      : parsePredictRequest(splitBody(body, undefined).json, job.signature);
    reply = { ok: true, parsed };
  } catch (error) {
    reply = isMaasError(error)
      ? { ok: false, code: error.code, message: error.message, hint: error.hint }
      : { ok: false, code: undefined, message: messageOf(error), hint: undefined };
  }
  parentPort!.postMessage(reply, reply.ok ? tensorBuffers(reply.parsed.feeds) : []);
});
