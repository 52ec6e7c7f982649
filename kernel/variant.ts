import type { IndexSpace } from '../shared/index-space.js';
import type { StepPlan } from '../shared/job.js';
import type { HWindow } from './hermitian-tile-store.js';
import type { Accuracy, KernelVariant } from './kernel-names.js';

export type { Accuracy, KernelChoice, KernelVariant } from './kernel-names.js';

/** Whether a variant can run here; when not, one line saying why. */
export type Support = { readonly ok: true } | { readonly ok: false; readonly reason: string };

/** One H job as a variant sees it: shapes, and every buffer already in shared memory. */
export interface HermitianProblem {
  /** expp is N×M; H is (N−1)×(N−1). */
  readonly N: number;
  readonly M: number;
  readonly expp: Float64Array;
  readonly distance: Float64Array;
  /** Where H goes: the whole H, or one rectangle of it (see `window`). */
  readonly h: Float64Array;
  readonly window: HWindow;
  /**
   * The pair step's tiles, cut by the engine before the job starts (its scratch was counted for their largest
   * edge): the lower triangle of H in tiles of one of the variant's `tileEdges` (kernel/hermitian-tiling.ts),
   * or, for a block of H, the list of tiles it needs.
   */
  readonly pairSpace: IndexSpace;
  /** [0]: smallest flat index of a non-finite value in expp (kept by atomic min); starts at NO_BAD_VALUE. */
  readonly badValue: BigInt64Array;
  /** Threads that may run tiles at once (each may need its own scratch). */
  readonly threads: number;
  /** How to sum; 'compensated' reaches only variants whose `compensated` is true. */
  readonly accuracy: Accuracy;
}

/** Reusable scratch an H engine lends its jobs (jobs run one at a time and drain before the next). */
export interface ScratchProvider {
  /** `length` float64 values of the engine's shared scratch (grown to the variant's `scratchBytes().shared` beforehand). */
  shared(length: number): Float64Array;
  /** The engine's shared WebAssembly memory, grown to at least `bytes`. */
  wasm(bytes: number): WebAssembly.Memory;
}

/** Memory a job of a variant takes beyond its inputs and H, by where it lives. */
export interface ScratchBytes {
  /** In the engine's WebAssembly memory (wasm32 addresses at most 4 GiB). */
  readonly wasm: number;
  /** In the engine's shared scratch (ScratchProvider.shared). */
  readonly shared: number;
  /** In native memory the addon allocates per thread. */
  readonly native: number;
}

/**
 * A pair kernel as the H engine uses it: how to tell whether it runs here, how it tiles, what scratch it
 * needs, and the steps of a job. kernel/variants.ts registers every variant, in order of preference.
 */
export interface HermitianVariant {
  readonly name: KernelVariant;
  /** Cached after the first call. */
  support(): Support;
  /** Edge of the pair step's triangle tiles: the scheduling and cancellation grain, never a result's bits. */
  readonly tile: number;
  /**
   * Edges the tiles of a job of M columns and this accuracy may be cut to, increasing, the first `tile`. A job
   * takes a larger one when its workers still finish sooner with it (kernel/hermitian-tiling.ts, triangleEdge and
   * blockEdge): a kernel that packs per tile packs each row of expp fewer times in larger tiles. Its scratch
   * grows with the edge (`scratchBytes`).
   */
  tileEdges(M: number, accuracy: Accuracy): readonly number[];
  /**
   * Every cut between the whole H's tiles is a multiple of this (its micro-tile's edge), when the job cuts its
   * triangle otherwise than into `tile` × `tile` blocks to balance its workers (kernel/hermitian-tiling.ts).
   */
  readonly tileStep: number;
  /**
   * Whether the pair step computes a tile at any origin and of any shape, across the diagonal too (the native
   * one), rather than only tiles whose corners sit on its micro-tile grid. A block of H is then cut into tiles
   * of its own, so it computes only its own entries; block sizes need not be multiples of `tile`.
   */
  readonly anyOrigin: boolean;
  /** Whether the variant computes with accuracy 'compensated'. */
  readonly compensated: boolean;
  /**
   * For a job of N rows and M columns on `threads` threads. `tileEdge`, when given, bounds the edge of the
   * job's tiles (the one the job was cut to, or a block's own tiles, HermitianVariant.anyOrigin); without it
   * the variant's `tile` is assumed.
   * `accuracy` defaults to 'default'.
   */
  scratchBytes(N: number, M: number, threads: number, tileEdge?: number, accuracy?: Accuracy): ScratchBytes;
  /** The job's steps: checking expp for non-finite values (recording the first in badValue), then the pairs. */
  steps(problem: HermitianProblem, scratch: ScratchProvider): readonly StepPlan[];
}
