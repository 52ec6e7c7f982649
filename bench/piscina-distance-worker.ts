// piscina's side: one task per tile, inputs cloned into every task as a piscina user passes them, the
// tile's distances returned (transferred) for the main thread to place.
import { distanceBlock } from './distance-kernel.js';

export interface DistanceTask {
  points: Float64Array;
  dim: number;
  i0: number;
  i1: number;
  j0: number;
  j1: number;
}

export default function distanceTile({ points, dim, i0, i1, j0, j1 }: DistanceTask): Float64Array {
  const out = new Float64Array((i1 - i0) * (j1 - j0));
  distanceBlock(points, dim, i0, i1, j0, j1, out, j1 - j0, i0, j0);
  return out;
}
