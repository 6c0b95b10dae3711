/** Plain text formatting shared by renderers: shapes, digests, tables (sizes: core/units.ts). */
import type { Dim } from '../onnx/model.js';

export function formatShape(shape: Dim[] | null): string {
  if (shape === null) return '(unknown shape)';
  return `[${shape.map((d) => (d === null ? '?' : String(d))).join(', ')}]`;
}

export function shortDigest(digest: string): string {
  return digest.replace(/^sha256:/, '').slice(0, 12);
}

/** Left-aligned columns separated by two spaces; ANSI-free widths are the caller's concern. */
export function table(rows: string[][], visibleLength: (s: string) => number = (s) => s.length): string {
  const widths: number[] = [];
  for (const row of rows) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, visibleLength(cell))));
  return rows
    .map((row) => row.map((cell, i) => (i === row.length - 1 ? cell : cell + ' '.repeat((widths[i] ?? 0) - visibleLength(cell)))).join('  '))
    .join('\n');
}
