/**
 * Registry credentials: MAAS_REGISTRY_USERNAME/_PASSWORD/_TOKEN, else the host's `auths` entry
 * in the docker config.json ($DOCKER_CONFIG or ~/.docker). Secrets are never printed.
 */
import { chmodSync, existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { Env } from '../core/context.js';
import { MaasError } from '../core/errors.js';
import { writeJsonAtomic } from '../core/fs.js';
import type { Credentials } from './client.js';

interface DockerConfig {
  auths?: Record<string, { auth?: string; identitytoken?: string }>;
  [key: string]: unknown;
}

export function dockerConfigPath(env: Env): string {
  return join(env.DOCKER_CONFIG ?? join(env.HOME ?? homedir(), '.docker'), 'config.json');
}

function readDockerConfig(path: string): DockerConfig {
  if (!existsSync(path)) return {};
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as DockerConfig;
  } catch {
    throw new MaasError('MAAS_CONFIG_INVALID', `${path} is not valid JSON`, { hint: 'Fix or remove it; `maas login` rewrites its auths entry.' });
  }
}

export function credentialsFor(host: string, env: Env): Credentials {
  if (env.MAAS_REGISTRY_TOKEN) return { token: env.MAAS_REGISTRY_TOKEN };
  if (env.MAAS_REGISTRY_USERNAME) return { username: env.MAAS_REGISTRY_USERNAME, password: env.MAAS_REGISTRY_PASSWORD };
  const auths = readDockerConfig(dockerConfigPath(env)).auths ?? {};
  const entry = auths[host] ?? auths[`https://${host}`] ?? auths[`http://${host}`];
  if (entry?.identitytoken) return { token: entry.identitytoken };
  if (entry?.auth) {
    const decoded = Buffer.from(entry.auth, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
  }
  return {};
}

/** Stores credentials the way `docker login` does (base64 user:password under auths[host]). */
export function storeCredentials(host: string, username: string, password: string, env: Env): string {
  const path = dockerConfigPath(env);
  const config = readDockerConfig(path);
  config.auths = { ...config.auths, [host]: { auth: Buffer.from(`${username}:${password}`).toString('base64') } };
  writeJsonAtomic(path, config);
  chmodSync(path, 0o600);
  return path;
}
