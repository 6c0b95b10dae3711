/** `maas doctor`: which execution providers actually load a model on this machine, and the fix for those that don't. */
import { availableParallelism } from 'node:os';
import { createRequire } from 'node:module';
import { BUNDLED_MODEL } from '../core/bundled.js';
import { messageOf } from '../core/errors.js';
import { VERSION } from '../core/version.js';
import { inspectModel } from '../onnx/inspect.js';
import { oneShotRuntime } from './config.js';
import { DEVICE_FIXES } from './providers.js';
import { ModelRuntime } from './runtime.js';

export interface ProviderCheck {
  name: 'cpu' | 'cuda' | 'webgpu';
  available: boolean;
  loadMs?: number;
  error?: string;
  fix?: string;
}

export interface DoctorResult {
  maas: string;
  node: string;
  onnxruntime: string;
  platform: string;
  cpus: number;
  providers: ProviderCheck[];
  /** what `--device auto` picks here. */
  autoDevice: string;
}

export async function runDoctor(): Promise<DoctorResult> {
  const ortPackage = createRequire(import.meta.url)('onnxruntime-node/package.json') as { version: string };
  const signature = inspectModel(BUNDLED_MODEL).signature;
  const providers: ProviderCheck[] = [];
  for (const name of ['cuda', 'webgpu', 'cpu'] as const) {
    try {
      const runtime = await ModelRuntime.load(
        { name: 'doctor', version: 0, signature, modelPath: BUNDLED_MODEL },
        oneShotRuntime(name),
      );
      providers.push({ name, available: true, loadMs: Math.round(runtime.loadMs) });
      await runtime.close();
    } catch (error) {
      // onnxruntime prefixes its reasons with a source location; the sentence after it is the news.
      const message = messageOf(error).split('\n')[0]!;
      const reason = /(Failed to .*)$/.exec(message)?.[1] ?? message.replace(/^cannot load doctor@0 on \w+: \w+: /, '');
      providers.push({ name, available: false, error: reason, ...(DEVICE_FIXES[name] ? { fix: DEVICE_FIXES[name] } : {}) });
    }
  }
  return {
    maas: VERSION,
    node: process.version,
    onnxruntime: ortPackage.version,
    platform: `${process.platform}-${process.arch}`,
    cpus: availableParallelism(),
    providers: [...providers].reverse(),
    autoDevice: providers.find((p) => p.available)?.name ?? 'none',
  };
}
