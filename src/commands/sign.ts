import { defineCommand, option } from '../core/define-command.js';
import { MaasError } from '../core/errors.js';
import { renderSign } from '../ui/render/trust.js';
import { registryOptions } from './shared.js';

export const signCommand = defineCommand({
  name: 'sign',
  summary: 'sign a version in the OpenSSF model-signing format; the signature is stored beside it and pushed with it',
  args: ['<ref>'],
  options: {
    key: option.string('--key <file>', 'the PEM private key to sign with (ECDSA P-256/P-384; PKCS#8 or SEC1)', { defaultText: 'MAAS_SIGNING_KEY (a path or the PEM itself)' }),
    cert: option.string('--cert <file>', "the key's certificate (PEM): a certificate-chain signature instead of a bare-key one"),
    chain: option.list('--chain <file>', 'certificates above --cert, up to the root (repeatable)', (v) => v),
    output: option.string('-o, --output <file>', 'also write the signature here (model.sig)'),
  },
  examples: ['maas sign mlp@2 --key key.pem', 'MAAS_SIGNING_KEY="$KEY_PEM" maas sign mlp@prod -o model.sig --json', 'maas sign mlp@2 --key leaf.key --cert leaf.pem --chain intermediate.pem'],
  async run([ref], opts, ctx) {
    const { signVersion, signerFrom } = await import('../trust/sign.js');
    const signer = await signerFrom({ key: opts.key, cert: opts.cert, chain: opts.chain }, ctx.cwd, ctx.env);
    if (!signer) throw new MaasError('MAAS_USAGE', 'no key to sign with', { hint: 'Pass --key key.pem (make one with `maas keygen`), or set MAAS_SIGNING_KEY.' });
    return signVersion({ ref: ref!, signer, output: opts.output }, registryOptions(ctx));
  },
  render: renderSign,
});
