/**
 * `maas demo`: the main job on embedded defaults, no input needed. Creates (or reuses) a
 * registry folder, registers the bundled fixture MLP, points `prod` at it and verifies.
 */
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Env } from '../core/context.js';
import { initRegistry } from './init.js';
import { CONFIG_FILE } from './layout.js';
import { showModel, type ShowResult } from './query.js';
import { registerModel, type RegisterResult } from './register.js';
import type { OnBytes } from './store.js';
import { verifyRegistry, type VerifyResult } from './verify.js';

export const BUNDLED_MODEL = fileURLToPath(new URL('../../fixtures/mlp.onnx', import.meta.url));

export interface DemoResult {
  registry: string;
  createdRegistry: boolean;
  register: RegisterResult;
  show: ShowResult;
  verify: VerifyResult;
}

export async function runDemo(
  options: { dir: string; onProgress?: (label: string, total: number) => OnBytes },
  ctx: { cwd: string; env: Env; now: () => Date },
): Promise<DemoResult> {
  const root = resolve(ctx.cwd, options.dir);
  const createdRegistry = !existsSync(join(root, CONFIG_FILE));
  if (createdRegistry) await initRegistry({ dir: root, name: 'demo', device: 'auto', remote: null, ci: undefined }, ctx);
  const registryCtx = { ...ctx, registry: root };
  const register = await registerModel(
    { file: BUNDLED_MODEL, name: 'mlp', alias: 'prod', message: 'bundled demo model', ...(options.onProgress ? { onProgress: options.onProgress } : {}) },
    registryCtx,
  );
  const show = await showModel({ ref: 'mlp@prod' }, registryCtx);
  const verify = await verifyRegistry({}, registryCtx);
  return { registry: root, createdRegistry, register, show, verify };
}
