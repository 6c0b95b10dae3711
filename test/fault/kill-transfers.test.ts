/**
 * kill -9 at seeded points of the commands that move versions in and out: push (to an OCI
 * layout and to docker-registry), pull and import. After every kill `maas verify` passes and
 * a retry completes with the version whole at its destination.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { largeMatmul, writeModel } from '../../fixtures/models.js';
import { HAVE_REGISTRY, REQUIRE_TOOLS, startOciRegistry } from '../helpers/oci-registry.js';
import { makeRegistry, type TestRegistry } from '../helpers/registry.js';
import { POINTS, SEED, WEIGHTS, exerciseKills, layerOf, registerQuietly, sha256 } from './harness.js';

describe(`kill -9 at ${POINTS} seeded points of each transfer (seed ${SEED})`, { timeout: 240_000 }, () => {
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
