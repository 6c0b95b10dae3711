/**
 * maas.yaml's schema and vocabulary, pure: validation gives errors as "path: message" lines.
 * config-file.ts reads the file. Light on purpose: the option tables of `maas --help` read it.
 */
import { parseDuration } from '../core/units.js';
import { policyProblem } from './policy.js';

export const DEVICES = ['auto', 'cpu', 'cuda', 'webgpu'] as const;
export type Device = (typeof DEVICES)[number];
/** A registry's device when maas.yaml names none: the best provider that loads. */
export const DEFAULT_DEVICE: Device = 'auto';

/** The CI systems `maas init --ci` writes a workflow for (templates/ci/). */
export const CI_PROVIDERS = ['github', 'gitlab'] as const;
export type CiProvider = (typeof CI_PROVIDERS)[number];

/**
 * How a model is served, where maas.yaml says so: under `defaults:` for every model, under
 * `models.NAME:` for one. A flag of `maas serve` overrides both; what none sets is the
 * built-in default (inference/config.ts).
 */
export interface ServingSettings {
  versionPolicy?: string;
  /** unload a version idle this long (`5m`); unset: never. */
  keepAlive?: string;
  workers?: number;
  maxBatch?: number;
  batchDelayMs?: number;
  maxQueue?: number;
}

/** The integer settings and their least value. */
const INTEGER_SETTINGS = { workers: 1, maxBatch: 1, batchDelayMs: 0, maxQueue: 1 } as const;

export interface RegistryConfig {
  schemaVersion: 1;
  name: string;
  defaults: { device: Device; remote: string | null } & ServingSettings;
  /** named remotes: `maas push mlp@2 prod-registry`. */
  remotes: Record<string, string>;
  /** per-model serving settings. */
  models: Record<string, ServingSettings>;
  /** the signature policy of `serve`, `pull` and `verify --signatures`. */
  trust?: TrustConfig;
}

/** maas.yaml's `trust:`: paths are relative to the registry. */
export interface TrustConfig {
  /** refuse versions without a signature that verifies. */
  requireSignature?: boolean;
  /** a PEM public key, or a folder of them. */
  keys?: string;
  /** a PEM file of CA certificates (certificate-chain signatures). */
  ca?: string;
}

function trustConfig(raw: unknown, errors: string[]): TrustConfig | undefined {
  if (raw === undefined || raw === null) return undefined;
  if (!isMapping(raw)) {
    errors.push('trust: expected a mapping (requireSignature, keys, ca)');
    return undefined;
  }
  const trust: TrustConfig = {};
  if (raw.requireSignature !== undefined) {
    if (typeof raw.requireSignature !== 'boolean') errors.push(`trust.requireSignature: expected true or false, got ${JSON.stringify(raw.requireSignature)}`);
    else trust.requireSignature = raw.requireSignature;
  }
  for (const key of ['keys', 'ca'] as const) {
    const value = raw[key];
    if (value === undefined) continue;
    if (typeof value !== 'string' || value.trim() === '') errors.push(`trust.${key}: expected a path (relative to the registry), got ${JSON.stringify(value)}`);
    else trust[key] = value;
  }
  for (const key of Object.keys(raw)) if (!['requireSignature', 'keys', 'ca'].includes(key)) errors.push(`trust.${key}: unknown key (expected requireSignature, keys, ca)`);
  return trust;
}

const ROOT_KEYS = ['schemaVersion', 'name', 'defaults', 'remotes', 'models', 'trust'];

/** The keys a serving settings block may hold; a typo among them would otherwise be ignored without a word. */
const SERVING_KEYS = ['versionPolicy', 'keepAlive', ...Object.keys(INTEGER_SETTINGS)];

function servingSettings(raw: Record<string, unknown>, where: string, errors: string[], others: string[] = []): ServingSettings {
  for (const key of Object.keys(raw)) {
    if (!SERVING_KEYS.includes(key) && !others.includes(key)) errors.push(`${where}.${key}: unknown setting (expected ${[...others, ...SERVING_KEYS].join(', ')})`);
  }
  const settings: ServingSettings = {};
  if (raw.versionPolicy !== undefined) {
    const problem = typeof raw.versionPolicy === 'string' ? policyProblem(raw.versionPolicy) : 'expected a string';
    if (problem) errors.push(`${where}.versionPolicy: ${problem}`);
    else settings.versionPolicy = raw.versionPolicy as string;
  }
  if (raw.keepAlive !== undefined) {
    if (typeof raw.keepAlive !== 'string' || parseDuration(raw.keepAlive) === undefined) errors.push(`${where}.keepAlive: expected a duration such as 5m, 90s or 1h, got ${JSON.stringify(raw.keepAlive)}`);
    else settings.keepAlive = raw.keepAlive;
  }
  for (const [key, min] of Object.entries(INTEGER_SETTINGS) as [keyof typeof INTEGER_SETTINGS, number][]) {
    const value = raw[key];
    if (value === undefined) continue;
    if (!Number.isSafeInteger(value) || (value as number) < min) errors.push(`${where}.${key}: expected an integer ≥ ${min}, got ${JSON.stringify(value)}`);
    else settings[key] = value as number;
  }
  return settings;
}

const isMapping = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);

export function validateConfig(raw: unknown): { config?: RegistryConfig; errors: string[] } {
  const errors: string[] = [];
  if (!isMapping(raw)) return { errors: ['(root): expected a mapping'] };
  const r = raw;
  for (const key of Object.keys(r)) if (!ROOT_KEYS.includes(key)) errors.push(`${key}: unknown key (expected ${ROOT_KEYS.join(', ')})`);
  if (r.schemaVersion !== 1) errors.push(`schemaVersion: expected 1, got ${JSON.stringify(r.schemaVersion)}`);
  if (typeof r.name !== 'string' || r.name.trim() === '') errors.push('name: expected a non-empty string');
  const defaults = r.defaults ?? {};
  if (!isMapping(defaults)) return { errors: [...errors, 'defaults: expected a mapping'] };
  const device = defaults.device ?? DEFAULT_DEVICE;
  if (!DEVICES.includes(device as Device)) errors.push(`defaults.device: expected one of ${DEVICES.join(', ')}, got ${JSON.stringify(device)}`);
  const remote = defaults.remote ?? null;
  if (remote !== null && typeof remote !== 'string') errors.push('defaults.remote: expected a string or null');
  const serving = servingSettings(defaults, 'defaults', errors, ['device', 'remote']);
  const remotes = r.remotes ?? {};
  if (!isMapping(remotes)) errors.push('remotes: expected a mapping of name to oci://... or oci-layout:...');
  else for (const [name, url] of Object.entries(remotes)) if (typeof url !== 'string') errors.push(`remotes.${name}: expected a string`);
  const models: Record<string, ServingSettings> = {};
  const rawModels = r.models ?? {};
  if (!isMapping(rawModels)) errors.push('models: expected a mapping of model name to its serving settings');
  else {
    for (const [name, settings] of Object.entries(rawModels)) {
      if (!isMapping(settings)) errors.push(`models.${name}: expected a mapping (versionPolicy, keepAlive, workers, maxBatch, batchDelayMs, maxQueue)`);
      else models[name] = servingSettings(settings, `models.${name}`, errors);
    }
  }
  const trust = trustConfig(r.trust, errors);
  if (errors.length) return { errors };
  return {
    config: {
      schemaVersion: 1,
      name: r.name as string,
      defaults: { device: device as Device, remote: remote as string | null, ...serving },
      remotes: remotes as Record<string, string>,
      models,
      ...(trust ? { trust } : {}),
    },
    errors,
  };
}
