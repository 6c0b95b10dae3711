/** The only importer of @inquirer/prompts; prompts read stdin and draw on stderr. */
import { Writable } from 'node:stream';
import type { Io } from '../core/context.js';

export interface Prompter {
  input(message: string, defaultValue: string, validate?: (value: string) => true | string): Promise<string>;
  select<T extends string>(message: string, choices: readonly T[], defaultValue: T): Promise<T>;
  password(message: string): Promise<string>;
  confirm(message: string, defaultValue: boolean): Promise<boolean>;
}

export function createPrompter(io: Io): Prompter {
  // Each prompt pipes into its output and ends it when done; a forwarder per prompt keeps stderr open for what follows.
  const forwarder = () => new Writable({ write: (chunk, _encoding, done) => void io.stderr.write(chunk, () => done()) });
  return {
    async input(message, defaultValue, validate) {
      const { input } = await import('@inquirer/prompts');
      return input({ message, default: defaultValue, ...(validate ? { validate } : {}) }, { input: io.stdin, output: forwarder() });
    },
    async password(message) {
      const { password } = await import('@inquirer/prompts');
      return password({ message, mask: '*' }, { input: io.stdin, output: forwarder() });
    },
    async confirm(message, defaultValue) {
      const { confirm } = await import('@inquirer/prompts');
      return confirm({ message, default: defaultValue }, { input: io.stdin, output: forwarder() });
    },
    async select(message, choices, defaultValue) {
      const { select } = await import('@inquirer/prompts');
      return select({ message, choices: choices.map((value) => ({ value })), default: defaultValue }, { input: io.stdin, output: forwarder() });
    },
  };
}
