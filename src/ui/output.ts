/** The only writer to stdout/stderr: results on stdout, logs and progress on stderr. */
import ora, { type Ora } from 'ora';
import type { Io } from '../core/context.js';
import { formatBytes } from './format.js';
import type { Output, Progress, Theme } from '../core/output.js';

export interface OutputOptions {
  io: Io;
  theme: Theme;
  json: boolean;
  verbose: boolean;
  /** stderr is a TTY and this is not CI: spinners and bars may animate. */
  animate: boolean;
}

const REDRAW_MS = 100;

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
      const spinner: Ora = ora({ text: label, stream: io.stderr }).start();
      return { update: () => {}, stop: () => spinner.stop() };
    },
    progress: (label, totalBytes) => {
      if (!animate || json) return { update: () => {}, stop: () => {} };
      const spinner: Ora = ora({ text: label, stream: io.stderr }).start();
      let last = 0;
      return {
        update(doneBytes) {
          const now = Date.now();
          if (now - last < REDRAW_MS) return;
          last = now;
          const pct = totalBytes > 0 ? Math.floor((doneBytes / totalBytes) * 100) : 100;
          spinner.text = `${label} ${pct}% (${formatBytes(doneBytes)} / ${formatBytes(totalBytes)})`;
        },
        stop: () => spinner.stop(),
      };
    },
  };
}
