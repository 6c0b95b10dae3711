import { text } from 'node:stream/consumers';
import { defineCommand, option } from '../core/define-command.js';
import { MaasError } from '../core/errors.js';
import { plainHttpOption, registryOptions } from './shared.js';

export const loginCommand = defineCommand({
  name: 'login',
  summary: "check and store a registry's credentials in the docker config.json",
  args: ['<host>'],
  options: {
    username: option.string('-u, --username <user>', 'user name', { env: 'MAAS_REGISTRY_USERNAME' }),
    passwordStdin: option.flag('--password-stdin', 'read the password from stdin (keeps it out of shell history; else MAAS_REGISTRY_PASSWORD, else a prompt)'),
    plainHttp: plainHttpOption,
  },
  examples: ['echo "$TOKEN" | maas login ghcr.io -u me --password-stdin'],
  async run([host], opts, ctx) {
    const { username } = opts;
    if (!username) throw new MaasError('MAAS_USAGE', 'login needs --username', { hint: 'maas login HOST -u USER --password-stdin' });
    let password = ctx.env.MAAS_REGISTRY_PASSWORD;
    if (opts.passwordStdin) password = (await text(ctx.io.stdin)).replace(/\r?\n$/, '');
    else if (ctx.interactive) {
      const { createPrompter } = await import('../ui/prompts.js');
      password = await createPrompter(ctx.io).password(`Password for ${username}@${host}`);
    }
    if (!password) throw new MaasError('MAAS_USAGE', 'no password given', { hint: 'Pipe it in with --password-stdin, or set MAAS_REGISTRY_PASSWORD.' });
    const { login } = await import('../remote/transfer.js');
    return login({ host: host!, username, password, plainHttp: opts.plainHttp }, { ...registryOptions(ctx) });
  },
  render: (r, t) => t.success(`✔ Logged in to ${r.host} as ${r.username}; credentials stored in ${r.configPath}`),
});
