import { availableParallelism, totalmem } from 'node:os';
import type { ResourceLimits } from 'node:worker_threads';
import type { KernelChoice } from '../kernel/kernel-names.js';
import type { ComplexMatrix } from '../shared/complex-matrix.js';
import { HpairError } from '../shared/errors.js';
import type { Schedule } from '../shared/protocol.js';

/** Options of `createPool`. */
export interface PoolOptions {
  /**
   * Worker threads. Every job's tiles are shared out among all of them.
   * @default os.availableParallelism()
   */
  workers?: number;
  /**
   * How tiles are dealt: `'strided'` (worker w takes tiles w, w + W, …) or `'dynamic'` (workers claim
   * the next tile from an Atomics counter). Results are bit-identical either way. Dynamic is the default
   * because on a shared, noisy machine a worker that is descheduled for a while no longer holds up the
   * job with its fixed share (measured: 25.7 vs 23.7 GFLOP/s at N = M = 2048, 2 workers, wasm-simd).
   * @default 'dynamic'
   */
  schedule?: Schedule;
  /**
   * Jobs that may wait while one runs; one more rejects with QUEUE_FULL.
   * @default Infinity
   */
  maxQueue?: number;
  /**
   * Resource limits for each worker thread (see node:worker_threads). A worker that exceeds them dies
   * and its job rejects with WORKER_CRASHED; the pool replaces it.
   * @default undefined (Node's defaults)
   */
  resourceLimits?: ResourceLimits;
  /**
   * Jobs with fewer useful flops than this run on the calling thread: for them, waking the workers
   * costs more than the work. 0 sends every job to the workers.
   * @default 2e6
   */
  inlineFlops?: number;
  /**
   * The pair kernel: `'wasm-relaxed-simd'` (fused multiply-add; Node ≥ 22, or Node 20 with
   * --experimental-wasm-relaxed-simd), `'wasm-simd'`, `'js'`, or `'auto'` for the fastest this runtime has.
   * Asking for one the runtime lacks throws INVALID_ARGUMENT.
   * @default 'auto'
   */
  kernel?: KernelChoice;
  /**
   * Largest memory one job may take beyond the caller's own arrays: copies of non-shared inputs, the
   * packed panels and H. A larger job rejects with TOO_LARGE before anything is allocated.
   * @default half of os.totalmem()
   */
  maxBytes?: number;
}

/** Options of `pool.hermitian` and `hermitian`. */
export interface HermitianOptions extends JobOptions {
  /**
   * Where to write H: an (N−1)×(N−1) matrix in shared memory, not overlapping the inputs. Without it a
   * new shared matrix is allocated. If the job fails after it started, out's contents are unspecified.
   * @default undefined
   */
  out?: ComplexMatrix;
}

/** Per-call options shared by every job. */
export interface JobOptions {
  /**
   * Aborting rejects the job with ABORTED; workers stop at their next tile.
   * @default undefined
   */
  signal?: AbortSignal;
  /**
   * Deadline in milliseconds from the call (queue time included); past it the job rejects with TIMEOUT.
   * @default undefined (no deadline)
   */
  timeoutMs?: number;
  /**
   * Called with (tiles done, tiles in all) at most every 50 ms, and once at the end.
   * @default undefined
   */
  onProgress?: (done: number, total: number) => void;
}

export interface PoolStats {
  /** Jobs that resolved. */
  readonly completed: number;
  /** Jobs that rejected after they were accepted. */
  readonly failed: number;
  /** Jobs answered on the calling thread because they were too small to wake the workers. */
  readonly inline: number;
  /** Bytes copied into shared memory because inputs were not shared already (0 for SAB inputs). */
  readonly copiedBytes: number;
  /** Worker threads started over the pool's life (workers + replacements). */
  readonly workersStarted: number;
}

/** PoolOptions with every default applied, checked. */
export type ResolvedPoolOptions = Required<Omit<PoolOptions, 'resourceLimits'>> & Pick<PoolOptions, 'resourceLimits'>;

export function resolvePoolOptions(options: PoolOptions): ResolvedPoolOptions {
  const {
    workers = availableParallelism(),
    schedule = 'dynamic',
    maxQueue = Infinity,
    resourceLimits,
    inlineFlops = 2e6,
    kernel = 'auto',
    maxBytes = totalmem() / 2,
  } = options;
  if (!Number.isSafeInteger(workers) || workers < 1) {
    throw new HpairError('INVALID_ARGUMENT', `workers must be a positive integer, got ${String(workers)}`);
  }
  if (schedule !== 'strided' && schedule !== 'dynamic') {
    throw new HpairError('INVALID_ARGUMENT', `schedule must be 'strided' or 'dynamic', got ${String(schedule)}`);
  }
  if (!(maxQueue === Infinity || (Number.isSafeInteger(maxQueue) && maxQueue >= 0))) {
    throw new HpairError('INVALID_ARGUMENT', `maxQueue must be a non-negative integer or Infinity, got ${String(maxQueue)}`);
  }
  if (!(typeof inlineFlops === 'number' && inlineFlops >= 0)) {
    throw new HpairError('INVALID_ARGUMENT', `inlineFlops must be a number ≥ 0, got ${String(inlineFlops)}`);
  }
  if (!(typeof maxBytes === 'number' && maxBytes > 0)) {
    throw new HpairError('INVALID_ARGUMENT', `maxBytes must be a positive number, got ${String(maxBytes)}`);
  }
  return { workers, schedule, maxQueue, resourceLimits, inlineFlops, kernel, maxBytes };
}

export function validateJobOptions(options: JobOptions): void {
  if (options.signal !== undefined && !(options.signal instanceof AbortSignal)) {
    throw new HpairError('INVALID_ARGUMENT', 'signal must be an AbortSignal');
  }
  const { timeoutMs } = options;
  if (timeoutMs !== undefined && !(typeof timeoutMs === 'number' && timeoutMs >= 0 && Number.isFinite(timeoutMs))) {
    throw new HpairError('INVALID_ARGUMENT', `timeoutMs must be a finite number ≥ 0, got ${String(timeoutMs)}`);
  }
  if (options.onProgress !== undefined && typeof options.onProgress !== 'function') {
    throw new HpairError('INVALID_ARGUMENT', 'onProgress must be a function');
  }
}
