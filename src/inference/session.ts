/**
 * One onnxruntime session, whichever thread holds it: an inference worker, or the main thread
 * for a model so small that a hop to a worker costs more than running it (runtime.ts). Loaded
 * lazily: importing this module loads onnxruntime-node's native binding.
 */
import * as ort from 'onnxruntime-node';
import type { Signature } from '../onnx/inspect.js';
import { sampleFeeds } from './samples.js';
import type { NumericData, WireTensor } from './tensors.js';

export interface OpenedSession {
  provider: string;
  run(feeds: Record<string, WireTensor>, fetches: string[]): Promise<Record<string, WireTensor>>;
  release(): Promise<void>;
}

export interface Tried {
  provider: string;
  error: string;
}

// Failures reach the user through maas's own messages; onnxruntime would also print a
// provider it could not load (an expected outcome when probing) as an error line.
ort.env.logLevel = 'fatal';

function toWire(tensor: ort.Tensor): WireTensor {
  return { type: tensor.type as WireTensor['type'], dims: [...tensor.dims], data: tensor.data as WireTensor['data'] };
}

/** Tries the providers in order; the first that creates a session is used. */
export async function openSession(modelPath: string, providers: string[], threads: number): Promise<{ session: OpenedSession | undefined; tried: Tried[] }> {
  const tried: Tried[] = [];
  for (const provider of providers) {
    try {
      const session = await ort.InferenceSession.create(modelPath, {
        executionProviders: [provider],
        intraOpNumThreads: threads,
        interOpNumThreads: 1,
        executionMode: 'sequential',
        graphOptimizationLevel: 'all',
        logSeverityLevel: 4,
      });
      return {
        tried,
        session: {
          provider,
          async run(feeds, fetches) {
            const tensors: Record<string, ort.Tensor> = {};
            for (const [name, t] of Object.entries(feeds)) tensors[name] = new ort.Tensor(t.type, t.data as NumericData, t.dims);
            const results = await session.run(tensors, fetches);
            return Object.fromEntries(fetches.map((name) => [name, toWire(results[name]!)]));
          },
          release: () => session.release(),
        },
      };
    } catch (error) {
      tried.push({ provider, error: error instanceof Error ? error.message : String(error) });
    }
  }
  return { session: undefined, tried };
}

/** Runs of the generated one-row sample: enough for one of them to run undisturbed. */
const PROBE_RUNS = 15;
/** ...unless they take longer than this together: a model that slow is no inline candidate anyway. */
const PROBE_BUDGET_MS = 20;

/** A generated sample of one row, every free dim 1: the cheapest request the model takes. */
function oneRow(signature: Signature): Record<string, WireTensor> {
  return sampleFeeds(signature, 1, () => 1);
}

/**
 * One run on each stored warm-up sample, or on a generated one-row sample, so that onnxruntime's
 * first run (allocations, kernel choice) is not paid by a user's request. A stored sample that
 * fails fails the load: the version's own example does not run. A generated one may be refused by
 * a model with value constraints (an index input, say); that is returned, not thrown, and the
 * version serves all the same.
 */
export async function warmUp(session: OpenedSession, signature: Signature, samples: Record<string, WireTensor>[] | undefined): Promise<string | undefined> {
  const fetches = signature.outputs.map((o) => o.name);
  if (samples) {
    for (const [i, sample] of samples.entries()) {
      try {
        await session.run(sample, fetches);
      } catch (error) {
        throw new Error(`warm-up sample ${i + 1} of ${samples.length} failed: ${error instanceof Error ? error.message : String(error)}`);
      }
    }
    return undefined;
  }
  try {
    await session.run(oneRow(signature), fetches);
    return undefined;
  } catch (error) {
    return error instanceof Error ? error.message : String(error);
  }
}

/**
 * The fastest of up to PROBE_RUNS one-row runs, in µs, on a warm session: what the model costs when
 * nothing else wants the cores. (A median, taken while the server is still starting, ranged from
 * 50 to 110 µs for a model that runs in 10, and put it inline on one start and not the next.)
 * Undefined when the signature has free dims other than the batch (a sample would not tell the
 * cost of real requests) or the model refuses generated values.
 */
export async function probe(session: OpenedSession, signature: Signature): Promise<number | undefined> {
  const fixed = signature.inputs.every((i) => i.shape !== null && i.shape.every((d, axis) => axis === 0 || typeof d === 'number'));
  if (!fixed) return undefined;
  const feeds = oneRow(signature);
  const fetches = signature.outputs.map((o) => o.name);
  try {
    let fastest = Number.POSITIVE_INFINITY;
    const began = performance.now();
    for (let i = 0; i < PROBE_RUNS && performance.now() - began < PROBE_BUDGET_MS; i++) {
      const started = performance.now();
      await session.run(feeds, fetches);
      fastest = Math.min(fastest, (performance.now() - started) * 1000);
    }
    return fastest;
  } catch {
    return undefined;
  }
}
