/** Model references: `name`, `name@3` (or `name@v3`, its git tag), `name@prod`, `name@latest`. */
import { MaasError } from '../core/errors.js';

export type Selector = { kind: 'version'; version: number } | { kind: 'alias'; alias: string } | { kind: 'latest' };

export interface ModelRef {
  name: string;
  selector: Selector;
}

/** OCI repository path components are lowercase; maas names follow them so push needs no renaming. */
const NAME = /^[a-z0-9]+(?:[._-][a-z0-9]+)*$/;
const MAX_NAME = 128;
const ALIAS = /^[a-z][a-z0-9._-]{0,62}$/;
export const LATEST = 'latest';

function isModelName(name: string): boolean {
  return NAME.test(name) && name.length <= MAX_NAME;
}

/** For a name a command takes as a name (register, pull and import all take --name). */
export function assertModelName(name: string): void {
  if (NAME.test(name) && name.length > MAX_NAME) {
    throw new MaasError('MAAS_USAGE', `'${name.slice(0, 40)}…' is ${name.length} characters long; a model name has at most ${MAX_NAME}`, {
      hint: `Pass a shorter --name (e.g. ${suggestName(name)}).`,
    });
  }
  if (!isModelName(name)) {
    throw new MaasError('MAAS_USAGE', `'${name}' is not a valid model name`, {
      hint: `Use lowercase letters, digits and single . _ - between them (e.g. ${suggestName(name) || 'mlp'}); pass --name.`,
    });
  }
}

export function assertAlias(alias: string): void {
  if (!ALIAS.test(alias)) {
    throw new MaasError('MAAS_USAGE', `'${alias}' is not a valid alias`, {
      hint: 'An alias starts with a lowercase letter and holds lowercase letters, digits, . _ - (e.g. prod, staging).',
    });
  }
  if (alias === LATEST) {
    throw new MaasError('MAAS_USAGE', `'${LATEST}' is reserved: it always means the highest version`, { hint: 'Pick another alias, such as prod.' });
  }
  // Version N's git tag is NAME@vN: an alias v5 would read as version 5 in git and not in maas.
  if (/^v\d+$/.test(alias)) {
    throw new MaasError('MAAS_USAGE', `'${alias}' would read as a version: NAME@${alias} is the git tag of version ${alias.slice(1)}`, { hint: 'Pick an alias that is not v followed by digits, such as prod or release-5.' });
  }
}

export function parseVersion(text: string): number {
  if (!/^[1-9][0-9]{0,8}$/.test(text)) {
    throw new MaasError('MAAS_USAGE', `'${text}' is not a version`, { hint: 'A version is a positive integer such as 1, 2, 3.' });
  }
  return Number(text);
}

/**
 * Turns a file name into a valid model name: `My Model_v2.onnx` → `my-model_v2`; '' when nothing
 * is left. `cut`: no longer than a name may be (for a hint; a name taken silently must not be cut,
 * or two long file names could share one model).
 */
export function suggestName(fileBase: string, cut = true): string {
  const name = fileBase
    .replace(/\.(onnx|pt|pth|torchscript|h5|keras|tflite|pb)$/i, '')
    .toLowerCase()
    .replace(/[^a-z0-9._-]+/g, '-')
    .replace(/[._-]{2,}/g, '-');
  return (cut ? name.slice(0, MAX_NAME) : name).replace(/^[._-]+|[._-]+$/g, '');
}

/** A reference the user typed (show, tag, diff, serve...): its errors say how to write one, not which flag to pass. */
export function parseRef(text: string, defaultSelector: Selector = { kind: 'latest' }): ModelRef {
  const notARef = (why: string) => new MaasError('MAAS_USAGE', `'${text}' is not a model reference: ${why}`, {
    hint: 'Write NAME, NAME@VERSION or NAME@ALIAS, e.g. mlp@2 or mlp@prod; `maas list` shows the names.',
  });
  const at = text.lastIndexOf('@');
  const name = at === -1 ? text : text.slice(0, at);
  if (!isModelName(name)) throw notARef(name ? `'${name}' is not a valid model name` : 'it names no model');
  if (at === -1) return { name, selector: defaultSelector };
  const selector = text.slice(at + 1);
  if (/^[0-9]+$/.test(selector)) return { name, selector: { kind: 'version', version: parseVersion(selector) } };
  // NAME@vN is version N's git tag, so it names that version here too (no alias is v and digits).
  if (/^v[0-9]+$/.test(selector)) return { name, selector: { kind: 'version', version: parseVersion(selector.slice(1)) } };
  if (selector === LATEST) return { name, selector: { kind: 'latest' } };
  if (!ALIAS.test(selector)) throw notARef(`'${selector}' is neither a version nor an alias`);
  return { name, selector: { kind: 'alias', alias: selector } };
}

/** Requires an explicit version: `name@3`. */
export function parseVersionRef(text: string): { name: string; version: number } {
  const ref = parseRef(text, { kind: 'alias', alias: '' });
  if (ref.selector.kind !== 'version') {
    throw new MaasError('MAAS_USAGE', `'${text}' names no version`, { hint: `Write NAME@VERSION, e.g. ${ref.name}@1.` });
  }
  return { name: ref.name, version: ref.selector.version };
}

export function formatRef(name: string, version: number): string {
  return `${name}@${version}`;
}

/** A reference as the user wrote it: `mlp@prod`, `mlp@3`, `mlp@latest`. */
export function formatModelRef(ref: ModelRef): string {
  const { selector } = ref;
  return `${ref.name}@${selector.kind === 'version' ? selector.version : selector.kind === 'alias' ? selector.alias : LATEST}`;
}
