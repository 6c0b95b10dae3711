/**
 * The bench both hostile-input suites stand on: under one temporary root, a source registry whose
 * `ext@1` (a model with external data) is pushed to an OCI layout as the honest artifact, a target
 * registry holding `mlp@1`, a sentinel folder, and the process's TMPDIR, so that whatever a
 * refused command leaves behind, anywhere, is seen.
 */
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'vitest';
import { type OciArtifact, readLayoutArtifact } from './hostile-registry.js';
import { FIXTURES } from './registry.js';
import { type CliResult, runCli } from './run-cli.js';
import { testEnv } from './temp.js';

export interface HostileBench {
  root: string;
  registry: string;
  env: Record<string, string>;
  /** the honest artifact: ext@1 as `maas push` wrote it to an OCI layout. */
  artifact: OciArtifact;
  /** `maas list --json` of the target registry before any hostile input. */
  list: string;
  cli: (...args: string[]) => Promise<CliResult>;
  /** asserts a refused command left no blob, staging or temporary file, and nothing outside the registry. */
  expectUntouched(): void;
  remove(): void;
}

/** Every file under a folder, relative, sorted. */
function tree(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true }).map((e) => join(e.parentPath, e.name).slice(dir.length + 1)).sort();
}

export async function hostileBench(prefix: string, extraEnv: Record<string, string> = {}): Promise<HostileBench> {
  const root = realpathSync(mkdtempSync(join(tmpdir(), prefix)));
  // This fork's temporary files (import staging) land here, so a leftover is seen.
  mkdirSync(join(root, 'tmp'));
  process.env.TMPDIR = join(root, 'tmp');
  const env = testEnv(root, extraEnv);
  mkdirSync(join(root, 'sentinel'));
  writeFileSync(join(root, 'sentinel', 'keep'), 'untouched');
  mkdirSync(join(root, 'work'));
  mkdirSync(join(root, 'archives'));
  for (const f of ['mlp.onnx', 'mlp_external.onnx', 'mlp_external.onnx.data']) writeFileSync(join(root, 'work', f), readFileSync(join(FIXTURES, f)));

  const source = join(root, 'source');
  expect((await runCli(['init', source, '--yes'], { cwd: root, env })).exitCode).toBe(0);
  expect((await runCli(['register', join(root, 'work/mlp_external.onnx'), '--name', 'ext'], { cwd: source, env })).exitCode).toBe(0);
  expect((await runCli(['push', 'ext@1', `oci-layout:${join(root, 'layout')}`], { cwd: source, env })).exitCode).toBe(0);
  const artifact = readLayoutArtifact(join(root, 'layout'), '1');

  const registry = join(root, 'registry');
  const cli = (...args: string[]) => runCli(args, { cwd: registry, env });
  expect((await runCli(['init', registry, '--yes'], { cwd: root, env })).exitCode).toBe(0);
  expect((await cli('register', join(root, 'work/mlp.onnx'))).exitCode).toBe(0);
  const blobs = () => readdirSync(join(registry, 'blobs/sha256')).sort();
  const before = { blobs: blobs(), sentinel: tree(join(root, 'sentinel')), root: readdirSync(root).sort() };
  return {
    root,
    registry,
    env,
    artifact,
    list: (await cli('list', '--json')).stdout,
    cli,
    expectUntouched() {
      expect(blobs()).toEqual(before.blobs);
      expect(tree(join(registry, '.maas')).filter((p) => p.startsWith('tmp/') || p.startsWith('serve/'))).toEqual([]);
      expect(readdirSync(join(root, 'tmp'))).toEqual([]);
      expect(tree(join(root, 'sentinel'))).toEqual(before.sentinel);
      expect(readdirSync(root).sort()).toEqual(before.root);
    },
    remove: () => rmSync(root, { recursive: true, force: true }),
  };
}
