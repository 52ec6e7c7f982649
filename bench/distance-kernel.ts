// The distance-matrix kernel of docs/api.md, shared by hpair's and piscina's side of the comparison so
// both run the same arithmetic: Euclidean distances for the pairs j ≤ i of one tile.
import { defineKernel } from 'hpair';

/** Writes d(i, j) for i0 ≤ i < i1, j0 ≤ j < min(j1, i + 1) into out[(i − rowBase)·stride + (j − colBase)]. */
export function distanceBlock(
  points: Float64Array,
  dim: number,
  i0: number,
  i1: number,
  j0: number,
  j1: number,
  out: Float64Array,
  stride: number,
  rowBase: number,
  colBase: number,
): void {
  for (let i = i0; i < i1; i++) {
    for (let j = j0; j < Math.min(j1, i + 1); j++) {
      let sum = 0;
      for (let k = 0; k < dim; k++) sum += (points[i * dim + k] - points[j * dim + k]) ** 2;
      out[(i - rowBase) * stride + (j - colBase)] = Math.sqrt(sum);
    }
  }
}

/** Mirrors the lower triangle of the tile into the upper one. */
export function mirrorBlock(out: Float64Array, n: number, i0: number, i1: number, j0: number, j1: number): void {
  for (let i = i0; i < i1; i++) for (let j = j0; j < Math.min(j1, i); j++) out[j * n + i] = out[i * n + j];
}

export const distances = defineKernel<{ points: Float64Array; out: Float64Array }, { n: number; dim: number }>({
  tile({ i0, i1, j0, j1 }, { buffers: { points, out }, params: { n, dim } }) {
    distanceBlock(points, dim, i0, i1, j0, j1, out, n, 0, 0);
    mirrorBlock(out, n, i0, i1, j0, j1);
  },
});
