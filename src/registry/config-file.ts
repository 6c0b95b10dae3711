/** Reads maas.yaml and validates it (config.ts); a broken file is an error with the fix. */
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { MaasError, messageOf } from '../core/errors.js';
import { type RegistryConfig, validateConfig } from './config.js';

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
