import { describe, expect, it } from 'vitest';
import { resolveRemoteName } from '../../src/remote/named.js';

describe('named remotes', () => {
  it('resolves a name and name:tag from maas.yaml, and leaves anything else as written', () => {
    const remotes = { prod: 'oci://ghcr.io/acme/mlp' };
    expect(resolveRemoteName('prod', remotes)).toBe('oci://ghcr.io/acme/mlp');
    expect(resolveRemoteName('prod:2', remotes)).toBe('oci://ghcr.io/acme/mlp:2');
    expect(resolveRemoteName('oci-layout:./x:1', remotes)).toBe('oci-layout:./x:1');
  });

  it('never takes a property every object has for a remote (constructor is a valid remote name)', () => {
    expect(resolveRemoteName('constructor', {})).toBe('constructor');
    expect(resolveRemoteName('constructor:1', {})).toBe('constructor:1');
    expect(resolveRemoteName('constructor', { constructor: 'oci-layout:./c' })).toBe('oci-layout:./c');
  });
});
