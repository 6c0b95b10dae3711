/** Every side effect a command may have comes in through this context, so tests run commands in-process. */
import type { Readable, Writable } from 'node:stream';
import type { Output } from './output.js';

export interface Io {
  stdin: Readable & { isTTY?: boolean };
  stdout: Writable & { isTTY?: boolean };
  stderr: Writable & { isTTY?: boolean };
}

export type Env = Record<string, string | undefined>;

export interface GlobalOptions {
  json: boolean;
  yes: boolean;
  color: boolean;
  verbose: boolean;
  registry: string | undefined;
}

export interface CommandContext {
  cwd: string;
  env: Env;
  io: Io;
  now: () => Date;
  out: Output;
  globals: GlobalOptions;
  /** prompts allowed: stdin and stdout are TTYs, not CI, not --json, not --yes. */
  interactive: boolean;
  /** resolves with the signal that asks a long-running command (serve) to stop. */
  shutdownSignal: () => Promise<string>;
}

export function isCI(env: Env): boolean {
  return Boolean(env.CI && env.CI !== 'false' && env.CI !== '0');
}
