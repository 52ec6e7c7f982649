import { HpairError } from './errors.js';

/**
 * The loop a kernel runs over, cut into tiles. Tile numbering depends only on the space (never on the
 * worker count), which is what makes results bit-identical for any number of workers.
 * - `range`: indices 0…n−1 in tiles of `tile` consecutive indices (`i0…i1`, with `j0 = 0, j1 = 1`).
 * - `triangle`: pairs (i, j) with j ≤ i < n, in `tile`×`tile` blocks (I, J), J ≤ I, numbered row by row.
 *   Diagonal blocks (I === J) cover pairs above the diagonal too; kernels skip j > i there.
 * - `square`: all pairs (i, j) of an n×n grid, in `tile`×`tile` blocks, numbered row by row.
 * - `list`: the tiles written in `list` (i0, i1, j0, j1 per tile, shared with the workers): any set of
 *   blocks, e.g. the part of a triangle that a rectangle of H needs.
 */
export interface IndexSpace {
  readonly kind: 'range' | 'triangle' | 'square' | 'list';
  readonly n: number;
  readonly tile: number;
  /** For `list`: four Int32 per tile over a SharedArrayBuffer. */
  readonly list?: Int32Array;
}

/** One tile: rows `i0 ≤ i < i1` and columns `j0 ≤ j < j1`. Reused between calls: copy what you keep. */
export interface Tile {
  index: number;
  i0: number;
  i1: number;
  j0: number;
  j1: number;
}

/** Checks a user's index space (the `list` kind is hpair's own). */
export function validateIndexSpace(space: IndexSpace): void {
  if (space.kind !== 'range' && space.kind !== 'triangle' && space.kind !== 'square') {
    throw new HpairError('INVALID_ARGUMENT', `index space kind must be 'range', 'triangle' or 'square'`);
  }
  if (!Number.isSafeInteger(space.n) || space.n < 0) {
    throw new HpairError('INVALID_ARGUMENT', `index space n must be a non-negative integer, got ${String(space.n)}`);
  }
  if (!Number.isSafeInteger(space.tile) || space.tile < 1) {
    throw new HpairError('INVALID_ARGUMENT', `index space tile must be a positive integer, got ${String(space.tile)}`);
  }
}

export function tileCount(space: IndexSpace): number {
  const blocks = Math.ceil(space.n / space.tile);
  switch (space.kind) {
    case 'range':
      return blocks;
    case 'triangle':
      return (blocks * (blocks + 1)) / 2;
    case 'square':
      return blocks * blocks;
    case 'list':
      return (space.list?.length ?? 0) / 4;
  }
}

/** Fills `out` with tile number `index` of `space`. No allocation: hot loops reuse one Tile. */
export function locateTile(space: IndexSpace, index: number, out: Tile): Tile {
  const { n, tile } = space;
  out.index = index;
  if (space.kind === 'list') {
    const list = space.list!;
    out.i0 = list[4 * index];
    out.i1 = list[4 * index + 1];
    out.j0 = list[4 * index + 2];
    out.j1 = list[4 * index + 3];
    return out;
  }
  if (space.kind === 'range') {
    out.i0 = index * tile;
    out.i1 = Math.min(n, out.i0 + tile);
    out.j0 = 0;
    out.j1 = 1;
    return out;
  }
  let blockRow: number;
  let blockCol: number;
  if (space.kind === 'square') {
    const blocks = Math.ceil(n / tile);
    blockRow = Math.floor(index / blocks);
    blockCol = index - blockRow * blocks;
  } else {
    blockRow = Math.floor((Math.sqrt(8 * index + 1) - 1) / 2);
    // Guard the square root's rounding at exact triangular numbers.
    while ((blockRow * (blockRow + 1)) / 2 > index) blockRow--;
    while (((blockRow + 1) * (blockRow + 2)) / 2 <= index) blockRow++;
    blockCol = index - (blockRow * (blockRow + 1)) / 2;
  }
  out.i0 = blockRow * tile;
  out.i1 = Math.min(n, out.i0 + tile);
  out.j0 = blockCol * tile;
  out.j1 = Math.min(n, out.j0 + tile);
  return out;
}

export function newTile(): Tile {
  return { index: 0, i0: 0, i1: 0, j0: 0, j1: 0 };
}

/** Every tile of a space, in tile-number order (a new object each): to see how a space is cut. */
export function tilesOf(space: IndexSpace): Tile[] {
  validateIndexSpace(space);
  return Array.from({ length: tileCount(space) }, (_, index) => locateTile(space, index, newTile()));
}
