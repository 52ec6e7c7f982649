// piscina's cloning side: one task per tile, the points cloned into every task as a piscina user usually passes them,
// the tile's distances returned (structured clone copies them back) for the main thread to place.
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
