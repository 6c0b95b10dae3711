import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { defineCommand, option } from '../core/define-command.js';
import { MaasError } from '../core/errors.js';
import { CI_PROVIDERS, DEFAULT_DEVICE, DEVICES, type Device } from '../registry/config.js';
import { renderInit } from '../ui/render/registry.js';

export const initCommand = defineCommand({
  name: 'init',
  summary: 'create a model registry: a git repository (or a folder in one) with maas.yaml',
  args: ['[dir]'],
  options: {
    name: option.string('--name <name>', 'registry name', { defaultText: 'the folder name' }),
    device: option.choice('--device <device>', DEVICES, 'default device for maas serve', { defaultText: DEFAULT_DEVICE }),
    remote: option.string('--remote <remote>', 'default remote for maas push (oci://host/repo or oci-layout:PATH)'),
    ci: option.choice('--ci <provider>', CI_PROVIDERS, 'also write a CI workflow that registers and pushes'),
    monitoring: option.flag('--monitoring', 'also write a Prometheus scrape config, alert rules and a Grafana dashboard for maas serve under monitoring/'),
    force: option.flag('-f, --force', 'make a registry of a folder that already holds other files (a maas.yaml without git is kept)'),
  },
  examples: ['maas init', 'maas init . --force   # a folder that already holds files', 'maas init models --yes --device cuda --remote oci://ghcr.io/acme/models', 'maas init --ci github', 'maas init --monitoring   # Prometheus and Grafana files for maas serve'],
  async run([dir = '.'], opts, ctx) {
    const [{ initRegistry, defaultRegistryName, foreignEntries }, { CONFIG_FILE }] = await Promise.all([import('../registry/init.js'), import('../registry/layout.js')]);
    let name = opts.name ?? defaultRegistryName(`${ctx.cwd}/${dir}`);
    let device: Device = opts.device ?? DEFAULT_DEVICE;
    let remote = opts.remote ?? null;
    let { force } = opts;
    if (ctx.interactive) {
      const { createPrompter } = await import('../ui/prompts.js');
      const ask = createPrompter(ctx.io);
      const foreign = foreignEntries(resolve(ctx.cwd, dir));
      if (foreign.length && !force) {
        force = await ask.confirm(`${resolve(ctx.cwd, dir)} already holds ${foreign.length} other entr${foreign.length === 1 ? 'y' : 'ies'} (${foreign.slice(0, 3).join(', ')}${foreign.length > 3 ? ', ...' : ''}). Make a registry here anyway?`, false);
        if (!force) throw new MaasError('MAAS_CANCELLED', 'init cancelled; nothing was written', { hint: 'Choose an empty or new folder: maas init DIR.' });
      }
      // A maas.yaml that init keeps (one git does not hold yet) has its own answers.
      if (!existsSync(join(resolve(ctx.cwd, dir), CONFIG_FILE))) {
        if (opts.name === undefined) name = await ask.input('Registry name', name, (v) => (v.trim() ? true : 'A name is required'));
        if (opts.device === undefined) device = await ask.select('Default device for maas serve', DEVICES, device);
        if (opts.remote === undefined) remote = (await ask.input('Default remote for maas push (empty for none)', '')).trim() || null;
      }
    }
    if (remote !== null && !/^(oci:\/\/|oci-layout:)/.test(remote)) {
      throw new MaasError('MAAS_USAGE', `--remote '${remote}' is not a remote`, { hint: 'Use oci://host[:port]/repository or oci-layout:PATH.' });
    }
    // defaults.remote is a namespace: a tag there would be added to every version of every model pushed.
    const tag = remote === null ? undefined : (await import('../remote/ref.js')).parseRemote(remote).tag;
    if (tag !== undefined) {
      throw new MaasError('MAAS_USAGE', `--remote '${remote}' ends in a tag (:${tag}); the default remote is a namespace, each model pushed to NAMESPACE/NAME with its version tags`, { hint: `Leave the tag off: --remote ${remote!.slice(0, -tag.length - 1)}` });
    }
    return initRegistry({ dir, name, device, remote, ci: opts.ci, monitoring: opts.monitoring, force }, ctx);
  },
  render: renderInit,
});
