/**
 * kill -9 at seeded random points of every command that writes: each run is timed once, then
 * killed at offsets drawn over that span, alone or with its process group. After every kill
 * `maas verify` passes, the registry holds only whole versions, and a retry completes.
 */
import { createHash } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { largeMatmul, mlp, writeModel } from '../../fixtures/models.js';
import { HAVE_REGISTRY, REQUIRE_TOOLS, startOciRegistry } from '../helpers/oci-registry.js';
import { makeRegistry, type TestRegistry } from '../helpers/registry.js';
import { POINTS, SEED, expectWholeRegistry, killDuring, seeded, timedRun } from './harness.js';

const WEIGHTS = 4 << 20; // large enough that a run spends real time hashing and copying

interface Scenario {
  /** the command for point `i`, after whatever state it needs is made. */
  prepare: (i: number) => Promise<string[]>;
  /** exit codes a retry may end with (rm of a version the killed run already removed: 4). */
  retryExits?: number[];
  /** what must hold once the retry is done. */
  check: (i: number) => Promise<void> | void;
}

async function exerciseKills(reg: TestRegistry, salt: number, scenario: Scenario): Promise<void> {
  const random = seeded(SEED + salt);
  const span = await timedRun(reg, await scenario.prepare(0));
  await scenario.check(0);
  for (let i = 1; i <= POINTS; i++) {
    const args = await scenario.prepare(i);
    const at = Math.round(random() * span);
    const group = i % 2 === 0;
    await killDuring(reg, args, at, group);
    const where = `point ${i}: killed ${group ? 'group' : 'process'} at ${at} of ${span} ms`;
    const verify = await reg.cli('verify', '--json');
    expect(verify.exitCode, `${where}\n${verify.stdout}${verify.stderr}`).toBe(0);
    expectWholeRegistry(reg);
    const retry = await reg.cli(...args);
    expect(scenario.retryExits ?? [0], `${where}: retry\n${retry.stderr}`).toContain(retry.exitCode);
    expectWholeRegistry(reg);
    await scenario.check(i);
  }
}

const sha256 = (path: string) => `sha256:${createHash('sha256').update(readFileSync(path)).digest('hex')}`;
const versionsOf = (reg: TestRegistry, name: string) => readdirSync(join(reg.dir, 'models', name)).filter((d) => /^\d+$/.test(d)).map(Number);
const layerOf = (reg: TestRegistry, name: string, version: number) =>
  JSON.parse(readFileSync(join(reg.dir, 'models', name, String(version), 'manifest.json'), 'utf8')).layers[0].digest as string;

async function registerQuietly(reg: TestRegistry, file: string, name: string): Promise<number> {
  const r = await reg.cli('register', file, '--name', name, '--json');
  expect(r.exitCode, r.stderr).toBe(0);
  return r.json().version;
}

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

  describe('transfers', () => {
    async function source(): Promise<TestRegistry> {
      const reg = await makeRegistry();
      await registerQuietly(reg, writeModel(reg.work, 'big.onnx', largeMatmul(WEIGHTS, 7)), 'big');
      return reg;
    }
    /** Every blob in an OCI layout hashes to its name, and the index names the pushed tag. */
    const expectWholeLayout = (layout: string) => {
      const index = JSON.parse(readFileSync(join(layout, 'index.json'), 'utf8'));
      expect(index.manifests.map((m: { annotations?: Record<string, string> }) => m.annotations?.['org.opencontainers.image.ref.name'])).toContain('1');
      for (const hex of readdirSync(join(layout, 'blobs/sha256'))) expect(sha256(join(layout, 'blobs/sha256', hex))).toBe(`sha256:${hex}`);
    };

    it('push to an OCI layout: a retry leaves a whole layout', async () => {
      const reg = await source();
      await exerciseKills(reg, 5, {
        prepare: async (i) => ['push', 'big@1', `oci-layout:${join(reg.work, `layout${i}`)}`],
        check: (i) => expectWholeLayout(join(reg.work, `layout${i}`)),
      });
    });

    it.skipIf(!HAVE_REGISTRY && !REQUIRE_TOOLS)('push to docker-registry: a retry completes and the pushed version pulls back whole', async () => {
      const reg = await source();
      const oci = await startOciRegistry('none');
      const back = await makeRegistry();
      await exerciseKills(reg, 8, {
        prepare: async (i) => ['push', 'big@1', `oci://${oci.host}/team/big${i}`],
        check: async (i) => {
          const pulled = await back.cli('pull', `oci://${oci.host}/team/big${i}:1`, '--name', `back${i}`);
          expect(pulled.exitCode, pulled.stderr).toBe(0);
          expect(layerOf(back, `back${i}`, 1)).toBe(layerOf(reg, 'big', 1));
        },
      });
      expect((await back.cli('verify')).exitCode).toBe(0);
    });

    it('pull from an OCI layout: a retry imports the version whole', async () => {
      const from = await source();
      const layout = join(from.work, 'layout');
      expect((await from.cli('push', 'big@1', `oci-layout:${layout}`)).exitCode).toBe(0);
      const reg = await makeRegistry();
      await exerciseKills(reg, 6, {
        prepare: async (i) => ['pull', `oci-layout:${layout}:1`, '--name', `p${i}`],
        check: (i) => expect(layerOf(reg, `p${i}`, 1)).toBe(layerOf(from, 'big', 1)),
      });
    });

    it('import of a packed archive: a retry imports the version whole', async () => {
      const from = await source();
      const archive = join(from.work, 'big.tar');
      expect((await from.cli('pack', 'big@1', '-o', archive)).exitCode).toBe(0);
      const reg = await makeRegistry();
      await exerciseKills(reg, 7, {
        prepare: async (i) => ['import', archive, '--name', `i${i}`],
        check: (i) => expect(layerOf(reg, `i${i}`, 1)).toBe(layerOf(from, 'big', 1)),
      });
    });
  });
});
