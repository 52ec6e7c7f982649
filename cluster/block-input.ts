// A worker reads only the rows of expp a block needs (its row range, its column range and the reference
// row N − 1) into one compact matrix, and computes the block on that: the same gathered problem that
// pool.hermitianBlock builds from the whole expp, so every entry has the same bits.
import type { HermitianBlock } from '../kernel/hermitian-result.js';
import { createComplexMatrix, type ComplexMatrix } from '../shared/complex-matrix.js';

/** What the worker needs of an expp reader: its shape and positioned reads of whole rows. */
export interface RowReader {
  readonly rows: number;
  readonly cols: number;
  /** Rows [r0, r1) into `out` (interleaved re, im), starting at row `at` of `out`. */
  readRows(r0: number, r1: number, out: Float64Array, at: number): Promise<unknown>;
}

/** Row ranges [a, b) of H (= of expp) that a block touches, ascending and merged (as the engine gathers them). */
export function blockRowRanges(block: HermitianBlock): Array<[number, number]> {
  const ranges = [block.rows, block.cols].filter(([a, b]) => b > a).map(([a, b]) => [a, b] as [number, number]);
  ranges.sort((p, q) => p[0] - q[0]);
  const merged: Array<[number, number]> = [];
  for (const [a, b] of ranges) {
    const last = merged[merged.length - 1];
    if (last !== undefined && a <= last[1]) last[1] = Math.max(last[1], b);
    else merged.push([a, b]);
  }
  return merged;
}

export interface CompactBlock {
  /** (rows the block touches + 1)×M: those rows in ascending order, then expp's last row. */
  expp: ComplexMatrix;
  /** The block in the compact matrix's coordinates. */
  block: HermitianBlock;
  /** expp's row for a row of the compact matrix (to name rows in error messages). */
  originalRow(row: number): number;
}

/** Reads the rows `block` of an (n + 1)-row expp needs; `n` is H's order. */
export async function readBlockRows(reader: RowReader, n: number, block: HermitianBlock): Promise<CompactBlock> {
  const ranges = blockRowRanges(block);
  const sub = ranges.reduce((total, [a, b]) => total + b - a, 0);
  const expp = createComplexMatrix(sub + 1, reader.cols);
  let at = 0;
  const reads: Array<Promise<unknown>> = [];
  for (const [a, b] of ranges) {
    reads.push(reader.readRows(a, b, expp.data, at));
    at += b - a;
  }
  reads.push(reader.readRows(n, n + 1, expp.data, sub));
  await Promise.all(reads);
  const compact = (row: number): number => {
    let before = 0;
    for (const [a, b] of ranges) {
      if (row < b) return before + Math.max(0, row - a);
      before += b - a;
    }
    return before;
  };
  const [i0, i1] = block.rows;
  const [j0, j1] = block.cols;
  const r0 = compact(i0);
  const c0 = compact(j0);
  return {
    expp,
    block: { rows: [r0, r0 + (i1 - i0)], cols: [c0, c0 + (j1 - j0)] },
    originalRow(row) {
      for (const [a, b] of ranges) {
        if (row < b - a) return a + row;
        row -= b - a;
      }
      return n;
    },
  };
}
