import { defineCommand } from '../core/define-command.js';
import { MaasError } from '../core/errors.js';
import { table } from '../ui/format.js';
import { registryOptions } from './shared.js';

export const remoteCommand = defineCommand({
  name: 'remote',
  summary: 'name remotes in maas.yaml: remote add NAME URL | remote rm NAME | remote list',
  args: ['[action]', '[name]', '[url]'],
  examples: ['maas remote add prod oci://ghcr.io/acme/mlp', 'maas push mlp@2 prod', 'maas remote list --json'],
  async run([action = 'list', name, url], _opts, ctx) {
    const usage = 'maas remote add NAME URL | maas remote rm NAME | maas remote list';
    if (action !== 'add' && action !== 'rm' && action !== 'list') throw new MaasError('MAAS_USAGE', `'${action}' is not a remote command`, { hint: usage });
    const extra = action === 'list' ? name : action === 'rm' ? url : undefined;
    if (extra !== undefined) throw new MaasError('MAAS_USAGE', `maas remote ${action} takes ${action === 'list' ? 'no arguments' : 'only the NAME'}; '${extra}' is one too many`, { hint: usage });
    const named = await import('../remote/named.js');
    if (action === 'list') return named.listRemotes(registryOptions(ctx));
    if (!name?.trim()) throw new MaasError('MAAS_USAGE', `maas remote ${action} needs the remote's NAME${name === undefined ? '' : `, and '${name}' is blank`}`, { hint: usage });
    return named.changeRemote({ action, name, url }, registryOptions(ctx));
  },
  render: (r, t) => {
    const verb = r.changed?.action === 'rm' ? 'Removed' : r.changed?.previous ? 'Replaced' : 'Added';
    const head = r.changed ? t.success(`✔ ${verb} remote ${r.changed.name}${r.changed.previous ? ` (was ${r.changed.previous})` : ''}`) : '';
    const rows = Object.entries(r.remotes);
    const body = rows.length ? table(rows) : 'No named remotes. Add one with `maas remote add NAME oci://HOST/REPOSITORY`.';
    return [head, body].filter(Boolean).join('\n');
  },
});
