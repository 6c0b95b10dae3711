/** maas.yaml: validated on read, errors as "path: message" lines. */
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { MaasError, messageOf } from '../core/errors.js';

export const DEVICES = ['auto', 'cpu', 'cuda', 'webgpu'] as const;
export type Device = (typeof DEVICES)[number];

export interface RegistryConfig {
  schemaVersion: 1;
  name: string;
  defaults: { device: Device; remote: string | null };
  /** named remotes: `maas push mlp@2 prod-registry`. */
  remotes: Record<string, string>;
}

export function validateConfig(raw: unknown): { config?: RegistryConfig; errors: string[] } {
  const errors: string[] = [];
  if (!raw || typeof raw !== 'object') return { errors: ['(root): expected a mapping'] };
  const r = raw as Record<string, unknown>;
  if (r.schemaVersion !== 1) errors.push(`schemaVersion: expected 1, got ${JSON.stringify(r.schemaVersion)}`);
  if (typeof r.name !== 'string' || r.name.trim() === '') errors.push('name: expected a non-empty string');
  const defaults = (r.defaults ?? {}) as Record<string, unknown>;
  if (typeof defaults !== 'object') errors.push('defaults: expected a mapping');
  const device = defaults.device ?? 'auto';
  if (!DEVICES.includes(device as Device)) errors.push(`defaults.device: expected one of ${DEVICES.join(', ')}, got ${JSON.stringify(device)}`);
  const remote = defaults.remote ?? null;
  if (remote !== null && typeof remote !== 'string') errors.push('defaults.remote: expected a string or null');
  const remotes = (r.remotes ?? {}) as Record<string, unknown>;
  if (typeof remotes !== 'object' || Array.isArray(remotes)) errors.push('remotes: expected a mapping of name to oci://... or oci-layout:...');
  else for (const [name, url] of Object.entries(remotes)) if (typeof url !== 'string') errors.push(`remotes.${name}: expected a string`);
  if (errors.length) return { errors };
  return { config: { schemaVersion: 1, name: r.name as string, defaults: { device: device as Device, remote: remote as string | null }, remotes: remotes as Record<string, string> }, errors };
}

export function readConfig(path: string): RegistryConfig {
  let raw: unknown;
  try {
    raw = parse(readFileSync(path, 'utf8'));
  } catch (error) {
    throw new MaasError('MAAS_CONFIG_INVALID', `${path} is not valid YAML: ${messageOf(error)}`, { hint: 'Fix the file, or restore it with `git checkout -- maas.yaml`.' });
  }
  const { config, errors } = validateConfig(raw);
  if (!config) {
    throw new MaasError('MAAS_CONFIG_INVALID', `${path} is invalid:\n  ${errors.join('\n  ')}`, {
      hint: 'Fix the listed keys, or restore the file with `git checkout -- maas.yaml`.',
      details: { errors },
    });
  }
  return config;
}
