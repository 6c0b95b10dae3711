/**
 * Two processes registering and tagging the same model at once: the lock serialises them, and
 * nothing is lost: every version, every alias move, every history line and every commit.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { mlp, writeModel } from '../../fixtures/models.js';
import { makeRegistry, type TestRegistry } from '../helpers/registry.js';
import { spawnCli } from '../helpers/run-cli.js';
import { expectWholeRegistry, git } from './harness.js';

const ROUNDS = 4;

/** One writer: registers its models one by one and moves its alias to each new version. */
async function writer(reg: TestRegistry, who: string, seedBase: number): Promise<{ digests: string[]; versions: number[] }> {
  const digests: string[] = [];
  const versions: number[] = [];
  for (let k = 0; k < ROUNDS; k++) {
    const file = writeModel(reg.work, `${who}${k}.onnx`, mlp({ seed: seedBase + k }));
    const registered = await spawnCli(['register', file, '--name', 'shared', '--json'], { cwd: reg.dir, env: reg.env });
    expect(registered.exitCode, registered.stderr).toBe(0);
    const { version, digest } = registered.json();
    const tagged = await spawnCli(['tag', `shared@${version}`, `${who}-latest`], { cwd: reg.dir, env: reg.env });
    expect(tagged.exitCode, tagged.stderr).toBe(0);
    digests.push(digest);
    versions.push(version);
  }
  return { digests, versions };
}

describe('concurrent writers', () => {
  it('two processes registering and tagging at once lose nothing', { timeout: 120_000 }, async () => {
    const reg = await makeRegistry();
    const [a, b] = await Promise.all([writer(reg, 'a', 100), writer(reg, 'b', 200)]);
    const versions = [...a.versions, ...b.versions].sort((x, y) => x - y);
    expect(versions).toEqual(Array.from({ length: 2 * ROUNDS }, (_, i) => i + 1));
    expect(JSON.parse(readFileSync(join(reg.dir, 'models/shared/aliases.json'), 'utf8'))).toEqual({ 'a-latest': a.versions.at(-1), 'b-latest': b.versions.at(-1) });

    const history = readFileSync(join(reg.dir, 'history.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(history.filter((e) => e.action === 'register').map((e) => e.version).sort((x, y) => x - y)).toEqual(versions);
    for (const [who, w] of [['a', a], ['b', b]] as const) {
      expect(history.filter((e) => e.action === 'tag' && e.alias === `${who}-latest`).map((e) => e.version)).toEqual(w.versions);
    }
    for (const [i, digest] of [...a.digests, ...b.digests].entries()) {
      const version = [...a.versions, ...b.versions][i]!;
      expect(JSON.parse(readFileSync(join(reg.dir, `models/shared/${version}/manifest.json`), 'utf8')).layers[0].digest).toBe(digest);
    }
    expect(git(reg.dir, 'log', '--format=%s').split('\n')).toHaveLength(1 + 4 * ROUNDS);
    expectWholeRegistry(reg);
    expect((await reg.cli('verify')).exitCode).toBe(0);
  });
});
