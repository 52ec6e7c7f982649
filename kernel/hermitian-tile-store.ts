import type { Tile } from '../shared/index-space.js';

/**
 * Writes a finished tile of the lower triangle into H and its mirror: H[i,j] from the tile,
 * H[j,i] = conj(H[i,j]), and a diagonal that is exactly real (as BLAS zherk leaves it). Every pair
 * kernel ends here, so Hermitian symmetry holds by construction, whatever the arithmetic.
 *
 * `acc` holds the tile interleaved (re, im), row-major with a row stride of `cols` complex values;
 * only entries with j ≤ i are read.
 */
export function storeTile(tile: Tile, acc: Float64Array, h: Float64Array, n: number, cols = tile.j1 - tile.j0): void {
  for (let i = tile.i0; i < tile.i1; i++) {
    const jEnd = Math.min(tile.j1, i + 1);
    const accRow = 2 * (i - tile.i0) * cols;
    for (let j = tile.j0; j < jEnd; j++) {
      const a = accRow + 2 * (j - tile.j0);
      const re = acc[a];
      const im = i === j ? 0 : acc[a + 1];
      h[2 * (i * n + j)] = re;
      h[2 * (i * n + j) + 1] = im;
      h[2 * (j * n + i)] = re;
      h[2 * (j * n + i) + 1] = -im;
    }
  }
}
