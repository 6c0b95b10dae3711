import { describe, expect, it } from 'vitest';
import { MaasError } from '../../src/core/errors.js';
import { assertModelName, parseRef, parseVersionRef, suggestName } from '../../src/registry/refs.js';

describe('model references', () => {
  it('parses name, name@version, name@alias and name@latest', () => {
    expect(parseRef('mlp')).toEqual({ name: 'mlp', selector: { kind: 'latest' } });
    expect(parseRef('mlp@2')).toEqual({ name: 'mlp', selector: { kind: 'version', version: 2 } });
    expect(parseRef('mlp@prod')).toEqual({ name: 'mlp', selector: { kind: 'alias', alias: 'prod' } });
    expect(parseRef('resnet-50.v2@latest')).toEqual({ name: 'resnet-50.v2', selector: { kind: 'latest' } });
    // A version's git tag names it too.
    expect(parseRef('mlp@v12')).toEqual({ name: 'mlp', selector: { kind: 'version', version: 12 } });
    expect(parseVersionRef('mlp@v2')).toEqual({ name: 'mlp', version: 2 });
  });

  it('rejects bad names, versions and aliases with a usage error', () => {
    for (const bad of ['Mlp', 'a b', '-x', 'mlp@0', 'mlp@-1', 'mlp@Prod', 'mlp@v0', '']) {
      expect(() => parseRef(bad), bad).toThrow(MaasError);
      try { parseRef(bad); } catch (e) { expect((e as MaasError).exitCode).toBe(2); }
    }
    expect(() => parseVersionRef('mlp@prod')).toThrow(/names no version/);
  });

  it('suggests a valid name from a file name', () => {
    expect(suggestName('My Model_v2.onnx')).toBe('my-model_v2');
    expect(suggestName('ResNet--50.ONNX')).toBe('resnet-50');
    // Never longer than a name may be, and never ending on a separator where the cut falls.
    const long = suggestName(`${'a'.repeat(127)}-${'b'.repeat(80)}.onnx`);
    expect(long).toBe('a'.repeat(127));
    expect(() => parseRef(long)).not.toThrow();
    // A name taken from a file is never cut silently: two long file names would share one model.
    expect(() => assertModelName(suggestName(`${'a'.repeat(200)}.onnx`, false))).toThrow(`'${'a'.repeat(40)}…' is 200 characters long; a model name has at most 128`);
  });
});
