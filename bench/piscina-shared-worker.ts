// piscina's fair side: one task per worker per job, the points and the output handed over as
// SharedArrayBuffer-backed arrays (structured clone shares them, nothing is copied), each task computing a
// share of the tiles straight into the shared output, with the mirror, as hpair's kernel does. The share is
// either strided (task w takes tiles w, w + W, …) or claimed dynamically from a shared Atomics counter (the
// way hpair deals tiles by default).
import { tilesOf } from 'hpair';
import { distanceBlock, mirrorBlock } from './distance-kernel.js';

export interface SharedDistanceTask {
  points: Float64Array;
  out: Float64Array;
  n: number;
  dim: number;
  tile: number;
  part: number;
  parts: number;
  /** When given, tiles are claimed with Atomics.add on counter[0] instead of taken by stride. */
  counter?: Int32Array;
}

const spaces = new Map<string, ReturnType<typeof tilesOf>>();

export default function distanceShare({ points, out, n, dim, tile, part, parts, counter }: SharedDistanceTask): number {
  const key = `${n}/${tile}`;
  let tiles = spaces.get(key);
  if (tiles === undefined) spaces.set(key, (tiles = tilesOf({ kind: 'triangle', n, tile })));
  let done = 0;
  const one = (t: number): void => {
    const { i0, i1, j0, j1 } = tiles[t];
    distanceBlock(points, dim, i0, i1, j0, j1, out, n, 0, 0);
    mirrorBlock(out, n, i0, i1, j0, j1);
    done++;
  };
  if (counter === undefined) for (let t = part; t < tiles.length; t += parts) one(t);
  else for (let t = Atomics.add(counter, 0, 1); t < tiles.length; t = Atomics.add(counter, 0, 1)) one(t);
  return done;
}
