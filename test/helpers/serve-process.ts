/** `maas serve` as a real process (the built CLI), and raw HTTP bytes on a socket, for hostile-input tests. */
import { spawn } from 'node:child_process';
import { connect } from 'node:net';
import { onTestFinished } from 'vitest';
import { BIN } from './run-cli.js';

export interface ServeProcess {
  pid: number;
  url: string;
  port: number;
  stdout: () => string;
  stderr: () => string;
  alive: () => boolean;
  /** SIGTERM, then the exit code. */
  stop: () => Promise<number | null>;
}

/** Spawns `maas serve ARGS --json` and resolves once it printed its address; rejects with stderr if it exits first. */
export async function spawnServe(args: string[], options: { cwd: string; env: Record<string, string> }): Promise<ServeProcess> {
  const child = spawn(process.execPath, [BIN, 'serve', ...args, '--json'], { cwd: options.cwd, env: options.env });
  let stdout = '';
  let stderr = '';
  let exitCode: number | null | undefined;
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve((exitCode = code))));
  child.stderr.on('data', (d) => (stderr += d));
  onTestFinished(() => {
    if (exitCode === undefined) child.kill('SIGKILL');
  });
  const started = await new Promise<{ url: string; port: number }>((resolve, reject) => {
    child.stdout.on('data', (d) => {
      stdout += d;
      // The first line is the address; a failed start prints its error (also JSON) and exits.
      const first = /^(\{"url".*)\n/.exec(stdout)?.[1];
      if (first) resolve(JSON.parse(first) as { url: string; port: number });
    });
    void exited.then((code) => reject(new Error(`serve exited with ${code}: ${stdout}${stderr}`)));
  });
  return {
    pid: child.pid!,
    ...started,
    stdout: () => stdout,
    stderr: () => stderr,
    alive: () => exitCode === undefined,
    stop: async () => {
      if (exitCode === undefined) child.kill('SIGTERM');
      return exited;
    },
  };
}

export interface RawAnswer {
  /** the status of the first response, or undefined when the server closed without one. */
  status: number | undefined;
  text: string;
}

/**
 * Writes raw bytes to the server and reads until it closes the connection (or `waitMs` pass).
 * `end` half-closes after writing, as a client that has nothing more to send.
 */
export function rawHttp(port: number, bytes: Buffer | string, waitMs = 3000, end = false): Promise<RawAnswer> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    const done = () => {
      clearTimeout(timer);
      socket.destroy();
      const text = Buffer.concat(chunks).toString('latin1');
      const status = /^HTTP\/1\.[01] (\d{3})/.exec(text)?.[1];
      resolve({ status: status === undefined ? undefined : Number(status), text });
    };
    const timer = setTimeout(done, waitMs);
    socket.on('data', (d) => chunks.push(d));
    socket.on('error', done);
    socket.on('close', done);
    socket.write(bytes);
    if (end) socket.end();
  });
}
