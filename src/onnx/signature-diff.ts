/** Compares two IO signatures and names what would break a client of the old one. */
import type { Signature, TensorSpec } from './inspect.js';
import type { Dim } from './model.js';

export type Io = 'input' | 'output';

export interface SignatureChange {
  io: Io;
  name: string;
  kind: 'added' | 'removed' | 'dtype' | 'rank' | 'dim';
  before: string | undefined;
  after: string | undefined;
  breaking: boolean;
  message: string;
}

function shapeText(shape: Dim[] | null): string {
  return shape === null ? '?' : `[${shape.map((d) => (d === null ? '?' : String(d))).join(', ')}]`;
}

const isFixed = (d: Dim): d is number => typeof d === 'number';

/**
 * A dim change breaks an input when the new model accepts fewer shapes (a fixed size where
 * any was allowed), and an output when clients can no longer rely on a size they got before.
 */
function dimChange(io: Io, index: number, before: Dim, after: Dim, name: string): SignatureChange | undefined {
  if (before === after || (!isFixed(before) && !isFixed(after))) return undefined;
  const breaking = (isFixed(before) && isFixed(after)) || (io === 'input' ? isFixed(after) : isFixed(before));
  const [from, to] = [String(before ?? '?'), String(after ?? '?')];
  return { io, name, kind: 'dim', before: from, after: to, breaking, message: `${io} '${name}' dim ${index}: ${from} → ${to}` };
}

function compareSpec(io: Io, a: TensorSpec, b: TensorSpec): SignatureChange[] {
  // A dtype change does not end the comparison: a client must hear of a shape change with it.
  const dtype: SignatureChange[] = a.dtype === b.dtype ? [] : [{ io, name: a.name, kind: 'dtype', before: a.dtype, after: b.dtype, breaking: true, message: `${io} '${a.name}' dtype ${a.dtype} → ${b.dtype}` }];
  return [...dtype, ...compareShape(io, a, b)];
}

function compareShape(io: Io, a: TensorSpec, b: TensorSpec): SignatureChange[] {
  if (a.shape === null || b.shape === null) {
    if (a.shape === b.shape) return [];
    const breaking = io === 'input' ? b.shape !== null : a.shape !== null;
    return [{ io, name: a.name, kind: 'rank', before: shapeText(a.shape), after: shapeText(b.shape), breaking, message: `${io} '${a.name}' shape ${shapeText(a.shape)} → ${shapeText(b.shape)}` }];
  }
  if (a.shape.length !== b.shape.length) {
    return [{ io, name: a.name, kind: 'rank', before: shapeText(a.shape), after: shapeText(b.shape), breaking: true, message: `${io} '${a.name}' rank ${a.shape.length} → ${b.shape.length} (${shapeText(a.shape)} → ${shapeText(b.shape)})` }];
  }
  return a.shape.flatMap((d, i) => dimChange(io, i, d, b.shape![i]!, a.name) ?? []);
}

function compareList(io: Io, before: TensorSpec[], after: TensorSpec[]): SignatureChange[] {
  const changes: SignatureChange[] = [];
  const afterByName = new Map(after.map((s) => [s.name, s]));
  const beforeNames = new Set(before.map((s) => s.name));
  for (const spec of before) {
    const next = afterByName.get(spec.name);
    if (!next) {
      changes.push({ io, name: spec.name, kind: 'removed', before: `${spec.dtype} ${shapeText(spec.shape)}`, after: undefined, breaking: true, message: `${io} '${spec.name}' removed` });
    } else {
      changes.push(...compareSpec(io, spec, next));
    }
  }
  for (const spec of after) {
    if (beforeNames.has(spec.name)) continue;
    // A new input must be sent by every client; a new output is ignored by old ones.
    changes.push({ io, name: spec.name, kind: 'added', before: undefined, after: `${spec.dtype} ${shapeText(spec.shape)}`, breaking: io === 'input', message: `${io} '${spec.name}' added (${spec.dtype} ${shapeText(spec.shape)})` });
  }
  return changes;
}

export function diffSignatures(before: Signature, after: Signature): SignatureChange[] {
  return [...compareList('input', before.inputs, after.inputs), ...compareList('output', before.outputs, after.outputs)];
}
