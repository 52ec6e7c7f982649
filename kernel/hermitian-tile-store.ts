import { HpairError } from '../shared/errors.js';
import type { Tile } from '../shared/index-space.js';

/**
 * Where a job's H goes: rows [r0, r0 + rows) × columns [c0, c0 + cols) of H, row-major with a row stride
 * of `cols` complex values. The whole H is `{ r0: 0, c0: 0, rows: n, cols: n }`; a block of H
 * (pool.hermitianBlock) is any rectangle.
 */
export interface HWindow {
  readonly r0: number;
  readonly c0: number;
  readonly rows: number;
  readonly cols: number;
  /**
   * The caller's rows of this problem's rows when they are gathered (a block's: kernel/hermitian-block.ts), so that
   * an error names the caller's entry, not the gathered problem's. Absent: the same rows.
   */
  readonly callerRows?: RowRanges;
}

/** Half-open ranges of expp's rows, in increasing order. */
export type RowRanges = ReadonlyArray<readonly [number, number]>;

/** The caller's row of the job's row `row` (the job's rows are `rows`, gathered in order). */
export function originalRow(rows: RowRanges, row: number): number {
  for (const [a, b] of rows) {
    if (row < b - a) return a + row;
    row -= b - a;
  }
  return row;
}

/**
 * Writes a finished tile of the lower triangle into the window and its mirror: H[i,j] from the tile,
 * H[j,i] = conj(H[i,j]), and a diagonal that is exactly real (as BLAS zherk leaves it). Every pair
 * kernel ends here, so Hermitian symmetry holds by construction, whatever the arithmetic.
 *
 * `acc` holds the tile interleaved (re, im), row-major with a row stride of `accCols` complex values;
 * only entries with j ≤ i are read. Finite inputs can still overflow (|expp| ~ 1e200, a subnormal
 * distance): a non-finite entry fails the job with OVERFLOW rather than hand back an H of Infinities.
 */
export function storeTile(tile: Tile, acc: Float64Array, h: Float64Array, window: HWindow, accCols = tile.j1 - tile.j0): void {
  const { r0, c0, rows, cols } = window;
  const whole = r0 === 0 && c0 === 0 && rows === cols;
  let finite = true;
  for (let i = tile.i0; i < tile.i1; i++) {
    const jEnd = Math.min(tile.j1, i + 1);
    const accRow = 2 * (i - tile.i0) * accCols;
    const rowInside = i - r0 >= 0 && i - r0 < rows;
    const colInside = i - c0 >= 0 && i - c0 < cols;
    for (let j = tile.j0; j < jEnd; j++) {
      const a = accRow + 2 * (j - tile.j0);
      const re = acc[a];
      const im = i === j ? 0 : acc[a + 1];
      // x − x is 0 exactly when x is finite.
      finite &&= re - re === 0 && im - im === 0;
      if (whole || (rowInside && j - c0 >= 0 && j - c0 < cols)) {
        const at = 2 * ((i - r0) * cols + (j - c0));
        h[at] = re;
        h[at + 1] = im;
      }
      if (whole || (colInside && j - r0 >= 0 && j - r0 < rows)) {
        const at = 2 * ((j - r0) * cols + (i - c0));
        h[at] = re;
        h[at + 1] = -im;
      }
    }
  }
  if (!finite) throw overflowError(tile, acc, accCols, window);
}

/** Names the first entry of the tile that overflowed. */
export function overflowError(tile: Tile, acc: Float64Array, accCols: number, window: HWindow): HpairError {
  for (let i = tile.i0; i < tile.i1; i++) {
    for (let j = tile.j0; j < Math.min(tile.j1, i + 1); j++) {
      const a = 2 * (i - tile.i0) * accCols + 2 * (j - tile.j0);
      const im = i === j ? 0 : acc[a + 1];
      if (!(acc[a] - acc[a] === 0 && im - im === 0)) return hOverflow(i, j, acc[a], im, window);
    }
  }
  return hOverflow(tile.i0, tile.j0, NaN, NaN, window);
}

/**
 * OVERFLOW naming the entry (i, j) of the job's H as the caller's H[i, j] (window.callerRows), and its value when
 * known (a kernel that stores it elsewhere passes NaN, NaN).
 */
export function hOverflow(i: number, j: number, re: number, im: number, window: HWindow): HpairError {
  if (window.callerRows !== undefined) [i, j] = [originalRow(window.callerRows, i), originalRow(window.callerRows, j)];
  const value = Number.isNaN(re) && Number.isNaN(im) ? 'non-finite' : re - re === 0 ? String(im) : String(re);
  return new HpairError('OVERFLOW', `H[${i}, ${j}] came out ${value}: the sum overflowed (expp values too large, or a distance too small)`);
}
