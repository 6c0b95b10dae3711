/**
 * What a serving registry does to a running server between polls: a version that cannot load
 * is retried every 30 s and logged once per reason; a served ref that stops resolving keeps what
 * it served while every other model keeps reloading.
 */
import { describe, expect, it } from 'vitest';
import { MaasError } from '../../src/core/errors.js';
import { modelServing } from '../../src/inference/config.js';
import { ModelManager, type ServeEvent } from '../../src/inference/manager.js';
import { makeRegistry } from '../helpers/registry.js';

describe('load failures', () => {
  it('logs a refused version once across its retries, then its new reason, then its load', async () => {
    const reg = await makeRegistry();
    expect((await reg.cli('register', reg.fixture('mlp.onnx'))).exitCode).toBe(0);
    expect((await reg.cli('register', reg.fixture('multi_io.onnx'), '--name', 'other')).exitCode).toBe(0);
    let clock = 0;
    let refusal: string | undefined = 'mlp@1 is not signed';
    const events: ServeEvent[] = [];
    const manager = await ModelManager.open({
      registry: { cwd: reg.dir, env: reg.env },
      targets: [],
      serving: (name, config) => modelServing(name, config, {}),
      observer: () => ({}),
      log: (event) => events.push(event),
      admit: (_registry, record) => {
        if (record.name === 'mlp' && refusal) throw new MaasError('MAAS_VERIFY_FAILED', refusal);
      },
      now: () => clock,
    });
    try {
      const failures = () => events.filter((e) => e.event === 'load-failed').map((e) => (e as { error: string }).error);
      for (let retry = 0; retry < 4; retry++) {
        clock += 31_000;
        await manager.refresh({ initial: false });
      }
      expect(failures()).toEqual(['mlp@1 is not signed']);
      refusal = 'mlp@1 has no signature that verifies';
      clock += 31_000;
      await manager.refresh({ initial: false });
      expect(failures()).toEqual(['mlp@1 is not signed', 'mlp@1 has no signature that verifies']);
      refusal = undefined;
      clock += 31_000;
      await manager.refresh({ initial: false });
      expect(events.filter((e) => e.event === 'loaded').map((e) => (e as { model: string }).model)).toEqual(['other', 'mlp']);
    } finally {
      await manager.close();
    }
  });

  it('a served alias deleted keeps its version answering, and the other models still reload', async () => {
    const reg = await makeRegistry();
    expect((await reg.cli('register', reg.fixture('multi_io.onnx'), '--name', 'other', '--alias', 'prod')).exitCode).toBe(0);
    expect((await reg.cli('register', reg.fixture('mlp.onnx'))).exitCode).toBe(0);
    const events: ServeEvent[] = [];
    const manager = await ModelManager.open({
      registry: { cwd: reg.dir, env: reg.env },
      targets: [{ name: 'other', selector: { kind: 'alias', alias: 'prod' } }, { name: 'mlp' }],
      pins: [{ name: 'other', selector: { kind: 'alias', alias: 'prod' } }],
      serving: (name, config) => modelServing(name, config, {}),
      observer: () => ({}),
      log: (event) => events.push(event),
    });
    try {
      expect((await reg.cli('tag', 'other', 'prod', '--delete')).exitCode).toBe(0);
      expect((await reg.cli('register', reg.fixture('all_types.onnx'), '--name', 'mlp')).exitCode).toBe(0);
      await manager.refresh({ initial: false });
      await manager.refresh({ initial: false });
      expect(manager.route('mlp')?.defaultVersion).toBe(2);
      expect(manager.route('other')?.defaultVersion).toBe(1);
      const unresolved = events.filter((e) => e.event === 'target-unresolved');
      expect(unresolved).toEqual([expect.objectContaining({ target: 'other@prod', serving: [1], error: expect.stringContaining("no alias 'prod'") })]);
      // Removed from the registry while loaded, it goes on answering rather than going dark.
      expect((await reg.cli('rm', 'other@1', '--yes')).exitCode).toBe(0);
      await manager.refresh({ initial: false });
      expect(manager.route('other')?.defaultVersion).toBe(1);
      expect(events.filter((e) => e.event === 'target-unresolved')).toHaveLength(2);
    } finally {
      await manager.close();
    }
  });
});
