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
    done();
  }
}

function result(exitCode: number, stdout: string, stderr: string): CliResult {
  return { exitCode, stdout, stderr, json: () => JSON.parse(stdout) };
}

/** Runs maas in-process with captured streams, as a user would type `maas ...args`. */
export async function runCli(args: string[], options: { cwd: string; env: Record<string, string>; stdin?: PassThrough & { isTTY?: boolean }; tty?: boolean }): Promise<CliResult> {
  const stdout = new Capture();
  const stderr = new Capture();
  stdout.isTTY = Boolean(options.tty);
  const stdin = options.stdin ?? Object.assign(new PassThrough(), { isTTY: false });
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
