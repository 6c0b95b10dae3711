/**
 * Debian's docker-registry (distribution 2.8) on 127.0.0.1, started per test with its own
 * config, storage and htpasswd file. `.ci/run` installs it; a local run without it skips
 * these tests with one line saying how to enable them.
 */
import { execFile, execFileSync, spawn, spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { onTestFinished } from 'vitest';
import { useTempDir } from './temp.js';

export const HAVE_REGISTRY = spawnSync('docker-registry', ['--version']).status === 0 && spawnSync('skopeo', ['--version']).status === 0;
export const REQUIRE_TOOLS = Boolean(process.env.MAAS_REQUIRE_TOOLS);
if (!HAVE_REGISTRY && !REQUIRE_TOOLS) {
  console.warn('SKIPPED: OCI registry tests need docker-registry, skopeo and htpasswd (apt-get install docker-registry skopeo apache2-utils)');
}

export async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

export interface TestOciRegistry {
  host: string;
  username: string;
  password: string;
  dir: string;
}

/** `auth`: htpasswd (Basic), none, or a YAML `auth:` block (the token-auth variant). */
export async function startOciRegistry(auth: 'htpasswd' | 'none' | { yaml: string } = 'htpasswd'): Promise<TestOciRegistry> {
  const dir = useTempDir('maas-oci-');
  const port = await freePort();
  const username = 'ci-user';
  const password = 'ci-pass-123';
  mkdirSync(join(dir, 'data'));
  const htpasswd = execFileSync('htpasswd', ['-Bbn', username, password], { encoding: 'utf8' });
  writeFileSync(join(dir, 'htpasswd'), htpasswd);
  writeFileSync(join(dir, 'config.yml'), [
    'version: 0.1',
    'log: { level: warn }',
    `storage: { filesystem: { rootdirectory: ${join(dir, 'data')} }, delete: { enabled: true } }`,
    `http: { addr: "127.0.0.1:${port}", secret: maas-test-secret }`,
    ...(auth === 'htpasswd' ? [`auth: { htpasswd: { realm: maas-test, path: ${join(dir, 'htpasswd')} } }`] : auth === 'none' ? [] : [auth.yaml]),
    '',
  ].join('\n'));
  const child = spawn('docker-registry', ['serve', join(dir, 'config.yml')], { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  child.stderr.on('data', (d) => { log += d; if (process.env.DEBUG_REGISTRY) process.stderr.write(d); });
  onTestFinished(() => {
    child.kill('SIGTERM');
  });
  for (let i = 0; i < 100; i++) {
    const res = await fetch(`http://127.0.0.1:${port}/v2/`).catch(() => undefined);
    if (res) return { host: `127.0.0.1:${port}`, username, password, dir };
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`docker-registry did not start: ${log}`);
}

/** Runs skopeo without blocking the event loop: a token server in this process must answer it. */
export async function skopeo(args: string[], home: string): Promise<string> {
  const { stdout } = await promisify(execFile)('skopeo', args, { encoding: 'utf8', env: { ...process.env, HOME: home } });
  return stdout;
}
