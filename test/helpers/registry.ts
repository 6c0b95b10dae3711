import { copyFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'vitest';
import { runCli } from './run-cli.js';
import { testEnv, useTempDir } from './temp.js';

export const FIXTURES = fileURLToPath(new URL('../../fixtures/', import.meta.url));

export interface TestRegistry {
  dir: string;
  home: string;
  env: Record<string, string>;
  /** a scratch folder for model files. */
  work: string;
  cli: (...args: string[]) => ReturnType<typeof runCli>;
  fixture: (name: string) => string;
}

/** A registry made by `maas init --yes` in a temp folder, with a `cli` bound to it. */
export async function makeRegistry(): Promise<TestRegistry> {
  const home = useTempDir();
  const dir = join(home, 'registry');
  const work = join(home, 'work');
  mkdirSync(work);
  const env = testEnv(home);
  const init = await runCli(['init', dir, '--yes'], { cwd: home, env });
  expect(init.exitCode, init.stderr).toBe(0);
  return {
    dir,
    home,
    env,
    work,
    cli: (...args) => runCli(args, { cwd: dir, env }),
    fixture: (name) => {
      const target = join(work, name);
      copyFileSync(join(FIXTURES, name), target);
      return target;
    },
  };
}
