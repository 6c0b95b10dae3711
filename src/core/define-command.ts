/** The shape of a command: commander reads its flags, `run` returns a result, `render` prints it. */
import type { CommandContext } from './context.js';
import type { Theme } from './output.js';

export interface OptionSpec {
  /** commander flags, e.g. '--version <n>'. */
  flags: string;
  description: string;
  choices?: readonly string[];
  /** converts the raw string; throws MaasError('MAAS_USAGE') on bad input. */
  parse?: (value: string) => unknown;
  /** the command cannot run without it: commander refuses its absence (exit 2) and --help says so. */
  required?: boolean;
}

export interface CommandSpec<R = unknown> {
  name: string;
  summary: string;
  /** positional arguments, commander syntax: '<file>', '[dir]'. */
  args?: string[];
  options?: OptionSpec[];
  examples?: string[];
  run: (args: string[], options: Record<string, unknown>, ctx: CommandContext) => Promise<R>;
  render: (result: R, theme: Theme) => string;
  /** the command writes its own result while it runs (serve prints its address, then serves). */
  printsOwnResult?: boolean;
  /** a non-zero exit for a result that is a verdict (verify found problems, diff found a break). */
  exitCode?: (result: R, options: Record<string, unknown>) => number;
}

export function defineCommand<R>(spec: CommandSpec<R>): CommandSpec<R> {
  return spec;
}
