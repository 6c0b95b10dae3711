/**
 * kill -9 at seeded points of the commands that change the registry: register, tag, rm, gc.
 * After every kill `maas verify` passes, only whole versions remain, and a retry completes.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { largeMatmul, mlp, writeModel } from '../../fixtures/models.js';
import { makeRegistry } from '../helpers/registry.js';
import { POINTS, SEED, WEIGHTS, exerciseKills, layerOf, registerQuietly, sha256, versionsOf } from './harness.js';

describe(`kill -9 at ${POINTS} seeded points of each command (seed ${SEED})`, { timeout: 240_000 }, () => {
  it('register: every model ends up registered exactly once', async () => {
    const reg = await makeRegistry();
    const files: string[] = [];
    await exerciseKills(reg, 1, {
      prepare: async (i) => {
        files[i] = writeModel(reg.work, `m${i}.onnx`, largeMatmul(WEIGHTS, i + 1));
        return ['register', files[i]!, '--name', 'big'];
      },
      check: (i) => {
        const layers = versionsOf(reg, 'big').map((v) => layerOf(reg, 'big', v));
        expect(layers.filter((d) => d === sha256(files[i]!))).toHaveLength(1);
        expect(layers).toHaveLength(i + 1);
      },
    });
  });

  it('tag: every alias move lands once, in aliases.json, history and git', async () => {
    const reg = await makeRegistry();
    await registerQuietly(reg, reg.fixture('mlp.onnx'), 'm');
    await registerQuietly(reg, writeModel(reg.work, 'm2.onnx', mlp({ seed: 2 })), 'm');
    const target = (i: number) => (i % 2 === 0 ? 1 : 2);
    await exerciseKills(reg, 2, {
      prepare: async (i) => ['tag', `m@${target(i)}`, 'prod'],
      check: (i) => {
        expect(JSON.parse(readFileSync(join(reg.dir, 'models/m/aliases.json'), 'utf8'))).toEqual({ prod: target(i) });
        const moves = readFileSync(join(reg.dir, 'history.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l)).filter((e) => e.action === 'tag');
        expect(moves.map((e) => e.version)).toEqual(Array.from({ length: i + 1 }, (_, k) => target(k)));
      },
    });
  });

  it('rm: the version and its tag are gone, nothing else', async () => {
    const reg = await makeRegistry();
    const keep = await registerQuietly(reg, reg.fixture('mlp.onnx'), 'm');
    const removed: number[] = [];
    await exerciseKills(reg, 3, {
      prepare: async (i) => {
        removed[i] = await registerQuietly(reg, writeModel(reg.work, `r${i}.onnx`, mlp({ seed: 100 + i })), 'm');
        return ['rm', `m@${removed[i]}`];
      },
      retryExits: [0, 4],
      check: () => expect(versionsOf(reg, 'm')).toEqual([keep]),
    });
  });

  it('gc: unreferenced blobs and dead staging files are gone, referenced ones stay', async () => {
    const reg = await makeRegistry();
    await registerQuietly(reg, reg.fixture('mlp.onnx'), 'm');
    await exerciseKills(reg, 4, {
      prepare: async (i) => {
        const v = await registerQuietly(reg, writeModel(reg.work, `g${i}.onnx`, largeMatmul(WEIGHTS, 200 + i)), 'g');
        expect((await reg.cli('rm', `g@${v}`)).exitCode).toBe(0);
        return ['gc'];
      },
      check: async () => {
        const dry = (await reg.cli('gc', '--dry-run', '--json')).json();
        expect(dry).toMatchObject({ removed: [], staging: [], kept: 1 });
      },
    });
  });

});
