import { HpairError } from '../shared/errors.js';
import type { HermitianBlock } from './hermitian-result.js';
import type { HWindow } from './hermitian-tile-store.js';
import { blockEdge } from './hermitian-tiling.js';

/**
 * The geometry of a block of H (pool.hermitianBlock): which rows of expp it reads, where a row lands among
 * them, and which tiles of the smaller problem's triangle hold an entry of the block or of its mirror.
 */

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

/** The smallest edge a block's own tiles are cut to, to give every thread work (smaller ones pack too often). */
const MIN_OWN_TILE = 48;

/**
 * The tiles of a sub-problem's lower triangle (an n×n H) that hold an entry of the window or of its mirror, as a
 * shared list for the workers (four Int32 per tile: i0, i1, j0, j1). `edges` are the variant's tile edges
 * (HermitianVariant.tileEdges, the first its `tile`).
 *
 * With `anyOrigin` (a pair step that takes tiles anywhere), a window wholly on one side of the diagonal, or
 * on it as a square, is cut into tiles of its own, corner to corner: the job computes its own entries and no
 * others. Their edge is the one of `edges` whose tiles the threads finish first (kernel/hermitian-tiling.ts,
 * blockEdge), and when the window is small it shrinks (to MIN_OWN_TILE at least) until every thread has two
 * tiles. Otherwise the tiles are those of the whole triangle's grid of the first edge that the window touches.
 */
export function blockTiles(n: number, edges: readonly number[], window: HWindow, anyOrigin = false, threads = 1): Int32Array {
  const own = anyOrigin ? ownRectangles(window) : undefined;
  let tiles: number[];
  if (own === undefined) tiles = gridTiles(n, edges[0], window);
  else {
    const longest = Math.max(0, ...own.map(([i0, i1, j0, j1]) => Math.max(i1 - i0, j1 - j0)));
    let edge = blockEdge(edges, longest, threads, (e) => cutRectangles(own, e));
    tiles = cutRectangles(own, edge);
    while (tiles.length / 4 < 2 * threads && edge > MIN_OWN_TILE) {
      edge = Math.max(MIN_OWN_TILE, Math.ceil(edge / 2));
      tiles = cutRectangles(own, edge);
    }
  }
  const list = new Int32Array(new SharedArrayBuffer(4 * tiles.length));
  list.set(tiles);
  return list;
}

type Rectangle = readonly [number, number, number, number];

/**
 * The lower-triangle rectangles (rows i0..i1, columns j0..j1) that hold exactly the window's entries and its
 * mirror's: the window itself when it lies on or below the diagonal, its mirror when above, the window alone
 * when it is a square on the diagonal, two when its rows end on the diagonal; undefined when it straddles the
 * diagonal otherwise.
 */
function ownRectangles({ r0, c0, rows, cols }: HWindow): Rectangle[] | undefined {
  if (rows === 0 || cols === 0) return [];
  if (r0 === c0 && rows === cols) return [[r0, r0 + rows, c0, c0 + cols]];
  if (r0 >= c0 + cols - 1) return [[r0, r0 + rows, c0, c0 + cols]];
  if (c0 >= r0 + rows - 1) return [[c0, c0 + cols, r0, r0 + rows]];
  // Rows that end on the diagonal with every column left of it (an out-of-core job of several blocks whose
  // last is the diagonal one): the part left of the rows, and their square (its upper half is its mirror).
  if (c0 < r0 && r0 + rows === c0 + cols) {
    return [
      [r0, r0 + rows, c0, r0],
      [r0, r0 + rows, r0, r0 + rows],
    ];
  }
  return undefined;
}

/**
 * Each rectangle cut from its own corner into tiles of at most edge × edge, of near-equal sizes (a 286-row
 * block in two parts of 143, not 240 and 46, so that two threads finish together), keeping those with an entry
 * on or below the diagonal. A square on the diagonal is cut the same way along both sides.
 */
function cutRectangles(rectangles: readonly Rectangle[], edge: number): number[] {
  const cuts = (start: number, end: number): number[] => {
    const parts = Math.ceil((end - start) / edge);
    return Array.from({ length: parts + 1 }, (_, k) => start + Math.round(((end - start) * k) / parts));
  };
  const tiles: number[] = [];
  for (const [i0, i1, j0, j1] of rectangles) {
    const rows = cuts(i0, i1);
    const cols = cuts(j0, j1);
    for (let r = 0; r + 1 < rows.length; r++) {
      for (let c = 0; c + 1 < cols.length && cols[c] < rows[r + 1]; c++) tiles.push(rows[r], rows[r + 1], cols[c], cols[c + 1]);
    }
  }
  return tiles;
}

/** The tiles of the whole triangle's grid that hold an entry of the window or of its mirror. */
function gridTiles(n: number, tile: number, window: HWindow): number[] {
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
  return tiles;
}
