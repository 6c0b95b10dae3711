/**
 * Registry credentials: MAAS_REGISTRY_USERNAME/_PASSWORD/_TOKEN, else what the docker
 * config.json ($DOCKER_CONFIG or ~/.docker) gives the host: its `credHelpers` helper, else the
 * `credsStore` helper, else its `auths` entry. Secrets are never printed.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { Env } from '../core/context.js';
import { MaasError } from '../core/errors.js';
import { writeJsonAtomic } from '../core/fs.js';
import type { Credentials } from './client.js';

interface DockerConfig {
  auths?: Record<string, { auth?: string; identitytoken?: string }>;
  credHelpers?: Record<string, string>;
  credsStore?: string;
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

/** A credential helper's name becomes part of a program name: letters, digits, . _ - only. */
const HELPER_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const HELPER_TIMEOUT_MS = 20_000;

/**
 * Runs `docker-credential-NAME get` with the host on stdin, as docker does. Undefined when the
 * helper holds nothing for the host; any other failure is an error naming the helper.
 */
function fromHelper(helper: string, host: string, env: Env, configPath: string): Credentials | undefined {
  const program = `docker-credential-${helper}`;
  const broken = (why: string) => new MaasError('MAAS_CONFIG_INVALID', `the credential helper ${program} (named in ${configPath}) ${why}`, {
    hint: `Install ${program} on PATH, or remove it from credHelpers / credsStore in ${configPath}.`,
  });
  if (!HELPER_NAME.test(helper)) throw broken('has a name that is not a program name');
  const run = spawnSync(program, ['get'], { input: host, env, encoding: 'utf8', timeout: HELPER_TIMEOUT_MS, maxBuffer: 1 << 20, stdio: ['pipe', 'pipe', 'pipe'] });
  if (run.error) {
    const code = (run.error as NodeJS.ErrnoException).code;
    throw broken(code === 'ENOENT' ? 'is not on PATH' : code === 'ETIMEDOUT' ? `gave no answer within ${HELPER_TIMEOUT_MS / 1000} s` : `could not run: ${run.error.message}`);
  }
  if (run.status !== 0) {
    // The helper protocol's answer for "nothing stored for this host".
    if (/credentials not found/i.test(`${run.stdout}${run.stderr}`)) return undefined;
    throw broken(`failed (exit ${run.status ?? run.signal}): ${`${run.stderr || run.stdout}`.trim().slice(0, 200)}`);
  }
  let answer: { Username?: unknown; Secret?: unknown };
  try {
    answer = JSON.parse(run.stdout) as typeof answer;
  } catch {
    throw broken('answered something that is not JSON');
  }
  if (typeof answer?.Secret !== 'string' || !answer.Secret) return undefined;
  if (answer.Username === '<token>') return { token: answer.Secret };
  return { username: typeof answer.Username === 'string' ? answer.Username : '', password: answer.Secret };
}

/** The value for a host in a docker config map, keyed by host or by URL as docker writes them. */
function forHost<T>(map: Record<string, T> | undefined, host: string): T | undefined {
  if (!map || typeof map !== 'object') return undefined;
  return map[host] ?? map[`https://${host}`] ?? map[`http://${host}`];
}

export function credentialsFor(host: string, env: Env): Credentials {
  if (env.MAAS_REGISTRY_TOKEN) return { token: env.MAAS_REGISTRY_TOKEN };
  if (env.MAAS_REGISTRY_USERNAME) return { username: env.MAAS_REGISTRY_USERNAME, password: env.MAAS_REGISTRY_PASSWORD };
  const path = dockerConfigPath(env);
  const config = readDockerConfig(path);
  const helper = forHost(config.credHelpers, host);
  if (typeof helper === 'string' && helper) {
    const found = fromHelper(helper, host, env, path);
    if (found) return found;
  }
  if (typeof config.credsStore === 'string' && config.credsStore) {
    const found = fromHelper(config.credsStore, host, env, path);
    if (found) return found;
  }
  const entry = forHost(config.auths, host);
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
