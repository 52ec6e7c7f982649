import { MAX_TYPED_ARRAY_LENGTH, isSharedView, type ComplexMatrix } from '../shared/complex-matrix.js';
import { HpairError } from '../shared/errors.js';
import type { PreparedJob } from '../shared/job.js';
import { NO_BAD_VALUE } from './hermitian-check.js';
import { complexSource, realVector, type ComplexMatrixInput, type ComplexSource, type RealVectorInput } from '../shared/array-inputs.js';
import { checkHermitianShape, nonFiniteExppError } from './hermitian-inputs.js';
import { hermitianWork } from './hermitian-size.js';
import type { HermitianBlock, HermitianResult } from './hermitian-result.js';
import { originalRow, type HWindow, type RowRanges } from './hermitian-tile-store.js';
import { blockTiles, checkBlock, unionOf } from './hermitian-block.js';
import type { IndexSpace } from '../shared/index-space.js';
import type { Accuracy, HermitianVariant, KernelChoice, ScratchProvider } from './variant.js';
import { fallbackAfter, resolveKernel } from './variants.js';
import { WASM_MAX_BYTES } from './variant-wasm.js';
import { largestEdge, planTriangle, triangleEdge } from './hermitian-tiling.js';
import type { Schedule } from '../shared/protocol.js';

export interface HermitianEngineOptions {
  readonly kernel: KernelChoice;
  /** Jobs' accuracy unless a job asks for its own. */
  readonly accuracy: Accuracy;
  /** Threads that run tiles at once. */
  readonly threads: number;
  /** How the pool deals tiles to its threads: the whole H's tiles are cut to balance under it. */
  readonly schedule: Schedule;
  /** Largest memory one job may take beyond the caller's arrays. */
  readonly maxBytes: number;
  /** Jobs with less work than this (hermitianWork) run on the calling thread. */
  readonly inlineWork: number;
  /** Allocates big shared buffers (the pool maps them off the event loop: workers/memory-thread.ts). */
  readonly allocate: (bytes: number) => Promise<SharedArrayBuffer>;
}

type Slot = 'panels' | 'expp' | 'distance';

const WASM_PAGE = 65536;
/** wasm32's 4 GiB in pages; a shared memory must declare its maximum up front. */
const WASM_MAX_PAGES = 65536;

/**
 * The H engine: which variant a pool runs, and the scratch its jobs reuse (shared panels, the wasm
 * memory). It turns a call into a PreparedJob for the generic job runner and allocates nothing until the
 * runner starts the job. Jobs run one at a time and drain before the next, so scratch is never shared by
 * two running jobs.
 */
export class HermitianEngine {
  readonly variant: HermitianVariant;
  /** Why no native kernel runs, when none does (one line). */
  readonly whyNotNative: string | undefined;
  /** Bytes copied into shared memory because inputs were not shared already. */
  copiedBytes = 0;
  readonly #options: HermitianEngineOptions;
  /** Shared scratch by use, grown on demand and kept: reused pages are not faulted in again for every job. */
  readonly #slots = new Map<Slot, Float64Array>();
  #memory: WebAssembly.Memory | undefined;
  /**
   * The last whole H's kernel, tiles and scratch count, by shape and accuracy: a warm caller computes one shape
   * again and again, and they depend on nothing else (the schedule and this engine's variant are fixed, and the
   * threads they are cut for follow from the shape: the pool's, or one for an inline job). A
   * small job would otherwise spend a noticeable share of its time planning the same tiles again. Tile spaces are
   * never written, so jobs share them.
   */
  #lastPlan: JobPlanned | undefined;
  readonly #scratch: ScratchProvider = {
    shared: (length) => {
      if (length === 0) return new Float64Array(new SharedArrayBuffer(0));
      const panels = this.#slots.get('panels');
      if (panels === undefined || panels.length < length) throw new Error(`internal: panels scratch below ${length} values`);
      return panels.subarray(0, length);
    },
    wasm: (bytes) => this.#wasmMemory(bytes),
  };

  constructor(options: HermitianEngineOptions) {
    const { variant, whyNotNative } = resolveKernel(options.kernel);
    this.variant = variant;
    this.whyNotNative = whyNotNative;
    this.#options = options;
    checkAccuracy(variant, options.accuracy);
  }

  /**
   * The whole H. Checks what costs O(M) or less now (types, shapes, distance, `out`, memory), and returns
   * the job. Inputs already in shared memory are used in place; others are copied once when the job starts.
   */
  prepare(
    exppInput: ComplexMatrixInput,
    distanceInput: RealVectorInput,
    out: ComplexMatrix | undefined,
    jobMaxBytes?: number,
    accuracy?: Accuracy,
  ): PreparedJob<HermitianResult> {
    const source = complexSource(exppInput, 'expp');
    const distance = realVector(distanceInput, 'distance');
    const { N, M } = checkHermitianShape(source.rows, source.cols, distance);
    const n = N - 1;
    if (out !== undefined) checkOut(out, n, n, exppInput, distance);
    return this.#job({
      source,
      distance,
      rows: allRows(N),
      window: { r0: 0, c0: 0, rows: n, cols: n },
      // The edge that finishes first on these threads, cut to keep every thread busy: a tall job's few rows under
      // the variant's tile edge would leave one tile holding nearly all the work (kernel/hermitian-tiling.ts).
      pairSpace: (variant, threads, schedule, accuracy) => {
        const step = variant.tileStep;
        const edge = triangleEdge(n, variant.tileEdges(M, accuracy), step, threads);
        return { space: planTriangle(n, { tile: edge, step }, threads, schedule).space, edge };
      },
      out,
      maxBytes: jobMaxBytes,
      work: hermitianWork(N, M),
      accuracy,
      reusable: true,
    });
  }

  /**
   * One rectangle of H, rows [i0, i1) × columns [j0, j1), every entry bit-identical to the same entry of the
   * whole H. The job is a smaller H problem: the rows the rectangle touches (its rows and its columns, as
   * difference rows) with the reference row after them, whose pair step computes only the tiles of its
   * lower triangle that the rectangle (or its mirror) needs. Each entry's sum is the same sequence of
   * operations whichever rows surround it, so it comes out the same bits.
   */
  prepareBlock(
    exppInput: ComplexMatrixInput,
    distanceInput: RealVectorInput,
    block: HermitianBlock,
    out: ComplexMatrix | undefined,
    jobMaxBytes?: number,
    accuracy?: Accuracy,
  ): PreparedJob<HermitianResult> {
    const source = complexSource(exppInput, 'expp');
    const distance = realVector(distanceInput, 'distance');
    const { N, M } = checkHermitianShape(source.rows, source.cols, distance);
    const n = N - 1;
    const [[i0, i1], [j0, j1]] = checkBlock(block, n);
    if (out !== undefined) checkOut(out, i1 - i0, j1 - j0, exppInput, distance);
    // The difference rows the block needs, in order, and where each of the two ranges starts among them.
    const rows = unionOf([i0, i1], [j0, j1]);
    const compact = (row: number): number => {
      let before = 0;
      for (const [a, b] of rows) {
        if (row < b) return before + (row - a);
        before += b - a;
      }
      return before;
    };
    const window: HWindow = { r0: compact(i0), c0: compact(j0), rows: i1 - i0, cols: j1 - j0, callerRows: rows };
    const sub = rows.reduce((total, [a, b]) => total + b - a, 0);
    // With the reference row; a block whose rows end at N − 1 and start at 0 (an out-of-core driver's
    // sub-problem) is then the whole input, used in place with no copy.
    const needed = rows.map(([a, b]): [number, number] => [a, b]);
    const last = needed[needed.length - 1];
    if (last !== undefined && last[1] === N - 1) last[1] = N;
    else needed.push([N - 1, N]);
    return this.#job({
      source,
      distance,
      rows: needed,
      window,
      pairSpace: (variant, threads, _schedule, accuracy) => {
        const list = blockTiles(sub, variant.tileEdges(M, accuracy), window, variant.anyOrigin, threads);
        const space: IndexSpace = { kind: 'list', n: sub, tile: variant.tile, list };
        return { space, edge: largestEdge(space) };
      },
      out,
      maxBytes: jobMaxBytes,
      work: 8 * M * window.rows * window.cols + 8 * window.rows * window.cols + 2 * (sub + 1) * M,
      accuracy,
      reusable: false,
    });
  }

  #job(plan: JobPlan): PreparedJob<HermitianResult> {
    const { inlineWork } = this.#options;
    const { source, distance, rows, window, out } = plan;
    const inline = plan.work < inlineWork;
    // An inline job runs all its tiles on the calling thread, so they are cut for one: cut for the pool's threads, a
    // small triangle becomes several tiles so that each worker gets one, and the one thread packs and calls more.
    const threads = inline ? 1 : this.#options.threads;
    const maxBytes = Math.min(this.#options.maxBytes, plan.maxBytes ?? Infinity);
    const M = source.cols;
    const N = rows.reduce((total, [a, b]) => total + b - a, 0);
    const gathered = rows.length > 1 || rows[0][1] - rows[0][0] !== source.rows;
    const hValues = 2 * window.rows * window.cols;
    if (hValues > MAX_TYPED_ARRAY_LENGTH) throw new HpairError('TOO_LARGE', `H would hold ${hValues} values; typed arrays hold at most 2^32`);
    const accuracy = plan.accuracy ?? this.#options.accuracy;
    const last = plan.reusable ? this.#lastPlan : undefined;
    let planned = last !== undefined && last.N === N && last.M === M && last.accuracy === accuracy && last.threads === threads ? last : undefined;
    if (planned === undefined) {
      const fits = (variant: HermitianVariant): boolean => variant.scratchBytes(N, M, threads, undefined, accuracy).wasm <= WASM_MAX_BYTES;
      // The wasm part (its memory's limit) decides the fallback; it does not depend on the tile edge.
      const variant = fits(this.variant) ? this.variant : fallbackAfter(this.variant, fits);
      if (variant === undefined) throw new HpairError('TOO_LARGE', `no kernel that runs here has room for N = ${N}, M = ${M}`);
      checkAccuracy(variant, accuracy);
      // The tiles are cut now, so that the scratch is counted for their largest edge (a larger edge needs more),
      // before anything big is allocated: an oversized request fails instead of taking the process down.
      const { space, edge } = plan.pairSpace(variant, threads, this.#options.schedule, accuracy);
      planned = { N, M, accuracy, threads, variant, pairSpace: space, scratch: variant.scratchBytes(N, M, threads, edge, accuracy) };
      if (plan.reusable) this.#lastPlan = planned;
    }
    const { variant, pairSpace, scratch } = planned;
    const inPlace = gathered ? undefined : source.inPlace;
    const copies = (inPlace === undefined ? 16 * N * M : 0) + (isSharedView(distance) ? 0 : distance.byteLength);
    const total = (out === undefined ? 8 * hValues : 0) + scratch.wasm + scratch.shared + scratch.native + copies;
    if (total > maxBytes) {
      throw new HpairError('TOO_LARGE', `this job needs ${formatBytes(total)} (H, scratch, copies) but maxBytes is ${formatBytes(maxBytes)}`);
    }
    if (scratch.shared / 8 > MAX_TYPED_ARRAY_LENGTH) {
      throw new HpairError('TOO_LARGE', `the packed panels would hold ${scratch.shared / 8} values; typed arrays hold at most 2^32`);
    }

    let h: Float64Array | undefined;
    let badValue: BigInt64Array | undefined;
    let exppValues: Float64Array | undefined = inPlace;
    return {
      inline,
      borrowedBytes: (inPlace?.byteLength ?? 0) + (out?.data.byteLength ?? 0),
      start: async (cancelled) => {
        const sharedExpp = inPlace ?? (await readInChunks(source, rows, await this.#slot('expp', 2 * N * M), cancelled));
        exppValues = sharedExpp;
        let sharedDistance = distance;
        if (!isSharedView(distance)) (sharedDistance = await this.#slot('distance', M)).set(distance);
        this.copiedBytes += copies;
        if (scratch.shared > 0) await this.#slot('panels', scratch.shared / 8);
        h = out?.data ?? new Float64Array(await this.#allocate(8 * hValues));
        badValue = new BigInt64Array(new SharedArrayBuffer(8));
        badValue[0] = NO_BAD_VALUE;
        const problem = { N, M, expp: sharedExpp, distance: sharedDistance, h, window, pairSpace, badValue, threads, accuracy };
        return variant.steps(problem, this.#scratch);
      },
      afterStep: (step) => {
        const bad = badValue?.[0];
        if (step !== 0 || bad === undefined || bad === NO_BAD_VALUE) return;
        // Name the value by its row in the caller's expp (a block's rows are gathered).
        const flat = Number(bad);
        const row = Math.floor(flat / (2 * M));
        throw nonFiniteExppError(exppValues!, M, flat, originalRow(rows, row));
      },
      result: () => ({ rows: window.rows, cols: window.cols, data: h!, kernel: variant.name }),
      release: () => {
        h = undefined;
        badValue = undefined;
        exppValues = undefined;
      },
    };
  }

  /** A view of exactly `length` values over the slot's scratch, grown if it is too small. */
  async #slot(name: Slot, length: number): Promise<Float64Array> {
    let scratch = this.#slots.get(name);
    if (scratch === undefined || scratch.length < length) {
      this.#slots.delete(name); // the old one is freed while the new one is mapped
      this.#slots.set(name, (scratch = new Float64Array(await this.#allocate(8 * length))));
    }
    return scratch.subarray(0, length);
  }

  async #allocate(bytes: number): Promise<SharedArrayBuffer> {
    try {
      return await this.#options.allocate(bytes);
    } catch (error) {
      throw new HpairError('TOO_LARGE', `cannot allocate ${formatBytes(bytes)} of shared memory: ${(error as Error).message}`, { cause: error });
    }
  }

  #wasmMemory(bytes: number): WebAssembly.Memory {
    const pages = Math.ceil(bytes / WASM_PAGE);
    try {
      if (this.#memory === undefined) {
        this.#memory = new WebAssembly.Memory({ initial: pages, maximum: WASM_MAX_PAGES, shared: true });
      } else if (this.#memory.buffer.byteLength < pages * WASM_PAGE) {
        this.#memory.grow(pages - this.#memory.buffer.byteLength / WASM_PAGE);
      }
    } catch (error) {
      throw new HpairError('TOO_LARGE', `cannot grow WebAssembly memory to ${bytes} bytes: ${(error as Error).message}`, { cause: error });
    }
    return this.#memory;
  }
}

/**
 * Values read per piece (256 KB). A piece's cost is dominated by first-touch page faults of fresh scratch, which
 * vary by orders of magnitude between bare metal and a VM whose host backs pages lazily (`npm run bench:release`,
 * scenario page-fault): no byte count keeps every host's turn short, so the turn is bounded by time, not by
 * bytes (`npm run bench:event-loop`, scenario plain-input).
 */
const COPY_PIECE = 1 << 15;
/** The loop gets a turn once a run of pieces has taken this long (ms). */
const COPY_TURN_MS = 2;

/**
 * Reads the row ranges `rows` of `source` into `shared`, one after another, in pieces, yielding to the event
 * loop every COPY_TURN_MS, so a big input never stalls the loop whatever a page fault costs on this host.
 */
async function readInChunks(source: ComplexSource, rows: RowRanges, shared: Float64Array, cancelled: () => boolean): Promise<Float64Array> {
  const rowsPerPiece = Math.max(1, Math.floor(COPY_PIECE / Math.max(1, 2 * source.cols)));
  let at = 0;
  let turnStarted = performance.now();
  for (const [a, b] of rows) {
    for (let r0 = a; r0 < b && !cancelled(); r0 += rowsPerPiece) {
      if (performance.now() - turnStarted >= COPY_TURN_MS) {
        await new Promise((resolve) => setImmediate(resolve));
        turnStarted = performance.now();
      }
      const r1 = Math.min(b, r0 + rowsPerPiece);
      source.readRows(shared, r0, r1, at);
      at += r1 - r0;
    }
  }
  return shared;
}

/** What sets a job apart: which rows of expp it reads, where its H goes, and which tiles it computes. */
interface JobPlan {
  readonly source: ComplexSource;
  readonly distance: Float64Array;
  /** The rows of the job's expp, in order; the last is the reference row. */
  readonly rows: RowRanges;
  readonly window: HWindow;
  /**
   * The pair step's tiles for a variant (its tile edges, anyOrigin and tileStep), thread count, schedule and accuracy, and
   * the edge its scratch is counted for: no tile is longer (for the whole H, the edge it was cut to, which does
   * not depend on the schedule, as hermitianJobBytes counts it).
   */
  readonly pairSpace: (variant: HermitianVariant, threads: number, schedule: Schedule, accuracy: Accuracy) => { space: IndexSpace; edge: number };
  readonly out: ComplexMatrix | undefined;
  readonly maxBytes: number | undefined;
  /** hermitianWork of what the job computes: it decides whether the job runs inline. */
  readonly work: number;
  /** The job's own accuracy, if it asked for one. */
  readonly accuracy: Accuracy | undefined;
  /** Whether its plan depends on N, M and accuracy alone (the whole H), so the last one may serve again. */
  readonly reusable: boolean;
}

/** What #job decides for a shape before anything is allocated. */
interface JobPlanned {
  readonly N: number;
  readonly M: number;
  readonly accuracy: Accuracy;
  /** The threads its tiles are cut for: 1 for an inline job. */
  readonly threads: number;
  readonly variant: HermitianVariant;
  readonly pairSpace: IndexSpace;
  readonly scratch: ReturnType<HermitianVariant['scratchBytes']>;
}

const ACCURACIES: readonly Accuracy[] = ['default', 'compensated'];

/** Refuses an unknown accuracy, and 'compensated' on a variant without it (never a plain result in its place). */
export function checkAccuracy(variant: HermitianVariant, accuracy: Accuracy): void {
  if (!ACCURACIES.includes(accuracy)) {
    throw new HpairError('INVALID_ARGUMENT', `accuracy must be 'default' or 'compensated'; got ${typeof accuracy === 'string' ? `'${accuracy}'` : `a ${typeof accuracy}`}`);
  }
  if (accuracy === 'compensated' && !variant.compensated) {
    throw new HpairError('INVALID_ARGUMENT', `accuracy 'compensated' runs on the native and WebAssembly kernels only; this job's kernel is ${variant.name}`);
  }
}

function allRows(N: number): RowRanges {
  return [[0, N]];
}

function checkOut(out: ComplexMatrix, rows: number, cols: number, expp: ComplexMatrixInput, distance: Float64Array): void {
  if (typeof out !== 'object' || out === null || !(out.data instanceof Float64Array)) {
    throw new HpairError('INVALID_ARGUMENT', 'out must be a ComplexMatrix { rows, cols, data: Float64Array }');
  }
  if (out.rows !== rows || out.cols !== cols || out.data.length !== 2 * rows * cols) {
    throw new HpairError('SHAPE_MISMATCH', `out must be ${rows}×${cols} with ${2 * rows * cols} values, got ${out.rows}×${out.cols} with ${out.data.length}`);
  }
  if (!(out.data.buffer instanceof SharedArrayBuffer)) {
    throw new HpairError('INVALID_ARGUMENT', 'out.data must live in a SharedArrayBuffer (see createComplexMatrix)');
  }
  // Each of expp's views is read once (an input's getters may answer differently each time), then distance.
  for (const key of EXPP_VIEW_KEYS) {
    const view: unknown = (expp as unknown as Record<string, unknown>)[key];
    if (ArrayBuffer.isView(view) && overlaps(out.data, view)) throw new HpairError('INVALID_ARGUMENT', 'out overlaps expp; inputs are never written to');
  }
  if (overlaps(out.data, distance)) throw new HpairError('INVALID_ARGUMENT', 'out overlaps distance; inputs are never written to');
}

/** Where an expp input keeps its values: interleaved or strided (`data`), or split (`re`, `im`). */
const EXPP_VIEW_KEYS = ['data', 're', 'im'] as const;

function overlaps(a: ArrayBufferView, b: ArrayBufferView): boolean {
  return a.buffer === b.buffer && a.byteOffset < b.byteOffset + b.byteLength && b.byteOffset < a.byteOffset + a.byteLength;
}

function formatBytes(bytes: number): string {
  return bytes >= 2 ** 30 ? `${(bytes / 2 ** 30).toFixed(1)} GiB` : `${(bytes / 2 ** 20).toFixed(1)} MiB`;
}
