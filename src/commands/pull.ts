import { defineCommand, option } from '../core/define-command.js';
import { renderTrustedPull } from '../ui/render/trust.js';
import { byteProgress, importAsOptions, plainHttpOption, registryOptions, requireSignatureOptions, signKeyOption } from './shared.js';

export const pullCommand = defineCommand({
  name: 'pull',
  summary: 'fetch a version from an OCI registry or layout, verifying every digest (and its signature when asked), into this registry',
  args: ['<remote>'],
  options: {
    ...importAsOptions,
    plainHttp: plainHttpOption,
    to: option.string('--to <dir>', "also write the version's files into this new folder, its signature beside them as model.sig"),
    ...requireSignatureOptions,
    signKey: signKeyOption,
  },
  examples: [
    'maas pull oci://ghcr.io/acme/mlp:2',
    'maas pull oci-layout:./export:2 --name mlp-copy',
    'maas pull oci://127.0.0.1:5000/team/mlp:2 --require-signature --key publisher.pub.pem --to ./mlp-2',
  ],
  async run([remote], opts, ctx) {
    const [{ pullTrusted }, { signerFrom }] = await Promise.all([import('../trust/attest.js'), import('../trust/sign.js')]);
    return pullTrusted(
      {
        remote: remote!, name: opts.name, version: opts.version, plainHttp: opts.plainHttp, onProgress: byteProgress(ctx), to: opts.to,
        trust: { requireSignature: opts.requireSignature, key: opts.key, trustedKeys: opts.trustedKeys, trustedCa: opts.trustedCa },
        signer: await signerFrom({ key: opts.signKey }, ctx.cwd, ctx.env),
      },
      registryOptions(ctx),
    );
  },
  render: renderTrustedPull,
});
