import { PassThrough, Writable } from 'node:stream';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { run } from '../../src/cli.js';

export interface CliResult {
  exitCode: number;
  stdout: string;
  stderr: string;
  json: <T = any>() => T;
}

class Capture extends Writable {
  text = '';
  isTTY = false;
  override _write(chunk: Buffer, _enc: BufferEncoding, done: () => void): void {
    this.text += chunk.toString('utf8');
    this.emit('text');
    done();
  }
}

/**
 * A user at a terminal: each answer is typed once its prompt has been drawn on stderr, never
 * earlier, and on the next turn of the loop, since inquirer listens for keys only after drawing.
 */
function typeAnswers(stderr: Capture, stdin: PassThrough, answers: ReadonlyArray<readonly [prompt: string, keys: string]>): void {
  let next = 0;
  let seenUpTo = 0;
  const answerIfAsked = () => {
    if (next >= answers.length) return void stderr.off('text', answerIfAsked);
    const [prompt, keys] = answers[next]!;
    // Prompts wrap at 80 columns: a prompt is found in the text as read, line breaks and all.
    const at = stderr.text.replace(/\s+/g, ' ').indexOf(prompt, seenUpTo);
    if (at < 0) return;
    seenUpTo = at + prompt.length;
    next += 1;
    setImmediate(() => {
      stdin.write(keys);
      answerIfAsked();
    });
  };
  stderr.on('text', answerIfAsked);
}

function result(exitCode: number, stdout: string, stderr: string): CliResult {
  return { exitCode, stdout, stderr, json: () => JSON.parse(stdout) };
}

/**
 * Runs maas in-process with captured streams, as a user would type `maas ...args`. `input` is
 * piped to stdin. With `answers` stdin and stdout are a terminal instead, and each [prompt, keys]
 * pair is typed when its prompt appears.
 */
export async function runCli(args: string[], options: { cwd: string; env: Record<string, string>; input?: string; answers?: ReadonlyArray<readonly [prompt: string, keys: string]> }): Promise<CliResult> {
  const stdout = new Capture();
  const stderr = new Capture();
  const tty = options.answers !== undefined;
  stdout.isTTY = tty;
  const stdin = Object.assign(new PassThrough(), { isTTY: tty });
  if (options.answers) typeAnswers(stderr, stdin, options.answers);
  else stdin.end(options.input ?? '');
  const exitCode = await run(args, { io: { stdin, stdout, stderr }, env: options.env, cwd: options.cwd });
  return result(exitCode, stdout.text, stderr.text);
}

export const BIN = fileURLToPath(new URL('../../bin/maas.js', import.meta.url));

/**
 * Spawns the built CLI (bin/maas.js → dist/), for tests that need a real process. With
 * `timeoutMs` a process still running then is killed, and the result's signal says so.
 */
export function spawnCli(args: string[], options: { cwd: string; env: Record<string, string>; nodeArgs?: string[]; timeoutMs?: number }): Promise<CliResult & { signal: NodeJS.Signals | null }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...(options.nodeArgs ?? []), BIN, ...args], { cwd: options.cwd, env: options.env, ...(options.timeoutMs ? { timeout: options.timeoutMs, killSignal: 'SIGKILL' as const } : {}) });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ ...result(code ?? -1, stdout, stderr), signal }));
  });
}
