/**
 * `maas demo`: the main job end to end on embedded defaults, no input needed. Creates (or
 * reuses) a registry folder, registers the bundled fixture MLP as mlp@prod, verifies it,
 * serves it on a local port and sends it one KServe v2 request, then pushes the version to an
 * OCI image layout next to the registry (the embedded remote that needs no server).
 */
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { BUNDLED_MODEL } from './core/bundled.js';
import type { Env } from './core/context.js';
import { VERSION } from './core/version.js';
import { SERVING_DEFAULTS } from './inference/config.js';
import { DEFAULT_DEVICE } from './registry/config.js';
import { initRegistry } from './registry/init.js';
import { CONFIG_FILE } from './registry/layout.js';
import { showModel, type ShowResult } from './registry/query.js';
import { registerModel, type RegisterResult } from './registry/register.js';
import type { OnBytes } from './registry/store.js';
import { verifyRegistry, type VerifyResult } from './registry/verify.js';
import { type PushResult, push } from './remote/transfer.js';
import { startServer } from './serve/server.js';

export interface DemoResult {
  registry: string;
  createdRegistry: boolean;
  register: RegisterResult;
  show: ShowResult;
  verify: VerifyResult;
  /** the one request sent to the local server, and what came back. */
  serve: { url: string; request: unknown; status: number; response: unknown };
  push: PushResult;
}

const REQUEST = { id: 'demo', inputs: [{ name: 'input', shape: [2, 4], datatype: 'FP32', data: [[1, 2, 3, 4], [0.5, -0.5, 0.25, -0.25]] }] };

export async function runDemo(
  options: { dir: string; onProgress?: (label: string, total: number) => OnBytes },
  ctx: { cwd: string; env: Env; now: () => Date },
): Promise<DemoResult> {
  const root = resolve(ctx.cwd, options.dir);
  const createdRegistry = !existsSync(join(root, CONFIG_FILE));
  if (createdRegistry) await initRegistry({ dir: root, name: 'demo', device: DEFAULT_DEVICE, remote: null, ci: undefined }, ctx);
  const registryCtx = { ...ctx, registry: root };
  const register = await registerModel(
    { file: BUNDLED_MODEL, name: 'mlp', alias: 'prod', message: 'bundled demo model', ...(options.onProgress ? { onProgress: options.onProgress } : {}) },
    registryCtx,
  );
  const show = await showModel({ ref: 'mlp@prod' }, registryCtx);
  const verify = await verifyRegistry({}, registryCtx);

  const server = await startServer({
    registry: registryCtx,
    targets: [{ name: 'mlp', selector: { kind: 'alias', alias: 'prod' } }],
    flags: { device: 'cpu' },
    host: SERVING_DEFAULTS.host,
    port: 0,
    token: undefined,
    insecure: false,
    maxBodyBytes: SERVING_DEFAULTS.maxBodyMb << 20,
    timeoutMs: SERVING_DEFAULTS.timeoutMs,
    pollMs: SERVING_DEFAULTS.pollMs,
    jsonLogs: false,
    log: () => {},
    version: VERSION,
  });
  let serve: DemoResult['serve'];
  try {
    const res = await fetch(`${server.url}/v2/models/mlp/infer`, { method: 'POST', body: JSON.stringify(REQUEST), headers: { 'content-type': 'application/json' } });
    serve = { url: server.url, request: REQUEST, status: res.status, response: await res.json() };
  } finally {
    await server.close();
  }
  const pushed = await push({ ref: 'mlp@prod', remote: `oci-layout:${root}.oci`, aliases: true }, registryCtx);
  return { registry: root, createdRegistry, register, show, verify, serve, push: pushed };
}
