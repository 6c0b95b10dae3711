/** The only importer of @inquirer/prompts; prompts read stdin and draw on stderr. */
import type { Io } from '../core/context.js';

export interface Prompter {
  input(message: string, defaultValue: string, validate?: (value: string) => true | string): Promise<string>;
  select<T extends string>(message: string, choices: readonly T[], defaultValue: T): Promise<T>;
  password(message: string): Promise<string>;
}

export function createPrompter(io: Io): Prompter {
  const context = { input: io.stdin, output: io.stderr };
  return {
    async input(message, defaultValue, validate) {
      const { input } = await import('@inquirer/prompts');
      return input({ message, default: defaultValue, ...(validate ? { validate } : {}) }, context);
    },
    async password(message) {
      const { password } = await import('@inquirer/prompts');
      return password({ message, mask: '*' }, context);
    },
    async select(message, choices, defaultValue) {
      const { select } = await import('@inquirer/prompts');
      return select({ message, choices: choices.map((value) => ({ value })), default: defaultValue }, context);
    },
  };
}
