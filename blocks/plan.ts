import type { Accuracy, KernelVariant } from '../kernel/kernel-names.js';
import { WASM_MAX_BYTES } from '../kernel/variant-wasm.js';
import { fallbackAfter, variantNamed } from '../kernel/variants.js';
import { HpairError } from '../shared/errors.js';
import { MIRROR_STAGE_BYTES } from '../io/npy-output.js';

/**
 * How H is cut into blocks, and how big a block may be for a memory budget.
 *
 * H is n×n (n = N − 1) and Hermitian, so only blocks on or below the diagonal are computed; each is written
 * with its mirror. Blocks are blockSize squares of a regular grid (the last row and column of blocks are
 * narrower when blockSize does not divide n).
 */

export interface Block {
  /** 0 … count − 1, in the plan's fixed order. */
  readonly id: number;
  /** Rows [i0, i1) of H. */
  readonly rows: readonly [number, number];
  /** Columns [j0, j1) of H; j1 ≤ i0 below the diagonal, or the same range as rows on it. */
  readonly cols: readonly [number, number];
}

export interface BlockPlan {
  readonly n: number;
  readonly blockSize: number;
  readonly blocks: readonly Block[];
}

/**
 * The lower-triangle blocks (I ≥ J) of an n×n H in blockSize squares. Ids run row of blocks by row of blocks,
 * left to right, diagonal block last: (0,0), (1,0), (1,1), (2,0), … — consecutive blocks share their rows,
 * which a driver reads once per row of blocks. The same (n, blockSize) always gives the same plan.
 */
export function planBlocks(n: number, blockSize: number): BlockPlan {
  if (!Number.isSafeInteger(n) || n < 0) throw new HpairError('INVALID_ARGUMENT', `n must be a non-negative integer, got ${String(n)}`);
  if (!Number.isSafeInteger(blockSize) || blockSize < 1) throw new HpairError('INVALID_ARGUMENT', `blockSize must be a positive integer, got ${String(blockSize)}`);
  const count = Math.ceil(n / blockSize);
  const blocks: Block[] = [];
  for (let I = 0; I < count; I++) {
    const rows: [number, number] = [I * blockSize, Math.min(n, (I + 1) * blockSize)];
    for (let J = 0; J <= I; J++) {
      blocks.push({ id: blocks.length, rows, cols: [J * blockSize, Math.min(n, (J + 1) * blockSize)] });
    }
  }
  return { n, blockSize, blocks };
}

/** Entries of the lower triangle (diagonal included) a block holds: its share of the work. */
export function blockPairs(block: Block): number {
  const bi = block.rows[1] - block.rows[0];
  const bj = block.cols[1] - block.cols[0];
  return block.rows[0] === block.cols[0] ? (bi * (bi + 1)) / 2 : bi * bj;
}

/**
 * What block sizes should be multiples of so that they waste no work: the tile edge of the kernel's pair step,
 * or 1 for a kernel that cuts a block into tiles of its own (the native ones: HermitianVariant.anyOrigin).
 */
export function kernelTile(kernel: KernelVariant): number {
  const variant = variantNamed(kernel);
  return variant.anyOrigin ? 1 : variant.tile;
}

export interface BlockCostOptions {
  /**
   * The kernel the pool runs (its scratch counts towards a block's job).
   * @default 'wasm-simd'
   */
  kernel?: KernelVariant;
  /** Threads of the pool (per-thread scratch). @default 2 */
  threads?: number;
  /** The pool's accuracy (compensated scratch is larger). @default 'default' */
  accuracy?: Accuracy;
}

/**
 * How computeToNpy runs a plan: the blocks' edge, how many blocks of one row of blocks one job computes side by
 * side (a job of one 128 × 128 tile would leave all workers but one idle), and whether the next job's rows are
 * read while a job computes (two row buffers instead of one).
 */
export interface JobShape {
  readonly blockSize: number;
  readonly group: number;
  readonly prefetch: boolean;
}

/**
 * What one job of a plan costs in memory while computeToNpy runs it, by part. A job reads
 * R = min(b + group·b, n) + 1 rows of expp: its blocks' rows, their columns' rows, and the reference row N − 1.
 */
export interface BlockMemory {
  /** The R rows, twice when the next job's rows are read ahead. */
  readonly rows: number;
  /** The kernel's scratch for R rows (packed panels for the wasm and js kernels; per-thread packs for native). */
  readonly scratch: number;
  /** Two results (one computed while the other is written) and the mirror's staging strip. */
  readonly h: number;
  /** distance, the reference row and the reader's staging buffer. */
  readonly other: number;
  readonly total: number;
}

/** Staging buffer of the expp reader (io/npy-file.ts) when a conversion is needed. */
export const READ_STAGE_BYTES = 1 << 20;
/** Most blocks one job computes side by side. */
const MAX_GROUP = 8;

export function jobMemory(N: number, M: number, shape: JobShape, options: BlockCostOptions = {}): BlockMemory {
  const { kernel = 'wasm-simd', threads = 2, accuracy = 'default' } = options;
  const n = Math.max(0, N - 1);
  const b = Math.max(1, Math.min(shape.blockSize, n));
  const width = Math.min(shape.group * b, n);
  const R = Math.min(b + width, n) + 1;
  const rowBytes = 16 * R * M;
  let variant = variantNamed(kernel);
  const fits = (candidate: typeof variant): boolean => candidate.scratchBytes(R, M, threads, undefined, accuracy).wasm <= WASM_MAX_BYTES;
  if (!fits(variant)) variant = fallbackAfter(variant, fits) ?? variantNamed('js');
  // A native job's tiles are cut from its own block (kernel/hermitian-block.ts): none is longer than the block's
  // longest side, nor than the variant's largest tile edge (the job may take a smaller one: this bounds it).
  const edges = variant.tileEdges(M, accuracy);
  const s = variant.scratchBytes(R, M, threads, variant.anyOrigin ? Math.min(Math.max(b, width), edges[edges.length - 1]) : undefined, accuracy);
  const h = 2 * 16 * b * width + Math.min(MIRROR_STAGE_BYTES, 16 * b * width);
  const other = 8 * M + 16 * M + READ_STAGE_BYTES;
  // The pool reads the R rows in place (they are the job's whole, shared input): no copy of them.
  const parts = { rows: (shape.prefetch ? 2 : 1) * rowBytes, scratch: s.wasm + s.shared + s.native, h, other };
  return { ...parts, total: parts.rows + parts.scratch + parts.h + parts.other };
}

/** The memory of a job of one block with its rows read ahead: what chooseBlockSize fits to the budget. */
export function blockMemory(N: number, M: number, blockSize: number, options: BlockCostOptions = {}): BlockMemory {
  return jobMemory(N, M, { blockSize, group: 1, prefetch: true }, options);
}

function checkSizes(N: number, M: number, maxMemoryBytes: number, tile: number): void {
  for (const [name, value] of [['N', N], ['M', M]] as const) {
    if (!Number.isSafeInteger(value) || value < 1) throw new HpairError('INVALID_ARGUMENT', `${name} must be a positive integer, got ${String(value)}`);
  }
  if (!(typeof maxMemoryBytes === 'number' && maxMemoryBytes > 0)) throw new HpairError('INVALID_ARGUMENT', `maxMemoryBytes must be a positive number, got ${String(maxMemoryBytes)}`);
  if (!Number.isSafeInteger(tile) || tile < 1) throw new HpairError('INVALID_ARGUMENT', `tile must be a positive integer, got ${String(tile)}`);
}

/**
 * The largest b for which `fits(b)` holds (fits grows harder with b): n when the whole H fits in one block,
 * else a multiple of `tile`, else (not even one tile fits) the largest smaller b; 0 when not even b = 1 fits.
 */
function largestFitting(n: number, tile: number, fits: (b: number) => boolean): number {
  if (fits(n)) return n;
  let low = 0;
  let high = Math.floor((n - 1) / tile);
  while (low < high) {
    const mid = Math.ceil((low + high) / 2);
    if (fits(mid * tile)) low = mid;
    else high = mid - 1;
  }
  if (low > 0) return low * tile;
  let small = 0;
  let top = Math.min(tile, n) - 1;
  while (small < top) {
    const mid = Math.ceil((small + top) / 2);
    if (fits(mid)) small = mid;
    else top = mid - 1;
  }
  return small;
}

/**
 * The most bytes one typed array handed to a worker may span. Structured clone (postMessage) writes a view's
 * byteOffset and byteLength as 32-bit numbers, so a view past 4 GiB arrives in the worker cut short: a kernel
 * then refuses it, or, writing through it, silently skips the entries past the cut. Every buffer a job of the
 * plan hands to the pool (its rows, its H, the kernel's shared panels) stays within this, and within the
 * 2^32 elements of one typed array (MAX_TYPED_ARRAY_LENGTH) that it implies.
 */
export const MAX_WORKER_VIEW_BYTES = 2 ** 32 - 1;

/** One buffer of a job, as the planner sizes it (bytes), and the most it may be. */
export interface JobBuffer {
  readonly name: 'rows' | 'h' | 'panels' | 'wasm memory';
  readonly bytes: number;
  readonly limit: number;
}

/**
 * The buffers one job of this shape hands to the pool, with their limits: the row buffer (R rows of expp,
 * R = min(b + group·b, n) + 1), the H buffer (b × group·b), the kernel's shared panels, and, for a
 * WebAssembly kernel, its memory (a job that does not fit it would fall back to a slower kernel, which the
 * driver refuses). A shape is runnable only when every one is within its limit.
 */
export function jobBuffers(N: number, M: number, shape: JobShape, options: BlockCostOptions = {}): JobBuffer[] {
  const { kernel = 'wasm-simd', threads = 2 } = options;
  const n = Math.max(0, N - 1);
  const b = Math.max(1, Math.min(shape.blockSize, n));
  const width = Math.min(shape.group * b, n);
  const R = Math.min(b + width, n) + 1;
  // As the engine sizes the job's scratch: for its R rows, the variant's own tile.
  const scratch = variantNamed(kernel).scratchBytes(R, M, threads);
  return [
    { name: 'rows', bytes: 16 * R * M, limit: MAX_WORKER_VIEW_BYTES },
    { name: 'h', bytes: 16 * b * width, limit: MAX_WORKER_VIEW_BYTES },
    { name: 'panels', bytes: scratch.shared, limit: MAX_WORKER_VIEW_BYTES },
    { name: 'wasm memory', bytes: scratch.wasm, limit: WASM_MAX_BYTES },
  ];
}

function withinLimits(N: number, M: number, shape: JobShape, options: BlockCostOptions): boolean {
  return jobBuffers(N, M, shape, options).every((buffer) => buffer.bytes <= buffer.limit);
}

/**
 * The largest block size whose job (one block, its rows read ahead: blockMemory().total) fits
 * `maxMemoryBytes`: a multiple of `tile` (the kernel's tile edge, so blocks waste no work), or n itself when
 * the whole H fits in one block. When not even one tile fits, the largest smaller size that does (correct, but
 * each block then wastes part of a tile). Throws TOO_LARGE when not even a 1×1 block fits, naming the least
 * budget that would.
 */
export function chooseBlockSize(N: number, M: number, maxMemoryBytes: number, tile: number, options: BlockCostOptions = {}): number {
  checkSizes(N, M, maxMemoryBytes, tile);
  const n = N - 1;
  if (n <= 1) return 1;
  const b = largestFitting(n, tile, (size) => {
    const shape = { blockSize: size, group: 1, prefetch: true };
    return withinLimits(N, M, shape, options) && jobMemory(N, M, shape, options).total <= maxMemoryBytes;
  });
  if (b > 0) return b;
  throw tooSmall(N, M, maxMemoryBytes, options);
}

/** TOO_LARGE naming the first buffer of this shape past its limit, or undefined when all are within. */
function overLimit(N: number, M: number, shape: JobShape, options: BlockCostOptions): HpairError | undefined {
  const over = jobBuffers(N, M, shape, options).find((buffer) => buffer.bytes > buffer.limit);
  if (over === undefined) return undefined;
  const what = over.name === 'wasm memory' ? `the ${options.kernel ?? 'wasm-simd'} kernel's memory` : `its ${over.name} buffer`;
  return new HpairError(
    'TOO_LARGE',
    `a job of blocks of ${shape.blockSize} rows at M = ${M} cannot run: ${what} would take ${formatBytes(over.bytes)}, past the ${formatBytes(over.limit)} one buffer may span`,
  );
}

function tooSmall(N: number, M: number, maxMemoryBytes: number, options: BlockCostOptions): HpairError {
  const smallest = { blockSize: 1, group: 1, prefetch: false };
  const limit = overLimit(N, M, smallest, options);
  if (limit !== undefined) return limit;
  const least = jobMemory(N, M, smallest, options).total;
  return new HpairError('TOO_LARGE', `a memory budget of ${formatBytes(maxMemoryBytes)} cannot hold even a 1×1 block at M = ${M} (it needs ${formatBytes(least)})`);
}

/**
 * Rough costs, in the time one worker of a WebAssembly kernel takes for one pair (all scale with M, so these do
 * not): packing a job's row, and reading one from the page cache. A native pair takes about a third of that
 * time, so rows cost it three times as many pairs. Measured orders of magnitude on 2-core Zen 3 and Zen 4 hosts;
 * they only rank job shapes against each other.
 */
const ROW_COST = 10;
const READ_COST = 24;
const NATIVE_PAIR_SPEEDUP = 3;

/** The (count, area) of the tiles a job of rows [width, sub) × columns [0, width) computes. */
function jobTiles(width: number, sub: number, tile: number, anyOrigin: boolean, threads: number): { tiles: number; area: number } {
  const b = sub - width;
  if (anyOrigin) {
    // Its own tiles (kernel/hermitian-block.ts): exactly its entries, the edge halved until each thread has two.
    let edge = tile;
    const count = (e: number): number => Math.ceil(b / e) * Math.ceil(width / e);
    while (count(edge) < 2 * threads && edge > 48) edge = Math.max(48, Math.ceil(edge / 2));
    return { tiles: count(edge), area: b * width };
  }
  // The tiles of the job's own (sub × sub) H grid that its rectangle touches.
  let tiles = 0;
  let area = 0;
  for (let a = Math.floor(width / tile) * tile; a < sub; a += tile) {
    for (let c = 0; c < width && c <= a; c += tile) {
      const h = Math.min(sub, a + tile) - a;
      const w = Math.min(sub, c + tile) - c;
      tiles++;
      area += a === c ? (h * (h + 1)) / 2 : h * w;
    }
  }
  return { tiles, area };
}

/** Pairs per unit of time (one worker's pair = 1) of a job of `group` blocks of b below the diagonal. */
function throughput(n: number, shape: JobShape, kernel: KernelVariant, threads: number): number {
  const b = Math.min(shape.blockSize, n);
  if (b >= n) return Number.POSITIVE_INFINITY; // the whole H in one job
  const width = Math.min(shape.group * b, n - b);
  const sub = width + b;
  const variant = variantNamed(kernel);
  const { tiles, area } = jobTiles(width, sub, variant.tile, variant.anyOrigin, threads);
  const rounds = Math.ceil(tiles / threads);
  const rowCost = kernel.startsWith('native') ? NATIVE_PAIR_SPEEDUP : 1;
  const time = (area / tiles) * rounds + rowCost * (ROW_COST * (sub + 1) + READ_COST * (shape.prefetch ? 0.5 : 1) * width);
  return (b * width) / time;
}

/**
 * How computeToNpy runs H within `maxMemoryBytes`: for each way of running jobs (one to MAX_GROUP blocks side
 * by side, rows read ahead or not) the largest block size that fits, then the one a rough model of time per
 * pair ranks first (whole tiles for every worker, few rows per pair, reads hidden behind compute). With
 * `options.blockSize` the block size is fixed and only the group and the read-ahead are chosen.
 * Throws TOO_LARGE when nothing fits.
 */
export function chooseJobShape(N: number, M: number, maxMemoryBytes: number, tile: number, options: BlockCostOptions & { blockSize?: number } = {}): JobShape {
  checkSizes(N, M, maxMemoryBytes, tile);
  const n = N - 1;
  const threads = options.threads ?? 2;
  const fixed = options.blockSize;
  if (n <= 1) return { blockSize: fixed ?? 1, group: 1, prefetch: false };
  let best: { shape: JobShape; score: number } | undefined;
  for (const prefetch of [true, false]) {
    for (let group = 1; group <= MAX_GROUP; group++) {
      const fits = (blockSize: number): boolean => {
        const shape = { blockSize, group, prefetch };
        return withinLimits(N, M, shape, options) && jobMemory(N, M, shape, options).total <= maxMemoryBytes;
      };
      const blockSize = fixed !== undefined ? (fits(fixed) ? fixed : 0) : largestFitting(n, tile, fits);
      if (blockSize === 0 || (group > 1 && group > Math.ceil(n / blockSize))) continue; // nothing fits, or wider than any row of blocks
      const shape = { blockSize, group: blockSize >= n ? 1 : group, prefetch };
      const score = throughput(n, shape, options.kernel ?? 'wasm-simd', threads);
      if (best === undefined || score > best.score * 1.0001) best = { shape, score };
    }
  }
  if (best === undefined) {
    if (fixed !== undefined) {
      const limit = overLimit(N, M, { blockSize: fixed, group: 1, prefetch: false }, options);
      if (limit !== undefined) throw limit;
      const need = jobMemory(N, M, { blockSize: fixed, group: 1, prefetch: false }, options).total;
      throw new HpairError('TOO_LARGE', `blocks of ${fixed} rows at M = ${M} need ${formatBytes(need)}, more than the budget of ${formatBytes(maxMemoryBytes)}`);
    }
    throw tooSmall(N, M, maxMemoryBytes, options);
  }
  return best.shape;
}

export function formatBytes(bytes: number): string {
  const units = ['bytes', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${bytes} bytes` : `${value.toFixed(value >= 100 ? 0 : 1)} ${units[unit]}`;
}

/**
 * Bytes from a size on the command line: an integer, optionally with a suffix K, M, G or T (powers of 1024;
 * KiB, MiB, … and KB, MB, … mean the same). `64M` is 67108864.
 */
export function parseByteSize(text: string): number {
  const match = /^\s*(\d+(?:\.\d+)?)\s*(?:([kKmMgGtT])(?:i?[bB])?|[bB])?\s*$/.exec(String(text));
  if (match === null) throw new HpairError('INVALID_ARGUMENT', `expected a size such as 67108864, 64M or 1G, got '${String(text)}'`);
  const scale = { k: 1, m: 2, g: 3, t: 4 }[(match[2] ?? '').toLowerCase() as 'k'] ?? 0;
  const bytes = Math.floor(Number(match[1]) * 1024 ** scale);
  if (!Number.isSafeInteger(bytes) || bytes < 1) throw new HpairError('INVALID_ARGUMENT', `expected a positive size, got '${String(text)}'`);
  return bytes;
}
