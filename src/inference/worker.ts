/**
 * An inference worker: one onnxruntime session on its own thread, because `session.run`
 * blocks the thread that calls it (onnxruntime-node 1.30). The HTTP thread runs no model but
 * those a probe found to take microseconds (runtime.ts).
 */
import { parentPort, workerData } from 'node:worker_threads';
import type { Signature } from '../onnx/inspect.js';
import { type Tried, openSession, probe, warmUp } from './session.js';
import type { WireTensor } from './tensors.js';

export interface WorkerInit {
  modelPath: string;
  /** execution providers to try in order; the first that creates a session is used. */
  providers: string[];
  threads: number;
  signature: Signature;
  /** the version's stored warm-up samples; none: a generated one-row sample. */
  samples: Record<string, WireTensor>[] | undefined;
  /**
   * The first worker of a version times a one-row run for --inline-us, unless its warm-up ran
   * this many µs or more: a model that slow is no candidate, and 15 more runs would only load the CPU.
   */
  timeBelowUs: number | undefined;
}

export type WorkerReady =
  | { type: 'ready'; provider: string; loadMs: number; warmupMs: number; warmupError: string | undefined; probeUs: number | undefined; tried: Tried[] }
  | { type: 'failed'; tried: Tried[]; error?: string };
export interface WorkerRequest { id: number; feeds: Record<string, WireTensor>; fetches: string[] }
export interface WorkerReply { id: number; outputs?: Record<string, WireTensor>; error?: string; inferMs: number }

const init = workerData as WorkerInit;
const port = parentPort!;

const started = performance.now();
const { session, tried } = await openSession(init.modelPath, init.providers, init.threads);
if (!session) {
  port.postMessage({ type: 'failed', tried } satisfies WorkerReady);
} else {
  const loadMs = performance.now() - started;
  try {
    const warming = performance.now();
    const warmupError = await warmUp(session, init.signature, init.samples);
    const warmupMs = performance.now() - warming;
    const probeUs = init.timeBelowUs !== undefined && warmupError === undefined && warmupMs * 1000 < init.timeBelowUs ? await probe(session, init.signature) : undefined;
    port.postMessage({ type: 'ready', provider: session.provider, loadMs, warmupMs, warmupError, probeUs, tried } satisfies WorkerReady);
  } catch (error) {
    port.postMessage({ type: 'failed', tried, error: error instanceof Error ? error.message : String(error) } satisfies WorkerReady);
  }
  port.on('message', async (request: WorkerRequest) => {
    const began = performance.now();
    try {
      const outputs = await session.run(request.feeds, request.fetches);
      const transfer = Object.values(outputs).flatMap((t) => (Array.isArray(t.data) ? [] : [t.data.buffer as ArrayBuffer]));
      port.postMessage({ id: request.id, outputs, inferMs: performance.now() - began } satisfies WorkerReply, transfer);
    } catch (error) {
      port.postMessage({ id: request.id, error: error instanceof Error ? error.message : String(error), inferMs: performance.now() - began } satisfies WorkerReply);
    }
  });
}
