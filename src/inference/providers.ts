/**
 * Execution providers: which ones `--device auto` tries here, in order, and how a GPU user
 * gets the one onnxruntime-node could not load.
 */
import { existsSync, realpathSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type { Device } from '../registry/config.js';

/**
 * WebGPU in onnxruntime-node is Dawn on Vulkan. Without a Vulkan loader `auto` skips it, as
 * Dawn would fail anyway after printing a warning of its own on every start.
 */
function vulkanLoaderPresent(): boolean {
  if (process.platform !== 'linux') return true;
  const dirs = [...(process.env.LD_LIBRARY_PATH ?? '').split(':').filter(Boolean), '/usr/lib/x86_64-linux-gnu', '/usr/lib/aarch64-linux-gnu', '/usr/lib64', '/usr/lib', '/lib/x86_64-linux-gnu', '/usr/local/lib'];
  return dirs.some((dir) => existsSync(join(dir, 'libvulkan.so.1')));
}

/** onnxruntime-node's folder where this maas really resolves it (a global or linked install too). */
function ortPackageDir(): string {
  return dirname(realpathSync(createRequire(import.meta.url).resolve('onnxruntime-node/package.json')));
}

/**
 * The CUDA provider is a separate download next to the binding. Without it `auto` does not try
 * CUDA: onnxruntime would print a native error line on every start before falling back.
 */
function cudaProviderInstalled(): boolean {
  const library = { linux: 'libonnxruntime_providers_cuda.so', win32: 'onnxruntime_providers_cuda.dll' }[process.platform as string];
  return library !== undefined && existsSync(join(ortPackageDir(), 'bin', 'napi-v6', process.platform, process.arch, library));
}

export function providerOrder(device: Device): string[] {
  if (device === 'auto') return [...(cudaProviderInstalled() ? ['cuda'] : []), ...(vulkanLoaderPresent() ? ['webgpu'] : []), 'cpu'];
  return [device];
}

/** onnxruntime-node's install script, shell-quoted when its path needs it. */
function ortInstallScript(): string {
  const path = join(ortPackageDir(), 'script', 'install.js');
  return /^[\w@%+=:,./-]+$/.test(path) ? path : `'${path.replaceAll("'", "'\\''")}'`;
}

/** How a GPU user gets the provider onnxruntime-node could not load. */
export const DEVICE_FIXES: Record<string, string> = {
  cuda: `Install the CUDA provider once: \`ONNXRUNTIME_NODE_INSTALL=cuda12 node ${ortInstallScript()}\` (needs CUDA 12 and cuDNN 9 on the library path).`,
  webgpu: 'WebGPU runs on Vulkan: install the GPU driver and the Vulkan loader (Debian: `apt-get install libvulkan1 mesa-vulkan-drivers`).',
};
