/**
 * Builds the commander program and runs one command. Returns the exit code; only bin/maas.js
 * exits. Every stream, the environment, the folder and the clock come in through `RunOptions`.
 */
import { Command, CommanderError, Option } from 'commander';
import { commands } from './commands/index.js';
import { type CommandContext, type Env, type GlobalOptions, type Io, isCI } from './core/context.js';
import type { CommandSpec, OptionSpec, OptionTable } from './core/define-command.js';
import { EXIT_CODES, MaasError, errnoCode, isMaasError, messageOf } from './core/errors.js';
import { removeTempFolders } from './core/fs.js';
import { VERSION } from './core/version.js';
import { createOutput } from './ui/output.js';
import { colorLevel, createTheme } from './ui/theme.js';

export interface RunOptions {
  io?: Partial<Io>;
  env?: Env;
  cwd?: string;
  now?: () => Date;
  shutdownSignal?: () => Promise<string>;
}

/** The first SIGINT or SIGTERM; a second one is left to Node's default (exit at once). */
function processShutdownSignal(): Promise<string> {
  return new Promise((resolve) => {
    const on = (signal: NodeJS.Signals) => {
      process.off('SIGINT', on);
      process.off('SIGTERM', on);
      resolve(signal);
    };
    process.on('SIGINT', on);
    process.on('SIGTERM', on);
  });
}

/**
 * Ctrl-C (or SIGTERM) on a command that does not wait for it: its temporary folders are removed,
 * it says so, and the process ends by the signal (exit 130 for Ctrl-C). Registry writes need nothing more: the journal
 * lets the next write or `maas verify` finish or undo one. Returns the uninstaller.
 */
function endOnInterrupt(claimed: () => boolean, report: (error: MaasError) => number): () => void {
  const off = () => {
    process.off('SIGINT', on);
    process.off('SIGTERM', on);
  };
  function on(signal: NodeJS.Signals): void {
    if (claimed()) return;
    removeTempFolders();
    report(new MaasError('MAAS_CANCELLED', `interrupted (${signal})`, { hint: 'Nothing half-written is kept; if it was writing to a registry, `maas verify` shows where it stands.' }));
    // Ended by the signal itself, as without this handler: process.exit would tear down
    // onnxruntime workers mid-run, which aborts the process.
    off();
    process.kill(process.pid, signal);
  }
  process.on('SIGINT', on);
  process.on('SIGTERM', on);
  return off;
}

const ISSUES_URL = 'https://github.com/maas-dev/maas/issues/new';

function globalsOf(command: Command): GlobalOptions {
  const o = command.optsWithGlobals() as Record<string, unknown>;
  return {
    json: Boolean(o.json),
    yes: Boolean(o.yes),
    color: o.color !== false,
    verbose: Boolean(o.verbose),
    registry: o.registry as string | undefined,
  };
}

/** Errors from outside maas that a user caused (a path that isn't there) get a plain message. */
function normalizeError(error: unknown): MaasError | undefined {
  if (isMaasError(error)) return error;
  const errno = errnoCode(error);
  const path = (error as { path?: string }).path;
  if (errno === 'ENOENT' && path) return new MaasError('MAAS_FILE_NOT_FOUND', `${path} does not exist`, { cause: error, hint: 'Check the path.' });
  if ((errno === 'EACCES' || errno === 'EPERM') && path) {
    return new MaasError('MAAS_CONFIG_INVALID', `permission denied: ${path}`, { cause: error, hint: 'Check the file permissions, or run as the registry owner.' });
  }
  if (errno === 'ENOSPC' || errno === 'EDQUOT') return new MaasError('MAAS_INTERNAL', `the disk is full${path ? ` (writing ${path})` : ''}`, { cause: error, hint: 'Free some space and run `maas verify`.' });
  if (errno === 'EROFS') {
    return new MaasError('MAAS_CONFIG_INVALID', `the file system is read-only${path ? ` (writing ${path})` : ''}`, {
      cause: error,
      hint: 'Run commands that write where the registry is writable; list, show, verify, gc --dry-run, pack and push read a read-only registry as it is.',
    });
  }
  if (errno === 'EIO') {
    return new MaasError('MAAS_INTERNAL', `the disk failed a write${path ? ` to ${path}` : ''} (${errno})`, { cause: error, hint: 'Check the disk (dmesg, mount options), then run `maas verify`.' });
  }
  if ((error as Error | undefined)?.name === 'ExitPromptError' || (error as Error | undefined)?.name === 'AbortPromptError') {
    return new MaasError('MAAS_CANCELLED', 'Cancelled.');
  }
  return undefined;
}

/** One row of a command's option table as a commander option; its key must be commander's name for it. */
function commanderOption(command: string, key: string, spec: OptionSpec): Option {
  // Switches say nothing (absent is off); values show their default, or how it is settled.
  const shownDefault = spec.defaultText ?? (spec.default === undefined || typeof spec.default === 'boolean' ? undefined : String(spec.default));
  const notes = [spec.required ? '(required)' : '', shownDefault === undefined ? '' : `(default: ${shownDefault})`, spec.env ? `[env: ${spec.env}]` : ''];
  const option = new Option(spec.flags, [spec.description, ...notes.filter(Boolean)].join(' '));
  if (option.attributeName() !== key) throw new Error(`maas ${command}: option '${spec.flags}' must be keyed '${option.attributeName()}', not '${key}'`);
  if (spec.required) option.makeOptionMandatory();
  if (spec.choices) option.choices(spec.choices);
  if (spec.repeatable) option.argParser((value: string, previous: unknown[] | undefined) => [...(previous ?? []), spec.parse ? spec.parse(value) : value]);
  else if (spec.parse) option.argParser(spec.parse);
  return option;
}

/** The typed values `run` gets: the flag, else the environment variable, else the default. */
function optionValues(table: [string, OptionSpec][], parsed: Record<string, unknown>, env: Env): Record<string, unknown> {
  const values: Record<string, unknown> = { ...parsed };
  for (const [key, spec] of table) {
    if (values[key] === true && spec.bare !== undefined) values[key] = spec.bare;
    if (values[key] !== undefined) continue;
    const fromEnv = spec.env === undefined ? undefined : env[spec.env];
    values[key] = fromEnv !== undefined ? (spec.parse ? spec.parse(fromEnv) : fromEnv) : spec.default;
  }
  return values;
}

export async function run(argv: string[], options: RunOptions = {}): Promise<number> {
  const io: Io = {
    stdin: options.io?.stdin ?? process.stdin,
    stdout: options.io?.stdout ?? process.stdout,
    stderr: options.io?.stderr ?? process.stderr,
  };
  const env = options.env ?? process.env;
  const cwd = options.cwd ?? process.cwd();
  const now = options.now ?? (() => new Date());
  const wantsJson = argv.includes('--json');
  const wantsColor = !argv.includes('--no-color');
  const theme = createTheme(colorLevel(env, Boolean(io.stderr.isTTY), wantsColor));
  const out = createOutput({ io, theme, json: wantsJson, verbose: argv.includes('--verbose'), animate: Boolean(io.stderr.isTTY) && !isCI(env) });

  /** Prints a MaasError as the user sees it (text, or JSON with --json) and gives its exit code. */
  const report = (known: MaasError): number => {
    if (wantsJson) out.result(JSON.stringify({ error: known.toJSON() }, null, 2));
    else {
      out.info(theme.error(`✖ ${known.message}`));
      if (known.hint) out.info(`  ${known.hint}`);
      if (known.cause !== undefined) out.debug(`  cause: ${messageOf(known.cause)}`);
    }
    return known.exitCode;
  };

  let exitCode: number = EXIT_CODES.ok;
  // Global flags are accepted before and after the command name; positional parsing keeps
  // `maas --version` apart from `maas register --version 2`.
  const addGlobalOptions = (command: Command) =>
    command
      .option('--json', 'print one JSON document on stdout (errors too)')
      .option('-y, --yes', 'never prompt; use flags and defaults')
      .option('--no-color', 'plain text')
      .option('--verbose', 'more detail on stderr, and the cause of errors')
      .addOption(new Option('--registry <dir>', 'registry folder (default: nearest maas.yaml up from here)').env('MAAS_REGISTRY'));
  const program = addGlobalOptions(
    new Command('maas')
      .description('ONNX models as a service: a git-backed registry, a KServe v2 server, OCI push')
      .version(VERSION, '-V, --version')
      .enablePositionalOptions(),
  )
    .showHelpAfterError('(run maas --help for the commands)')
    .exitOverride()
    .configureOutput({ writeOut: (s) => io.stdout.write(s), writeErr: (s) => io.stderr.write(s) });

  for (const spec of commands as CommandSpec<unknown, OptionTable>[]) {
    const command = addGlobalOptions(program.command(spec.name).description(spec.summary)).showHelpAfterError(`(run maas ${spec.name} --help for usage)`);
    for (const arg of spec.args ?? []) command.argument(arg);
    const table = Object.entries(spec.options ?? {});
    for (const [key, o] of table) command.addOption(commanderOption(spec.name, key, o));
    if (spec.examples?.length) command.addHelpText('after', `\nExamples:\n${spec.examples.map((e) => `  $ ${e}`).join('\n')}\n`);
    command.exitOverride().action(async (...params: unknown[]) => {
      const self = params.at(-1) as Command;
      const args = params.slice(0, -2).flatMap((a) => (a === undefined ? [] : Array.isArray(a) ? (a as string[]) : [a as string]));
      const opts = optionValues(table, self.opts(), env);
      const globals = globalsOf(self);
      const interactive = Boolean(io.stdin.isTTY && io.stdout.isTTY) && !isCI(env) && !globals.json && !globals.yes;
      // A command that waits for the signal (serve) shuts down on it; any other is ended by it.
      let claimed = false;
      const shutdownSignal = options.shutdownSignal ?? (() => ((claimed = true), processShutdownSignal()));
      const ctx: CommandContext = { cwd, env, io, now, out, globals, interactive, shutdownSignal };
      const stopOnInterrupt = options.io === undefined && options.shutdownSignal === undefined ? endOnInterrupt(() => claimed, report) : () => undefined;
      const result = await spec.run(args, opts, ctx).finally(stopOnInterrupt);
      if (!spec.printsOwnResult) out.result(globals.json ? JSON.stringify(result, null, 2) : spec.render(result, theme));
      exitCode = spec.exitCode?.(result, opts) ?? EXIT_CODES.ok;
    });
  }

  try {
    await program.parseAsync(argv, { from: 'user' });
    return exitCode;
  } catch (error) {
    if (error instanceof CommanderError) {
      if (error.code === 'commander.helpDisplayed' || error.code === 'commander.version' || error.code === 'commander.help') return EXIT_CODES.ok;
      const named = argv.find((word) => commands.some((c) => c.name === word));
      const hint = `Run \`maas ${named ? `${named} ` : ''}--help\` for ${named ? 'its arguments and options' : 'the commands'}.`;
      // commander has printed the error and where to look on stderr; --json gets both on stdout.
      if (wantsJson) out.result(JSON.stringify({ error: { code: 'MAAS_USAGE', message: error.message.replace(/^error: /, ''), hint } }, null, 2));
      return EXIT_CODES.usage;
    }
    const known = normalizeError(error);
    if (known) return report(known);
    const stack = error instanceof Error ? (error.stack ?? error.message) : String(error);
    if (wantsJson) out.result(JSON.stringify({ error: { code: 'MAAS_INTERNAL', message: messageOf(error) } }, null, 2));
    out.info(theme.error('✖ Unexpected error: this is a bug in maas.'));
    out.info(`  Please report it at ${ISSUES_URL} with this text:`);
    out.info(`  maas ${VERSION}, node ${process.version}, ${process.platform}-${process.arch}\n${stack}`);
    return EXIT_CODES.internal;
  }
}
