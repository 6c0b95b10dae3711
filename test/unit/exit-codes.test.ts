import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ERROR_CODES, MaasError } from '../../src/core/errors.js';

describe("the README's table of exit codes", () => {
  it('lists every error code under the exit code it gives', () => {
    const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
    const table = readme.slice(readme.indexOf('## Exit codes and errors'));
    const listedUnder = new Map<string, number>();
    for (const [, exit, cells] of table.matchAll(/^\| (\d+) \|[^|]*\|(.*)\|$/gm)) {
      for (const [, code] of cells!.matchAll(/`(MAAS_[A-Z_]+)`/g)) listedUnder.set(code!, Number(exit));
    }
    for (const code of ERROR_CODES) expect(listedUnder.get(code), code).toBe(new MaasError(code, '').exitCode);
  });
});
