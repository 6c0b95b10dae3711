/** The one Chalk instance, with semantic helpers (core/output.ts's Theme) instead of raw colour names. */
import { Chalk, type ChalkInstance } from 'chalk';
import type { Env } from '../core/context.js';
import type { Theme } from '../core/output.js';

export function colorLevel(env: Env, isTTY: boolean, colorFlag: boolean): 0 | 1 {
  if (!colorFlag || env.NO_COLOR !== undefined) return 0;
  if (env.FORCE_COLOR !== undefined) return env.FORCE_COLOR === '0' ? 0 : 1;
  return isTTY ? 1 : 0;
}

export function createTheme(level: 0 | 1): Theme {
  const chalk: ChalkInstance = new Chalk({ level });
  return {
    success: chalk.green,
    error: chalk.red,
    warn: chalk.yellow,
    dim: chalk.dim,
    bold: chalk.bold,
    code: chalk.cyan,
    path: chalk.underline,
    ref: chalk.magenta,
  };
}
