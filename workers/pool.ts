import { EventEmitter } from 'node:events';
import { builtinKernels } from '../kernel/builtins.js';
import { HermitianEngine } from '../kernel/hermitian-engine.js';
import { useNativeAddon } from '../kernel/native/addon.js';
import type { HermitianBlock, HermitianResult } from '../kernel/hermitian-result.js';
import type { Accuracy, KernelVariant } from '../kernel/kernel-names.js';
import type { ComplexMatrixInput, RealVectorInput } from '../shared/array-inputs.js';
import { HpairError, describeError, readArguments } from '../shared/errors.js';
import type { SharedView } from '../shared/kernel-contract.js';
import { JobRunner } from './job-runner.js';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { allocateShared, trimFreedMemory, warmMemoryThread } from './memory-thread.js';
import { createComplexMatrix, type ComplexMatrix } from '../shared/complex-matrix.js';
import { obtainGc, type CollectGarbage } from './obtain-gc.js';
import { readJobOptions, resolvePoolOptions, type HermitianOptions, type JobOptions, type PoolOptions, type PoolStats } from './options.js';
import { prepareUserJob, type RunSpec } from './user-job.js';

/** The events a pool emits. */
export interface PoolEvents {
  /**
   * Something went wrong that no job's caller can be told: a worker died between jobs (it is replaced at
   * once), or a job's onProgress threw or its promise rejected (the job goes on without it). Without an 'error' listener these
   * become process warnings (type HpairWarning), never an uncaught exception.
   */
  error: [error: HpairError];
  /** The queue is empty and no job runs. */
  drain: [];
}

/**
 * A fixed set of worker threads that runs jobs one at a time, in the order they were submitted, each
 * job on every worker: H jobs (`hermitian`) and your own kernels (`run`) alike. See createPool.
 * `await using pool = createPool()` closes it at the end of the scope (TypeScript 5.2+, or Node 24+: plain
 * JavaScript on Node 20 and 22 cannot parse `await using`; there, close it in a `finally`).
 */
export class Pool extends EventEmitter<PoolEvents> implements AsyncDisposable {
  /** Worker threads. */
  readonly size: number;
  /** The H kernel this pool runs (what `kernel: 'auto'` resolved to). A job may fall back: see its result's `kernel`. */
  readonly kernel: KernelVariant;
  /** Jobs' accuracy unless a job asks for its own (PoolOptions.accuracy). */
  readonly accuracy: Accuracy;
  /** When no native kernel runs, one line saying why (e.g. "this CPU has no AVX2 and FMA"); otherwise undefined. */
  readonly whyNotNative: string | undefined;
  readonly #runner: JobRunner;
  readonly #engine: HermitianEngine;
  readonly #idleCollectMs: number;
  /** Shared memory the pool allocated (H, scratch) since this thread last collected because of it. */
  #allocatedBytes = 0;
  #idleTimer: NodeJS.Timeout | undefined;
  /** performance.now() at which #idleTimer fires. */
  #idleDue = 0;
  /** The current quiet period: when the pool last drained, the collections taken since, and the jobs seen then. */
  #idle: { since: number; round: number; jobsAtDrain: number } | undefined;
  /** The warm-up, started by the first ready(). */
  #warm: Promise<void> | undefined;

  /** @param workerUrl @internal tests substitute a worker that injects faults */
  constructor(options?: PoolOptions, workerUrl?: URL) {
    super();
    const resolved = readArguments('the pool options', () => resolvePoolOptions(options));
    if (resolved.nativeAddon !== undefined) useNativeAddon(resolved.nativeAddon);
    this.#engine = new HermitianEngine({
      kernel: resolved.kernel,
      accuracy: resolved.accuracy,
      threads: resolved.workers,
      schedule: resolved.schedule,
      maxBytes: resolved.maxBytes,
      inlineWork: resolved.inlineFlops,
      allocate: (bytes) => {
        this.#allocatedBytes += bytes;
        return allocateShared(bytes);
      },
    });
    this.#idleCollectMs = resolved.idleCollectMs;
    this.kernel = this.#engine.variant.name;
    this.accuracy = resolved.accuracy;
    this.whyNotNative = this.#engine.whyNotNative;
    this.#runner = new JobRunner({
      workers: resolved.workers,
      schedule: resolved.schedule,
      maxQueue: resolved.maxQueue,
      resourceLimits: resolved.resourceLimits,
      workerNice: resolved.workerNice,
      watchdogMs: resolved.watchdogMs,
      workerUrl: workerUrl ?? resolved.workerFile ?? new URL('./worker.js', import.meta.url),
      builtins: builtinKernels,
      progressFailed: (error, rejected) => {
        const how = rejected ? 'returned a promise that rejected with' : 'threw';
        const message = `onProgress ${how} ${describeError(error)}; the job goes on without progress calls`;
        this.#report(new HpairError('CALLBACK_FAILED', message, { cause: error }), 'HPAIR_PROGRESS_THREW');
      },
      workerCrashed: (error) => this.#report(error, 'HPAIR_WORKER_CRASHED'),
      drained: () => {
        this.#scheduleIdleCollection();
        this.emit('drain');
      },
    });
    this.size = this.#runner.size;
  }

  /** True once close() or destroy() was called. */
  get closed(): boolean {
    return this.#runner.closed;
  }

  /** Jobs waiting behind the running one. */
  get queued(): number {
    return this.#runner.queued;
  }

  /** Counters, latency distributions and utilization since the pool started. */
  stats(): PoolStats {
    return { ...this.#runner.stats(), copiedBytes: this.#engine.copiedBytes };
  }

  /**
   * Resolves once every worker has started and loaded its code, and the pool has paid what its first job would
   * otherwise pay once: the memory thread started, and a small H run on the workers and one on this thread, so
   * the kernel's code (the native addon, WebAssembly instances), its scratch and this thread's own code are
   * loaded and compiled. Later timings then exclude start-up. The warm-up is in no stat and emits no 'drain';
   * the first call does it, later calls only check the workers. A warm-up that fails (a kernel that cannot run
   * here) is left for the first job to report, with its own arguments.
   */
  async ready(): Promise<void> {
    await this.#runner.ready();
    this.#warm ??= this.#warmUp();
    await this.#warm;
  }

  async #warmUp(): Promise<void> {
    const memory = warmMemoryThread();
    try {
      const tile = this.#engine.variant.tile;
      // Enough tiles of full size for each worker to take one (up to six: beyond, each has loaded its code in
      // setup anyway), over a full k block, so a tile's scratch is already as large as a real job's.
      let side = 1;
      while (side < 3 && (side * (side + 1)) / 2 < this.size) side++;
      await this.#warmJob(warmUpProblem(side * tile + 1, WARM_UP_M), false);
      await this.#warmJob(warmUpProblem(INLINE_WARM_UP_N, INLINE_WARM_UP_N), true);
    } finally {
      await memory;
    }
    // A worker the warm-up lost (it crashed) is replaced now, not at the first job.
    await this.#runner.ready();
  }

  async #warmJob({ expp, distance }: { expp: ComplexMatrix; distance: Float64Array }, inline: boolean): Promise<void> {
    try {
      const job = this.#engine.prepare(expp, distance, undefined);
      await this.#runner.submit({ ...job, inline }, {}, true);
    } catch (error) {
      if (error instanceof HpairError && error.code === 'POOL_CLOSED') throw error;
    }
  }

  /**
   * Stops the pool. Queued jobs reject with POOL_CLOSED; the running job finishes, or with
   * `{ abort: true }` rejects with POOL_CLOSED at its next tile; then the workers exit.
   * Later calls reject with POOL_CLOSED. Calling close() again returns the same promise (and
   * `{ abort: true }` then still aborts the running job).
   */
  close(options: { abort?: boolean } = {}): Promise<void> {
    return this.#runner.close(options?.abort === true);
  }

  /** Stops at once: every job rejects with POOL_CLOSED and the threads are terminated mid-tile. */
  destroy(): Promise<void> {
    return this.#runner.destroy();
  }

  /** For `await using`: closes the pool, letting the running job finish. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  /**
   * Computes H[i,j] = Σ_{m=1}^{M−1} (expp[i,m] − expp[N−1,m]) · conj(expp[j,m] − expp[N−1,m]) / distance[m]
   * for the (N−1)×(N−1) Hermitian H, on every worker. `expp` is interleaved, split ({ re, im }) or strided,
   * over Float64Array, Float32Array or number[]; `distance` likewise. An interleaved row-major Float64Array
   * over a SharedArrayBuffer is read in place; any other form is copied once, in chunks, when the job starts.
   */
  async hermitian(expp: ComplexMatrixInput, distance: RealVectorInput, options: HermitianOptions = {}): Promise<HermitianResult> {
    this.#assertOpen();
    const { job, checked } = readArguments('the arguments of hermitian()', () => {
      const read = readJobOptions(options);
      const prepared = this.#engine.prepare(expp, distance, read.out, read.maxBytes, read.accuracy);
      this.#allocatedBytes += prepared.borrowedBytes ?? 0;
      return { job: prepared, checked: read };
    });
    return this.#runner.submit(job, checked);
  }

  /**
   * One rectangle of H: rows [i0, i1) × columns [j0, j1) of the (N−1)×(N−1) H, as a (i1−i0)×(j1−j0) matrix
   * whose every entry is bit-identical to the same entry of `hermitian()`'s H (same kernel). Only the rows
   * the rectangle touches are read (and checked for non-finite values), and only the pairs it needs are
   * computed: the way to build an H too big for memory, block by block (see the CLI's --max-memory).
   * Same options as hermitian(); `out` must be (i1−i0)×(j1−j0).
   */
  async hermitianBlock(expp: ComplexMatrixInput, distance: RealVectorInput, block: HermitianBlock, options: HermitianOptions = {}): Promise<HermitianResult> {
    this.#assertOpen();
    const { job, checked } = readArguments('the arguments of hermitianBlock()', () => {
      const read = readJobOptions(options);
      const prepared = this.#engine.prepareBlock(expp, distance, block, read.out, read.maxBytes, read.accuracy);
      this.#allocatedBytes += prepared.borrowedBytes ?? 0;
      return { job: prepared, checked: read };
    });
    return this.#runner.submit(job, checked);
  }

  /**
   * Runs your own kernel over an index space on every worker: the same machinery as `hermitian` (shared
   * views, tiles, Atomics completion, cancel, timeout, progress, queueing, crash recovery). Each worker
   * imports the module once and calls its kernel once per tile. Resolves with `spec.buffers`, which the
   * kernel wrote in place. A kernel that throws rejects the job with KERNEL_FAILED (its error in `cause`).
   */
  async run<Buffers extends Record<string, SharedView>>(spec: RunSpec<Buffers>, options: JobOptions = {}): Promise<Buffers> {
    this.#assertOpen();
    const { job, checked } = readArguments('the arguments of run()', () => {
      const read = readJobOptions(options);
      return { job: prepareUserJob(spec), checked: { signal: read.signal, timeoutMs: read.timeoutMs, onProgress: read.onProgress } };
    });
    return this.#runner.submit(job, checked);
  }

  /**
   * A service's thread often allocates nothing while it idles, and V8 collects only when it allocates: the
   * results of a burst (every H is a SharedArrayBuffer) would stay mapped until the next burst. So once the pool
   * has stayed idle for idleCollectMs after it allocated IDLE_COLLECT_BYTES or more, it collects this thread's
   * garbage, and again after 2×, 4× and 8× that while it stays idle: the caller may still hold the last results
   * for a while (a service sends them out), and drops them later without allocating anything. What is still
   * referenced is untouched. Never while a job runs or waits. Each collection is followed by a trim of malloc's
   * arenas (trimFreedMemory): an H below the mmap threshold comes from them, and what a burst freed there
   * otherwise stayed resident.
   */
  #scheduleIdleCollection(): void {
    if (this.#idleCollectMs === 0 || this.#allocatedBytes < IDLE_COLLECT_BYTES) return;
    // A new quiet period starts over. Jobs back to back drain once each, so the pending timer is kept when it
    // fires no later than this period's first collection would (it then waits out the rest): a timer made and
    // cleared per job costs a small inline job a measurable share of its time.
    const now = performance.now();
    this.#idle = { since: now, round: 0, jobsAtDrain: this.#jobsSeen() };
    if (this.#idleTimer !== undefined && this.#idleDue <= now + this.#idleCollectMs) return;
    clearTimeout(this.#idleTimer);
    this.#armIdleTimer(this.#idleCollectMs);
  }

  #armIdleTimer(delay: number): void {
    this.#idleDue = performance.now() + delay;
    this.#idleTimer = setTimeout(() => {
      this.#idleTimer = undefined;
      const idle = this.#idle;
      // Idle for the whole wait, not only now: jobs back to back leave the pool idle for an instant between
      // them. The bytes are still counted: the next drain starts over.
      if (idle === undefined || this.#runner.busy || this.closed || this.#jobsSeen() !== idle.jobsAtDrain) return;
      // Round r is due idleCollectMs · (2^(r+1) − 1) after the drain: 1×, then 2×, 4×, 8× after the one before.
      const due = idle.since + this.#idleCollectMs * (2 ** (idle.round + 1) - 1);
      const early = due - performance.now();
      if (early > 1) return this.#armIdleTimer(early); // a later drain moved the quiet period
      this.#allocatedBytes = 0;
      collectThisThread();
      trimFreedMemory();
      idle.round++;
      if (idle.round < IDLE_COLLECTIONS) this.#armIdleTimer(this.#idleCollectMs * 2 ** idle.round);
    }, delay);
    this.#idleTimer.unref();
  }

  /**
   * Jobs that settled or are queued or running: it changes whenever the pool gets work. Read at every drain, so
   * not through stats(), whose histogram summaries cost more than a small inline job.
   */
  #jobsSeen(): number {
    return this.#runner.settled + this.#runner.queued + (this.#runner.busy ? 1 : 0);
  }

  #report(error: HpairError, code: string): void {
    if (this.listenerCount('error') > 0) this.emit('error', error);
    else process.emitWarning(error.message, { type: 'HpairWarning', code });
  }

  #assertOpen(): void {
    if (this.closed) throw new HpairError('POOL_CLOSED', 'the pool is closed');
  }
}

/** Columns of the warm-up's H job: one more than the largest k block of any kernel, so every tile runs one whole. */
const WARM_UP_M = 257;
/** The warm-up's job on this thread: the size of a job that runs inline. */
const INLINE_WARM_UP_N = 16;

/** A problem with finite values and distances 1, in shared memory (read in place: no copy is counted). */
function warmUpProblem(N: number, M: number): { expp: ComplexMatrix; distance: Float64Array } {
  const expp = createComplexMatrix(N, M);
  for (let k = 0; k < expp.data.length; k++) expp.data[k] = (k & 1023) / 1024 - 0.5;
  const distance = new Float64Array(new SharedArrayBuffer(8 * M)).fill(1);
  return { expp, distance };
}


/** Allocations since the last idle collection below which an idle pool does not collect: not worth a pause. */
const IDLE_COLLECT_BYTES = 16 * 2 ** 20;
/** Collections in one quiet period, idleCollectMs × 1, 2, 4, 8 after the pool drained. */
const IDLE_COLLECTIONS = 4;

/** This thread's collector, obtained on first use (not when hpair is imported); null where the runtime refuses. */
let collector: CollectGarbage | null | undefined;

/**
 * V8's full collection (`gc()` with no options, as the memory thread calls it): it collects until nothing more
 * dies. A single `{ type: 'major' }` pass, called from a timer like this, left a burst's dropped results
 * uncollected (test/idle-collect.test.ts fails with it).
 */
function collectThisThread(): void {
  collector ??= obtainGc({ setFlagsFromString, runInNewContext }) ?? null;
  collector?.();
}
