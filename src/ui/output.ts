/** The only writer to stdout/stderr: results on stdout, logs and progress on stderr. */
import type { Ora } from 'ora';
import type { Io } from '../core/context.js';
import { formatBytes } from '../core/units.js';
import type { Output, Theme } from '../core/output.js';

export interface OutputOptions {
  io: Io;
  theme: Theme;
  json: boolean;
  verbose: boolean;
  /** stderr is a TTY and this is not CI: spinners and bars may animate. */
  animate: boolean;
}

const REDRAW_MS = 100;

/** A spinner on `stream`; ora is loaded on first use, so commands that never spin never load it. */
function spinner(text: string, stream: NodeJS.WritableStream): { setText(text: string): void; stop(): void } {
  let instance: Ora | undefined;
  let stopped = false;
  let current = text;
  void import('ora').then(({ default: ora }) => {
    if (!stopped) instance = ora({ text: current, stream }).start();
  });
  return {
    setText(next) {
      current = next;
      if (instance) instance.text = next;
    },
    stop() {
      stopped = true;
      instance?.stop();
    },
  };
}

export function createOutput({ io, theme, json, verbose, animate }: OutputOptions): Output {
  const err = (line: string) => io.stderr.write(`${line}\n`);
  return {
    json,
    theme,
    result: (text) => {
      if (text) io.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
    },
    info: (message) => err(message),
    warn: (message) => err(theme.warn(`⚠ ${message}`)),
    debug: (message) => {
      if (verbose) err(theme.dim(message));
    },
    step: (label) => {
      if (!animate || json) return { update: () => {}, stop: () => {} };
      const spin = spinner(label, io.stderr);
      return { update: () => {}, stop: () => spin.stop() };
    },
    progress: (label, totalBytes) => {
      if (!animate || json) return { update: () => {}, stop: () => {} };
      const spin = spinner(label, io.stderr);
      let last = 0;
      return {
        update(doneBytes) {
          const now = Date.now();
          if (now - last < REDRAW_MS) return;
          last = now;
          const pct = totalBytes > 0 ? Math.floor((doneBytes / totalBytes) * 100) : 100;
          spin.setText(`${label} ${pct}% (${formatBytes(doneBytes)} / ${formatBytes(totalBytes)})`);
        },
        stop: () => spin.stop(),
      };
    },
  };
}
