import { HpairError } from '../shared/errors.js';
import type { Tile } from '../shared/index-space.js';

/**
 * Writes a finished tile of the lower triangle into H and its mirror: H[i,j] from the tile,
 * H[j,i] = conj(H[i,j]), and a diagonal that is exactly real (as BLAS zherk leaves it). Every pair
 * kernel ends here, so Hermitian symmetry holds by construction, whatever the arithmetic.
 *
 * `acc` holds the tile interleaved (re, im), row-major with a row stride of `cols` complex values;
 * only entries with j ≤ i are read. Finite inputs can still overflow (|expp| ~ 1e200, a subnormal
 * distance): a non-finite entry fails the job with OVERFLOW rather than hand back an H of Infinities.
 */
export function storeTile(tile: Tile, acc: Float64Array, h: Float64Array, n: number, cols = tile.j1 - tile.j0): void {
  let finite = true;
  for (let i = tile.i0; i < tile.i1; i++) {
    const jEnd = Math.min(tile.j1, i + 1);
    const accRow = 2 * (i - tile.i0) * cols;
    for (let j = tile.j0; j < jEnd; j++) {
      const a = accRow + 2 * (j - tile.j0);
      const re = acc[a];
      const im = i === j ? 0 : acc[a + 1];
      // x − x is 0 exactly when x is finite.
      finite &&= re - re === 0 && im - im === 0;
      h[2 * (i * n + j)] = re;
      h[2 * (i * n + j) + 1] = im;
      h[2 * (j * n + i)] = re;
      h[2 * (j * n + i) + 1] = -im;
    }
  }
  if (!finite) throw overflowError(tile, acc, n, cols);
}

/** Names the first entry of the tile that overflowed. */
export function overflowError(tile: Tile, acc: Float64Array, n: number, cols: number): HpairError {
  for (let i = tile.i0; i < tile.i1; i++) {
    for (let j = tile.j0; j < Math.min(tile.j1, i + 1); j++) {
      const a = 2 * (i - tile.i0) * cols + 2 * (j - tile.j0);
      const im = i === j ? 0 : acc[a + 1];
      if (!(acc[a] - acc[a] === 0 && im - im === 0)) return hOverflow(i, j, acc[a], im, n);
    }
  }
  return hOverflow(tile.i0, tile.j0, NaN, NaN, n);
}

export function hOverflow(i: number, j: number, re: number, im: number, n: number): HpairError {
  return new HpairError(
    'OVERFLOW',
    `H[${i}, ${j}] of the ${n}×${n} H came out ${re - re === 0 ? String(im) : String(re)}: the sum overflowed (expp values too large, or a distance too small)`,
  );
}
