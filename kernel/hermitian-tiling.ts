import type { IndexSpace } from '../shared/index-space.js';
import type { Schedule } from '../shared/protocol.js';

/**
 * How the pair step cuts the whole H's lower triangle into tiles, so that every worker gets a fair share of
 * the work whatever the shape. A pair kernel's sums do not depend on where its tiles start or end, so this
 * decides speed only, never a result's bits.
 *
 * The uniform grid of the variant's tile edge is kept whenever it already balances. It does not for few rows
 * (a tall job: N = 256 under a 240-wide grid is one 240-row triangle holding nearly all the work, on one
 * worker). Then candidate cuts are costed and the one that finishes first on this pool's workers is taken:
 * - near-equal grids: the triangle cut into p × p near-equal parts;
 * - strips: rows cut into p horizontal strips of near-equal work, each strip reaching from column 0 to the
 *   diagonal, and cut into column pieces only where it is wider than the tile edge. A strip packs its columns
 *   once for all its rows, so strips repack less of expp than a grid of the same number of tiles.
 * A tile's cost is its entries plus PACK_WEIGHT per row it packs (its rows as A, its columns as B). The tiles go
 * to the workers largest first, which is also the order in which a dynamic pool claims them. A cut that gives
 * every worker a tile wins over one that finishes sooner by the costs, so that a job with a few micro-tiles per
 * worker runs on all of them.
 *
 * Splitting k across workers instead (each worker summing whole chunks of k into scratch, then one pass adding
 * the chunks in order) would repack nothing and keep the bits too, but it needs a scratch plane set per chunk
 * and a combination pass per chunk; the cuts
 * here balance a tall job without either (docs/performance.md, "Tall jobs").
 */

/**
 * Time of packing one row of expp for one k (a difference, for B a division, three stores, a row of expp that
 * is a page or more from the previous one) in entries' sums for one k. Fitted on the native paths with the
 * single-thread timing of tiles of different shapes at M = 65536 (a 128-row triangle against a 128 × 127
 * square, whose rows packed are the same but entries double). The WebAssembly and js kernels read panels packed
 * once per job, so for them it overstates a tile's overhead and only leans towards fewer, larger tiles among
 * cuts that balance. Only the choice between cuts depends on it, never a result.
 */
export const PACK_WEIGHT = 28;

/** A cut is kept only when it finishes this much sooner than the uniform grid: a small gain is not worth a list. */
const MIN_GAIN = 0.02;

/** Tiles per worker from which the uniform grid is kept without costing it. */
const MANY_PER_THREAD = 16;

/** Grids tried, from the fewest parts on: past a few more parts than the uniform grid's, tiles only shrink. */
const GRID_TRIES = 12;
/** Strips are tried for triangles up to this many tile edges high: beyond, near-equal grids balance as well. */
const STRIP_MAX_EDGES = 4;

/** Strip counts up to which each cut is also tried a few steps either way: past it, the schedule evens out more tiles. */
const SHIFTED_STRIPS = 4;

/** Plans kept for jobs of the same shape on the same pool (a list is read-only once made, so it is shared). */
const plans = new Map<string, TriangleTiling>();
const PLANS_KEPT = 32;

/** What the tiling needs to know of a variant. */
export interface TilingRules {
  /** The variant's tile edge: no tile is taller or wider (it sizes the variant's per-thread scratch). */
  readonly tile: number;
  /** Every cut between tiles is a multiple of this (the micro-tile's edge), so tiles start on its grid. */
  readonly step: number;
}

export interface TriangleTiling {
  readonly space: IndexSpace;
  /** How many tiles the space has. */
  readonly tiles: number;
}

type Tiles = number[];

/**
 * The tiles of the lower triangle of an n × n H for `threads` workers dealing them by `schedule`: the uniform
 * `triangle` space of rules.tile, or a `list` of tiles (largest first) when that finishes sooner.
 */
export function planTriangle(n: number, rules: TilingRules, threads: number, schedule: Schedule): TriangleTiling {
  const key = `${n} ${rules.tile} ${rules.step} ${threads} ${schedule}`;
  let plan = plans.get(key);
  if (plan === undefined) {
    plan = cutTriangle(n, rules, threads, schedule);
    if (plans.size >= PLANS_KEPT) plans.delete(plans.keys().next().value!);
    plans.set(key, plan);
  }
  return plan;
}

function cutTriangle(n: number, rules: TilingRules, threads: number, schedule: Schedule): TriangleTiling {
  const tile = Math.max(1, rules.tile);
  const step = Math.max(1, Math.min(rules.step, tile));
  const uniform: TriangleTiling = { space: { kind: 'triangle', n, tile }, tiles: gridSize(n, tile) };
  // Many tiles per worker balance by themselves.
  if (threads <= 1 || n <= step || uniform.tiles >= MANY_PER_THREAD * threads) return uniform;
  const base: Plan = { tiles: uniformTiles(n, tile), time: 0 };
  base.time = makespan(base.tiles, threads, schedule);
  let best: Plan | undefined;
  for (const tiles of candidates(n, tile, step, threads)) {
    const ordered = largestFirst(tiles);
    const plan = { tiles: ordered, time: makespan(ordered, threads, schedule) };
    if (best === undefined || better(plan, best, threads, 0)) best = plan;
  }
  if (best === undefined || !better(best, base, threads, MIN_GAIN)) return uniform;
  // A cut that misses an entry would leave it unwritten in H: the entries must add up to the triangle's, or
  // the uniform grid, which holds every entry by construction, is used.
  let entries = 0;
  for (let t = 0; t < best.tiles.length; t += 4) entries += lowerEntries(best.tiles[t], best.tiles[t + 1], best.tiles[t + 2], best.tiles[t + 3]);
  if (entries !== (n * (n + 1)) / 2) return uniform;
  const list = new Int32Array(new SharedArrayBuffer(4 * best.tiles.length));
  list.set(best.tiles);
  return { space: { kind: 'list', n, tile, list }, tiles: best.tiles.length / 4 };
}

/** Edges chosen for jobs of the same shape on the same number of threads. */
const edgesChosen = new Map<string, number>();

/**
 * The edge of the whole H's tiles among `edges` (increasing, the first the variant's tile): each larger edge is
 * taken when the cut planTriangle makes of it finishes more than MIN_GAIN sooner than the edge taken so far, by
 * the costs above (a tile packs its rows and columns once per k block, so larger tiles pack each row of expp
 * fewer times, while fewer tiles may leave a worker idle at the end). An edge is tried only when the triangle
 * holds a whole tile of it: a triangle under it (a tall job) is balanced by planTriangle's cuts of the smaller
 * edges. The tiles are costed as a dynamic pool deals them, whatever the pool's schedule, so that a
 * job's scratch, which grows with its edge, follows from its shape and thread count alone (hermitianJobBytes).
 * Only speed depends on it, never a result.
 */
export function triangleEdge(n: number, edges: readonly number[], step: number, threads: number): number {
  const key = `${n} ${edges.join(',')} ${step} ${threads}`;
  let edge = edgesChosen.get(key);
  if (edge === undefined) {
    edge = pickEdge(edges, n, (e) => triangleTime(n, e, step, threads));
    if (edgesChosen.size >= PLANS_KEPT) edgesChosen.delete(edgesChosen.keys().next().value!);
    edgesChosen.set(key, edge);
  }
  return edge;
}

/**
 * The edge of a block's own tiles (kernel/hermitian-block.ts) among `edges`, as triangleEdge chooses it: `cut`
 * cuts the block's rectangles into tiles of at most an edge; an edge is tried when some rectangle holds a
 * whole tile of it.
 */
export function blockEdge(edges: readonly number[], longest: number, threads: number, cut: (edge: number) => ArrayLike<number>): number {
  return pickEdge(edges, longest, (e) => makespan(cut(e), threads, 'dynamic'));
}

/** The rule both share: from the first of `edges`, each larger one up to `longest` replaces the edge taken so far
 * when its time is more than MIN_GAIN shorter. */
function pickEdge(edges: readonly number[], longest: number, timeOf: (edge: number) => number): number {
  let edge = edges[0] ?? 1;
  let time = timeOf(edge);
  for (const larger of edges.slice(1)) {
    if (larger > longest) break;
    const t = timeOf(larger);
    if (t < time * (1 - MIN_GAIN)) [edge, time] = [larger, t];
  }
  return edge;
}

/** The longest side of a space's tiles: what a thread's scratch is sized for. */
export function largestEdge(space: IndexSpace): number {
  if (space.kind === 'triangle') return Math.min(space.tile, space.n);
  if (space.kind !== 'list' || space.list === undefined) return space.tile;
  let edge = 0;
  for (let t = 0; t + 3 < space.list.length; t += 4) edge = Math.max(edge, space.list[t + 1] - space.list[t], space.list[t + 3] - space.list[t + 2]);
  return edge;
}

/**
 * When a dynamic pool's last worker finishes planTriangle's cut of edge `tile`. A grid of many tiles per worker
 * ends near the mean (the costs summed over the grid's rows of tiles, without listing its tiles).
 */
function triangleTime(n: number, tile: number, step: number, threads: number): number {
  const { space } = planTriangle(n, { tile, step }, threads, 'dynamic');
  if (space.list !== undefined) return makespan(space.list, threads, 'dynamic');
  const blocks = Math.ceil(n / tile);
  if ((blocks * (blocks + 1)) / 2 < MANY_PER_THREAD * threads) return makespan(uniformTiles(n, tile), threads, 'dynamic');
  // Block b's rows are packed by the b + 1 tiles of its row of tiles, and as columns by the blocks − b tiles below.
  let packed = 0;
  for (let b = 0; b < blocks; b++) packed += (blocks + 1) * (Math.min(n, (b + 1) * tile) - b * tile);
  return ((n * (n + 1)) / 2 + PACK_WEIGHT * packed) / threads;
}

interface Plan {
  readonly tiles: Tiles;
  time: number;
}

/**
 * Whether plan a beats plan b: a cut that gives every worker a tile comes first (even where packing would make
 * fewer tiles finish sooner), then the sooner finish by more than `gain` of b's time, then fewer tiles.
 */
function better(a: Plan, b: Plan, threads: number, gain: number): boolean {
  const spreads = (plan: Plan): boolean => plan.tiles.length / 4 >= threads;
  if (spreads(a) !== spreads(b)) return spreads(a);
  if (a.time !== b.time) return a.time < b.time * (1 - gain);
  return a.tiles.length < b.tiles.length;
}

function gridSize(n: number, tile: number): number {
  const blocks = Math.ceil(n / tile);
  return (blocks * (blocks + 1)) / 2;
}

/** The triangle space's tiles, in its order (row by row). */
function uniformTiles(n: number, tile: number): Tiles {
  const tiles: Tiles = [];
  for (let i0 = 0; i0 < n; i0 += tile) {
    for (let j0 = 0; j0 <= i0; j0 += tile) tiles.push(i0, Math.min(n, i0 + tile), j0, Math.min(n, j0 + tile));
  }
  return tiles;
}

/** Cuts [0, n) into `parts` pieces at multiples of `step` near `at(k)`, no piece longer than `longest`; undefined if it cannot. */
function cutsOf(n: number, parts: number, step: number, longest: number, at: (k: number) => number): number[] | undefined {
  const cuts = [0];
  for (let k = 1; k < parts; k++) {
    const cut = Math.round(at(k) / step) * step;
    if (cut <= cuts[cuts.length - 1] || cut >= n) return undefined;
    cuts.push(cut);
  }
  cuts.push(n);
  for (let k = 1; k < cuts.length; k++) if (cuts[k] - cuts[k - 1] > longest) return undefined;
  return cuts;
}

/** Fewest tiles a candidate may have: enough for every worker; most: a few per worker (past that no cut gains). */
function* candidates(n: number, tile: number, step: number, threads: number): Generator<Tiles> {
  const most = Math.max(8, 4 * threads);
  const maxParts = Math.floor(n / step);
  // Near-equal grids, from the fewest parts that fit the edge.
  const fewest = Math.ceil(n / tile);
  for (let parts = fewest; parts <= maxParts && parts < fewest + GRID_TRIES && (parts * (parts + 1)) / 2 <= most; parts++) {
    const cuts = cutsOf(n, parts, step, tile, (k) => (n * k) / parts);
    if (cuts === undefined) continue;
    const tiles: Tiles = [];
    for (let r = 0; r + 1 < cuts.length; r++) for (let c = 0; c <= r; c++) tiles.push(cuts[r], cuts[r + 1], cuts[c], cuts[c + 1]);
    yield tiles;
  }
  // Strips of near-equal entries (row i0 to i1 holds (i1² − i0²)/2 of them), each cut moved by a few steps
  // either way, since packing makes the strips near the diagonal dearer per entry than entries alone say.
  if (n > STRIP_MAX_EDGES * tile) return;
  for (let parts = 2; parts <= maxParts && parts <= most; parts++) {
    const shifts = parts <= SHIFTED_STRIPS ? 3 : 0;
    for (let shift = -shifts; shift <= shifts; shift++) {
      const cuts = cutsOf(n, parts, step, tile, (k) => n * Math.sqrt(k / parts) + shift * step);
      if (cuts === undefined) continue;
      const tiles: Tiles = [];
      for (let r = 0; r + 1 < cuts.length; r++) {
        const [i0, i1] = [cuts[r], cuts[r + 1]];
        const pieces = Math.ceil(i1 / tile);
        const columns = pieces === 1 ? [0, i1] : cutsOf(i1, pieces, step, tile, (k) => (i1 * k) / pieces);
        if (columns === undefined) break;
        for (let c = 0; c + 1 < columns.length; c++) tiles.push(i0, i1, columns[c], columns[c + 1]);
      }
      if (tiles.length / 4 <= most) yield tiles;
    }
  }
}

/** Entries with j ≤ i of a tile, plus what packing its rows and columns costs (0 for a tile with no such entry). */
export function cost(i0: number, i1: number, j0: number, j1: number): number {
  const entries = lowerEntries(i0, i1, j0, j1);
  return entries === 0 ? 0 : entries + PACK_WEIGHT * (i1 - Math.max(i0, j0) + Math.min(j1, i1) - j0);
}

/** Entries (i, j) of a tile with j ≤ i. */
function lowerEntries(i0: number, i1: number, j0: number, j1: number): number {
  const top = Math.max(i0, j0);
  if (top >= i1 || j0 >= j1) return 0;
  // Rows i < j1 hold i + 1 − j0 entries, the rows below them j1 − j0 each.
  const bend = Math.max(top, Math.min(i1, j1));
  return ((bend - top) * (top + 1 - j0 + bend - j0)) / 2 + (i1 - bend) * (j1 - j0);
}

/** The tiles sorted by cost, largest first (ties in their own order). */
function largestFirst(tiles: Tiles): Tiles {
  const order = Array.from({ length: tiles.length / 4 }, (_, t) => t);
  const costs = order.map((t) => cost(tiles[4 * t], tiles[4 * t + 1], tiles[4 * t + 2], tiles[4 * t + 3]));
  order.sort((a, b) => costs[b] - costs[a] || a - b);
  return order.flatMap((t) => tiles.slice(4 * t, 4 * t + 4));
}

/** When the last worker finishes, the tiles dealt in list order: strided (worker w: w, w + W, …) or to whoever is free first. */
function makespan(tiles: ArrayLike<number>, threads: number, schedule: Schedule): number {
  const count = tiles.length / 4;
  const at = (t: number): number => cost(tiles[4 * t], tiles[4 * t + 1], tiles[4 * t + 2], tiles[4 * t + 3]);
  if (schedule === 'strided') {
    const busy = new Float64Array(threads);
    for (let t = 0; t < count; t++) busy[t % threads] += at(t);
    return Math.max(...busy);
  }
  // A min-heap of the workers' busy times: the next tile goes to the one free first.
  const heap = new Float64Array(Math.min(threads, count));
  let last = 0;
  for (let t = 0; t < count; t++) {
    const done = heap[0] + at(t);
    last = Math.max(last, done);
    let x = 0;
    for (;;) {
      const l = 2 * x + 1, r = l + 1;
      let m = x;
      if (l < heap.length && heap[l] < (m === x ? done : heap[m])) m = l;
      if (r < heap.length && heap[r] < (m === x ? done : heap[m])) m = r;
      if (m === x) break;
      heap[x] = heap[m];
      x = m;
    }
    heap[x] = done;
  }
  return last;
}
