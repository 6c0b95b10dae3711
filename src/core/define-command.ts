/**
 * The shape of a command: one table of typed options (flag, type, default, help text), a `run`
 * that gets them typed and returns a result, and a `render` that prints it. cli.ts turns the
 * table into commander options; a default is written once, here, and --help shows it.
 */
import type { CommandContext } from './context.js';
import { MaasError } from './errors.js';
import type { Theme } from './output.js';

export interface OptionSpec<T = unknown> {
  /** commander flags, e.g. '--port <port>'; the option's key is commander's camelCase name. */
  flags: string;
  description: string;
  /** the value when the flag is absent, and what --help shows. */
  default?: T;
  /** what --help says when the value is settled at run time (maas.yaml, the machine). */
  defaultText?: string;
  choices?: readonly string[];
  /** converts the raw string; throws MaasError('MAAS_USAGE') on bad input. */
  parse?: (value: string) => T;
  /** the command cannot run without it: commander refuses its absence (exit 2) and --help says so. */
  required?: boolean;
  /** read from this environment variable (the context's) when the flag is absent. */
  env?: string;
  /** the flag may be given again; each value is parsed and the option is the list of them. */
  repeatable?: boolean;
  /** for a flag whose value is optional (`--int8 [mode]`): the value when it is given bare. */
  bare?: T;
}

export type OptionTable = Record<string, OptionSpec<any>>;

/** What `run` receives for a table: each key typed by its spec. */
export type OptionValues<O extends OptionTable> = { [K in keyof O]: O[K] extends OptionSpec<infer T> ? T : never };

export interface CommandSpec<R = unknown, O extends OptionTable = OptionTable> {
  name: string;
  summary: string;
  /** positional arguments, commander syntax: '<file>', '[dir]'. */
  args?: string[];
  options?: O;
  examples?: string[];
  run: (args: string[], options: OptionValues<O>, ctx: CommandContext) => Promise<R>;
  render: (result: R, theme: Theme) => string;
  /** the command writes its own result while it runs (serve prints its address, then serves). */
  printsOwnResult?: boolean;
  /** a non-zero exit for a result that is a verdict (verify found problems, diff found a break). */
  exitCode?: (result: R, options: OptionValues<O>) => number;
}

export function defineCommand<R, O extends OptionTable = Record<never, never>>(spec: CommandSpec<R, O>): CommandSpec<R, O> {
  return spec;
}

type Extra<T> = Omit<OptionSpec<T>, 'flags' | 'description' | 'parse' | 'default'>;

/** A boolean switch: false when absent, except a '--no-x' flag, which is true when absent. */
function flag(flags: string, description: string): OptionSpec<boolean> {
  return { flags, description, default: flags.startsWith('--no-') };
}

function string(flags: string, description: string, extra?: Extra<string> & { parse?: (value: string) => string }): OptionSpec<string | undefined>;
function string(flags: string, description: string, extra: Extra<string> & { parse?: (value: string) => string; default: string }): OptionSpec<string>;
function string(flags: string, description: string, extra: Partial<OptionSpec<string>> = {}): OptionSpec<string | undefined> {
  return { flags, description, ...extra };
}

/** One of `choices`. */
function choice<C extends readonly string[]>(flags: string, choices: C, description: string, extra?: Extra<C[number]>): OptionSpec<C[number] | undefined>;
function choice<C extends readonly string[]>(flags: string, choices: C, description: string, extra: Extra<C[number]> & { default: C[number] }): OptionSpec<C[number]>;
function choice(flags: string, choices: readonly string[], description: string, extra: Partial<OptionSpec<string>> = {}): OptionSpec<string | undefined> {
  return { flags, description, choices, ...extra };
}

type IntegerExtra = Extra<number> & { min?: number; max?: number };

/** An integer in [min (default 1), max]. */
function integer(flags: string, description: string, extra?: IntegerExtra): OptionSpec<number | undefined>;
function integer(flags: string, description: string, extra: IntegerExtra & { default: number }): OptionSpec<number>;
function integer(flags: string, description: string, extra: IntegerExtra & { default?: number } = {}): OptionSpec<number | undefined> {
  const { min = 1, max = Number.MAX_SAFE_INTEGER, ...rest } = extra;
  return { flags, description, parse: integerIn(longFlag(flags), min, max), ...rest };
}

/** Any other value, converted (and checked) by `parse`. */
function custom<T>(flags: string, description: string, parse: (value: string) => T, extra?: Extra<T>): OptionSpec<T | undefined>;
function custom<T>(flags: string, description: string, parse: (value: string) => T, extra: Extra<T> & { default: T }): OptionSpec<T>;
function custom<T>(flags: string, description: string, parse: (value: string) => T, extra: Partial<OptionSpec<T>> = {}): OptionSpec<T | undefined> {
  return { flags, description, parse, ...extra };
}

/** A flag that may be repeated (`--pin a --pin b`): the list of its values, each through `parse`. */
function list<T>(flags: string, description: string, parse: (value: string) => T, extra: Extra<T[]> = {}): OptionSpec<T[]> {
  return { flags, description, parse: parse as (value: string) => never, repeatable: true, default: [], defaultText: 'none', ...extra };
}

/** A flag with an optional value (`--int8` or `--int8 static`): `bare` when given alone, else one of `choices`. */
function optional<C extends readonly string[]>(flags: string, choices: C, description: string, bare: C[number]): OptionSpec<C[number] | undefined> {
  return { flags, description, bare, parse: oneOf(longFlag(flags), choices) as (value: string) => C[number] };
}

/** The option kinds a command's table is made of; each spec carries the type `run` sees. */
export const option = { flag, string, choice, integer, custom, list, optional };

function oneOf(flag: string, choices: readonly string[]): (value: string) => string {
  return (value) => {
    if (!choices.includes(value)) throw new MaasError('MAAS_USAGE', `${flag} takes ${choices.join(', ')} (or nothing: ${choices[0]}), not '${value.slice(0, 40)}'`);
    return value;
  };
}

function longFlag(flags: string): string {
  return /--[\w-]+/.exec(flags)?.[0] ?? flags;
}

function integerIn(flag: string, min: number, max: number): (value: string) => number {
  return (value) => {
    if (!/^\d+$/.test(value) || Number(value) < min || Number(value) > max) {
      const range = max === Number.MAX_SAFE_INTEGER ? `≥ ${min}` : `from ${min} to ${max}`;
      throw new MaasError('MAAS_USAGE', `${flag} expects an integer ${range}, got '${value.slice(0, 40)}'`);
    }
    return Number(value);
  };
}
