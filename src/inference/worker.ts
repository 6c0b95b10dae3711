/**
 * An inference worker: one onnxruntime session on its own thread, because `session.run`
 * blocks the thread that calls it (onnxruntime-node 1.30). The HTTP thread never runs a model.
 */
import { parentPort, workerData } from 'node:worker_threads';
import * as ort from 'onnxruntime-node';
import type { NumericData, WireTensor } from './tensors.js';

export interface WorkerInit {
  modelPath: string;
  /** execution providers to try in order; the first that creates a session is used. */
  providers: string[];
  threads: number;
}

export type WorkerReady = { type: 'ready'; provider: string; loadMs: number; tried: { provider: string; error: string }[] } | { type: 'failed'; tried: { provider: string; error: string }[] };
export interface WorkerRequest { id: number; feeds: Record<string, WireTensor>; fetches: string[] }
export interface WorkerReply { id: number; outputs?: Record<string, WireTensor>; error?: string; inferMs: number }

const init = workerData as WorkerInit;
const port = parentPort!;
// Failures reach the user through maas's own messages; onnxruntime would also print a
// provider it could not load (an expected outcome when probing) as an error line.
ort.env.logLevel = 'fatal';

async function createSession(): Promise<ort.InferenceSession | undefined> {
  const tried: { provider: string; error: string }[] = [];
  for (const provider of init.providers) {
    const started = performance.now();
    try {
      const session = await ort.InferenceSession.create(init.modelPath, {
        executionProviders: [provider],
        intraOpNumThreads: init.threads,
        interOpNumThreads: 1,
        executionMode: 'sequential',
        graphOptimizationLevel: 'all',
        logSeverityLevel: 4,
      });
      port.postMessage({ type: 'ready', provider, loadMs: performance.now() - started, tried } satisfies WorkerReady);
      return session;
    } catch (error) {
      tried.push({ provider, error: error instanceof Error ? error.message : String(error) });
    }
  }
  port.postMessage({ type: 'failed', tried } satisfies WorkerReady);
  return undefined;
}

function toWire(tensor: ort.Tensor): WireTensor {
  return { type: tensor.type as WireTensor['type'], dims: [...tensor.dims], data: tensor.data as WireTensor['data'] };
}

const session = await createSession();
if (session) {
  port.on('message', async (request: WorkerRequest) => {
    const started = performance.now();
    try {
      const feeds: Record<string, ort.Tensor> = {};
      for (const [name, t] of Object.entries(request.feeds)) feeds[name] = new ort.Tensor(t.type, t.data as NumericData, t.dims);
      const results = await session.run(feeds, request.fetches);
      const outputs: Record<string, WireTensor> = {};
      const transfer: ArrayBuffer[] = [];
      for (const name of request.fetches) {
        const wire = toWire(results[name]!);
        outputs[name] = wire;
        if (!Array.isArray(wire.data)) transfer.push(wire.data.buffer as ArrayBuffer);
      }
      port.postMessage({ id: request.id, outputs, inferMs: performance.now() - started } satisfies WorkerReply, transfer);
    } catch (error) {
      port.postMessage({ id: request.id, error: error instanceof Error ? error.message : String(error), inferMs: performance.now() - started } satisfies WorkerReply);
    }
  });
}
