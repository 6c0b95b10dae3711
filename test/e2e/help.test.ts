/**
 * `maas --help` and every `maas COMMAND --help` load no domain module: of maas only the CLI, the
 * commands, core/, ui/ and the light tables of defaults and vocabulary their options read; of
 * dependencies only commander and chalk. Help stays instant, whatever onnxruntime, git or gRPC cost.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { commands } from '../../src/commands/index.js';
import { BIN } from '../helpers/run-cli.js';
import { useTempDir } from '../helpers/temp.js';

/** Modules outside core/, ui/ and commands/ that an option table may read: defaults and vocabulary, importing nothing heavy. */
const DECLARATIONS = ['inference/config.js', 'registry/config.js', 'registry/policy.js', 'registry/refs.js', 'convert/config.js'];
const PACKAGES = ['commander', 'chalk'];
const DIST = pathToFileURL(join(import.meta.dirname, '../../dist/')).href;

function loadedBy(args: string[]): { maas: string[]; packages: string[] } {
  const file = join(useTempDir(), 'loads.txt');
  const run = spawnSync(process.execPath, ['--import', join(import.meta.dirname, '../helpers/log-loads.mjs'), BIN, ...args], { env: { ...process.env, MAAS_LOADS_FILE: file }, encoding: 'utf8' });
  expect(run.status, run.stderr).toBe(0);
  const urls = [...new Set(readFileSync(file, 'utf8').split('\n').filter((u) => u.startsWith('file:')))];
  return {
    maas: urls.filter((u) => u.startsWith(DIST)).map((u) => u.slice(DIST.length)),
    packages: [...new Set(urls.flatMap((u) => /\/node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(u)?.[1] ?? []))],
  };
}

describe('help', () => {
  it.each(['--help', ...commands.map((c) => `${c.name} --help`)])('maas %s loads no domain module', (line) => {
    const { maas, packages } = loadedBy(line.split(' '));
    expect(maas.filter((m) => !/^(cli\.js|commands\/|core\/|ui\/)/.test(m) && !DECLARATIONS.includes(m))).toEqual([]);
    expect(packages.filter((p) => !PACKAGES.includes(p))).toEqual([]);
  });
});
