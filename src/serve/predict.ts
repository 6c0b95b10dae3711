/** `maas predict` here: one inference on a registered version, in a worker, with the KServe v2 JSON format. */
import type { Device } from '../registry/config.js';
import { oneShotRuntime } from '../inference/config.js';
import { ModelRuntime } from '../inference/runtime.js';
import { parseRef } from '../registry/refs.js';
import { Registry, type RegistryOptions } from '../registry/registry.js';
import { checkBlobs, modelPath } from '../registry/serve-cache.js';
import { encodeInferResponse, parseInferRequest } from './http/kserve.js';

export interface PredictOptions {
  ref: string;
  /** a KServe v2 infer request body. */
  request: Buffer;
  device?: Device | undefined;
}

export async function predict(options: PredictOptions, ctx: RegistryOptions): Promise<Record<string, unknown>> {
  const registry = await Registry.open(ctx);
  const { name, version } = registry.resolve(parseRef(options.ref));
  const record = registry.readVersion(name, version);
  // A request file has no binary tail to carry FP16 in: numbers are converted here, as a client would.
  const parsed = parseInferRequest(options.request, undefined, record.onnx.signature, { float16Numbers: true });
  await checkBlobs(registry, record);
  const runtime = await ModelRuntime.load(
    { name, version, signature: record.onnx.signature, modelPath: modelPath(registry, record) },
    oneShotRuntime(options.device ?? registry.config.defaults.device),
  );
  try {
    const outputs = await runtime.infer({ feeds: parsed.feeds, outputs: parsed.outputs });
    const encoded = await encodeInferResponse({ model: name, version, id: parsed.id, outputs, order: parsed.outputs, binaryOutputs: new Set() });
    return JSON.parse(encoded.body.toString()) as Record<string, unknown>;
  } finally {
    await runtime.close();
  }
}
