import { defineCommand, option } from '../core/define-command.js';
import { formatBytes } from '../core/units.js';
import { registryOptions } from './shared.js';

export const sbomCommand = defineCommand({
  name: 'sbom',
  summary: "a version's AI BOM: CycloneDX 1.6 JSON with its model card, file hashes and conversion lineage",
  args: ['<ref>'],
  options: {
    output: option.string('-o, --output <file>', 'write the BOM to this file instead of stdout'),
  },
  examples: ['maas sbom mlp@2', 'maas sbom mlp@prod -o mlp.cdx.json', 'maas sbom mlp@2 | jq .components[0].modelCard'],
  async run([ref], opts, ctx) {
    const { sbomOf } = await import('../trust/sbom.js');
    return sbomOf({ ref: ref!, output: opts.output }, registryOptions(ctx));
  },
  // The document is the output: the same JSON with or without --json. With -o, one line.
  render: (r, t) => ('bomFormat' in r ? JSON.stringify(r, null, 2) : t.success(`✔ Wrote the CycloneDX 1.6 BOM of ${r.ref} to ${r.output} (${formatBytes(r.bytes)})`)),
});
