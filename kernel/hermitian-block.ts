import { HpairError } from '../shared/errors.js';
import type { HermitianBlock } from './hermitian-result.js';
import type { HWindow } from './hermitian-tile-store.js';

/**
 * The geometry of a block of H (pool.hermitianBlock): which rows of expp it reads, where a row lands among
 * them, and which tiles of the smaller problem's triangle hold an entry of the block or of its mirror.
 */

/** Half-open ranges of expp's rows, in increasing order. */
export type RowRanges = ReadonlyArray<readonly [number, number]>;

export function checkBlock(block: HermitianBlock, n: number): [[number, number], [number, number]] {
  if (typeof block !== 'object' || block === null) throw new HpairError('INVALID_ARGUMENT', 'the block must be { rows: [i0, i1], cols: [j0, j1] }');
  const ranges = (['rows', 'cols'] as const).map((key) => {
    const range = block[key];
    if (!Array.isArray(range) || range.length !== 2 || !range.every((v) => Number.isSafeInteger(v))) {
      throw new HpairError('INVALID_ARGUMENT', `block.${key} must be [start, end] of integers`);
    }
    const [a, b] = range as [number, number];
    if (!(0 <= a && a <= b && b <= n)) throw new HpairError('INVALID_ARGUMENT', `block.${key} [${a}, ${b}] must lie within [0, ${n}] (H is ${n}×${n})`);
    return [a, b] as [number, number];
  });
  return [ranges[0], ranges[1]];
}

/** The union of two half-open ranges as sorted, disjoint ranges (empty ones dropped). */
export function unionOf(x: readonly [number, number], y: readonly [number, number]): Array<[number, number]> {
  const ranges = [x, y].filter(([a, b]) => b > a).sort((p, q) => p[0] - q[0]);
  const merged: Array<[number, number]> = [];
  for (const [a, b] of ranges) {
    const last = merged[merged.length - 1];
    if (last !== undefined && a <= last[1]) last[1] = Math.max(last[1], b);
    else merged.push([a, b]);
  }
  return merged;
}

/** The caller's row of the job's row `row` (the job's rows are `rows`, gathered in order). */
export function originalRow(rows: RowRanges, row: number): number {
  for (const [a, b] of rows) {
    if (row < b - a) return a + row;
    row -= b - a;
  }
  return row;
}

/**
 * The tiles of a sub-problem's lower triangle (tile × tile blocks of an n×n H, as the whole-H triangle is
 * cut) that hold an entry of the window or of its mirror, as a shared list for the workers.
 */
export function blockTiles(n: number, tile: number, window: HWindow): Int32Array {
  const { r0, c0, rows, cols } = window;
  const needs = (a: number, b: number, c: number, d: number): boolean => {
    // Some (i, j) with i in [a, b), j in [c, d), j ≤ i, in the window — or whose mirror (j, i) is.
    const direct = Math.max(a, r0) < Math.min(b, r0 + rows) && Math.max(c, c0) < Math.min(d, c0 + cols) && Math.max(c, c0) <= Math.min(b, r0 + rows) - 1;
    const mirror = Math.max(a, c0) < Math.min(b, c0 + cols) && Math.max(c, r0) < Math.min(d, r0 + rows) && Math.max(c, r0) <= Math.min(b, c0 + cols) - 1;
    return direct || mirror;
  };
  const tiles: number[] = [];
  for (let a = 0; a < n; a += tile) {
    const b = Math.min(n, a + tile);
    for (let c = 0; c <= a; c += tile) {
      const d = Math.min(n, c + tile);
      if (needs(a, b, c, d)) tiles.push(a, b, c, d);
    }
  }
  const list = new Int32Array(new SharedArrayBuffer(4 * tiles.length));
  list.set(tiles);
  return list;
}
