/**
 * A version that cannot load is retried every 30 s; the log says so once, not at each retry,
 * and again only when the reason changes or the version loads.
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
});
