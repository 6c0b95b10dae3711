import { describe, expect, it } from 'vitest';
import { resolveRemoteName } from '../../src/remote/named.js';

describe('named remotes', () => {
  it('resolves a name and name:tag from maas.yaml, and leaves anything else as written', () => {
    const remotes = { prod: 'oci://ghcr.io/acme/mlp' };
    expect(resolveRemoteName('prod', remotes)).toBe('oci://ghcr.io/acme/mlp');
    expect(resolveRemoteName('prod:2', remotes)).toBe('oci://ghcr.io/acme/mlp:2');
    expect(resolveRemoteName('oci-layout:./x:1', remotes)).toBe('oci-layout:./x:1');
    const digest = `sha256:${'a'.repeat(64)}`;
    expect(resolveRemoteName(`prod@${digest}`, remotes)).toBe(`oci://ghcr.io/acme/mlp@${digest}`);
    expect(resolveRemoteName('ghcr.io/acme/mlp', remotes)).toBe('ghcr.io/acme/mlp'); // parseRemote says what is wrong with it
    expect(resolveRemoteName('docker://x/y', remotes)).toBe('docker://x/y');
  });

  it('says a word that is no reference names no remote, and which remotes there are (exit 4)', () => {
    for (const typo of ['prud', 'prud:2']) {
      expect(() => resolveRemoteName(typo, { prod: 'oci://ghcr.io/acme/mlp' })).toThrow(expect.objectContaining({ code: 'MAAS_REMOTE_NAME_NOT_FOUND', message: "no remote named 'prud'", hint: expect.stringContaining('Known: prod.') }));
    }
  });

  it('never takes a property every object has for a remote (constructor is a valid remote name)', () => {
    expect(() => resolveRemoteName('constructor', {})).toThrow("no remote named 'constructor'");
    expect(() => resolveRemoteName('constructor:1', {})).toThrow("no remote named 'constructor'");
    expect(resolveRemoteName('constructor', { constructor: 'oci-layout:./c' })).toBe('oci-layout:./c');
  });
});
