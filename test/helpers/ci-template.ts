/**
 * Runs the shell steps of a CI file written by `maas init --ci` on this machine, as the CI
 * service would: GitHub steps one shell each with $GITHUB_ENV carried between them, GitLab's
 * script as one shell. Only `npm` is stubbed (no network): `npm install --global maas@V`
 * and `npm ci` put a `maas` that runs this checkout's bin/maas.js where each would.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { BIN } from './run-cli.js';

export interface CiRun {
  /** every npm command the steps ran, as typed. */
  npm: string[];
}

function stubNpm(dir: string, cwd: string): { bin: string; log: string } {
  const bin = join(dir, 'stub-bin');
  const log = join(dir, 'npm.log');
  mkdirSync(bin, { recursive: true });
  const maas = `#!/bin/sh\nexec "${process.execPath}" "${BIN}" "$@"\n`;
  const npm = [
    '#!/bin/sh',
    `echo "$*" >> "${log}"`,
    `case "$1" in`,
    `  install) printf '%s' '${maas}' > "${bin}/maas" && chmod +x "${bin}/maas" ;;`,
    `  ci) mkdir -p "${cwd}/node_modules/.bin" && printf '%s' '${maas}' > "${cwd}/node_modules/.bin/maas" && chmod +x "${cwd}/node_modules/.bin/maas" ;;`,
    `  *) exec "${join(process.execPath, '..', 'npm')}" "$@" ;;`,
    'esac',
    '',
  ].join('\n');
  writeFileSync(join(bin, 'npm'), npm);
  chmodSync(join(bin, 'npm'), 0o755);
  return { bin, log };
}

function npmLog(log: string): string[] {
  return existsSync(log) ? readFileSync(log, 'utf8').split('\n').filter(Boolean) : [];
}

/** Runs a GitHub workflow's `run` steps in `cwd` with the given inputs, on branch `main`. */
export function runGithubWorkflow(file: string, cwd: string, scratch: string, env: Record<string, string>, inputs: Record<string, string>): CiRun {
  const workflow = parse(readFileSync(file, 'utf8')) as { jobs: Record<string, { steps: { run?: string; env?: Record<string, string> }[] }> };
  const { bin, log } = stubNpm(scratch, cwd);
  const githubEnv = join(scratch, 'github.env');
  writeFileSync(githubEnv, '');
  for (const job of Object.values(workflow.jobs)) {
    for (const step of job.steps) {
      if (!step.run) continue;
      const expand = (text: string) => text.replace(/\$\{\{\s*inputs\.(\w+)\s*\}\}/g, (_, k: string) => inputs[k] ?? '').replace(/\$\{\{\s*secrets\.\w+\s*\}\}/g, '');
      const carried = Object.fromEntries(readFileSync(githubEnv, 'utf8').split('\n').filter(Boolean).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
      const stepEnv = Object.fromEntries(Object.entries(step.env ?? {}).map(([k, v]) => [k, expand(v)]));
      execFileSync('bash', ['-e', '-c', expand(step.run)], {
        cwd,
        env: { ...env, ...carried, ...stepEnv, PATH: `${bin}:${env.PATH}`, GITHUB_ENV: githubEnv, RUNNER_TEMP: scratch, GITHUB_REF_NAME: 'main' },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
    }
  }
  return { npm: npmLog(log) };
}

/** Runs a GitLab job's script in `cwd` with its variables overridden by `variables`, on branch `main`. */
export function runGitlabJob(file: string, cwd: string, scratch: string, env: Record<string, string>, variables: Record<string, string>): CiRun {
  const jobs = parse(readFileSync(file, 'utf8')) as Record<string, { script: string[]; variables?: Record<string, string> }>;
  const { bin, log } = stubNpm(scratch, cwd);
  for (const job of Object.values(jobs)) {
    execFileSync('bash', ['-e', '-c', job.script.join('\n')], {
      cwd,
      env: { ...env, ...job.variables, ...variables, PATH: `${bin}:${env.PATH}`, CI_COMMIT_REF_NAME: 'main' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
  }
  return { npm: npmLog(log) };
}
