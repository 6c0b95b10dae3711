import { describe, expect, it } from 'vitest';
import type { Signature } from '../../src/onnx/inspect.js';
import { diffSignatures } from '../../src/onnx/signature-diff.js';

const sig = (inputs: Signature['inputs'], outputs: Signature['outputs']): Signature => ({ inputs, outputs });
const x = (shape: (number | string | null)[], dtype = 'float32') => ({ name: 'x', dtype, shape });
const y = (shape: (number | string | null)[], dtype = 'float32') => ({ name: 'y', dtype, shape });

describe('diffSignatures', () => {
  it('finds nothing for identical signatures and for a renamed symbolic dim', () => {
    expect(diffSignatures(sig([x(['batch', 4])], [y(['batch', 3])]), sig([x(['batch', 4])], [y(['batch', 3])]))).toEqual([]);
    expect(diffSignatures(sig([x(['batch', 4])], []), sig([x(['N', 4])], []))).toEqual([]);
  });

  it('calls dtype, rank and fixed-size changes breaking', () => {
    const changes = diffSignatures(sig([x(['batch', 4])], [y(['batch', 3])]), sig([x(['batch', 4], 'float16')], [y(['batch', 3, 1])]));
    expect(changes.map((c) => [c.kind, c.breaking])).toEqual([['dtype', true], ['rank', true]]);
    expect(diffSignatures(sig([x([1, 4])], []), sig([x([1, 8])], []))[0]).toMatchObject({ kind: 'dim', breaking: true, before: '4', after: '8' });
  });

  it('names a dim change that comes with a dtype change of the same tensor, input and output', () => {
    const changes = diffSignatures(sig([x([1, 24, 96])], [y([1, 24, 96])]), sig([x([1, 25, 96], 'float16')], [y([1, 25, 96], 'float16')]));
    expect(changes.map((c) => c.message)).toEqual([
      "input 'x' dtype float32 → float16",
      "input 'x' dim 1: 24 → 25",
      "output 'y' dtype float32 → float16",
      "output 'y' dim 1: 24 → 25",
    ]);
    expect(changes.every((c) => c.breaking)).toBe(true);
    const rank = diffSignatures(sig([x([1, 4])], []), sig([x([1, 4, 1], 'int64')], []));
    expect(rank.map((c) => c.kind)).toEqual(['dtype', 'rank']);
  });

  it('lets an input accept more (fixed → dynamic) but not less', () => {
    expect(diffSignatures(sig([x([1, 4])], []), sig([x(['batch', 4])], []))[0]!.breaking).toBe(false);
    expect(diffSignatures(sig([x(['batch', 4])], []), sig([x([1, 4])], []))[0]!.breaking).toBe(true);
  });

  it('treats an output that loses a fixed size as breaking, and one that gains it as safe', () => {
    expect(diffSignatures(sig([], [y([1, 3])]), sig([], [y(['n', 3])]))[0]!.breaking).toBe(true);
    expect(diffSignatures(sig([], [y(['n', 3])]), sig([], [y([1, 3])]))[0]!.breaking).toBe(false);
  });

  it('breaks on a new or removed input and a removed output, not on a new output', () => {
    const before = sig([x([1])], [y([1])]);
    const after = sig([{ name: 'z', dtype: 'int64', shape: [1] }], [y([1]), { name: 'extra', dtype: 'bool', shape: [1] }]);
    const byName = Object.fromEntries(diffSignatures(before, after).map((c) => [`${c.io}:${c.name}:${c.kind}`, c.breaking]));
    expect(byName).toEqual({ 'input:x:removed': true, 'input:z:added': true, 'output:extra:added': false });
  });
});
