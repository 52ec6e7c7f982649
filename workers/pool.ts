import { availableParallelism, totalmem } from 'node:os';
import type { ResourceLimits } from 'node:worker_threads';
import { CancelReason, Slot, createControlBlock, isCancelled, requestCancel, type ControlBlock } from '../shared/control-block.js';
import { HpairError, type HpairErrorCode } from '../shared/errors.js';
import { tileCount } from '../shared/index-space.js';
import { prepareHermitian } from '../kernel/hermitian-job.js';
import { compileKernel, resolveKernel, type KernelChoice, type KernelVariant } from '../kernel/wasm-kernels.js';
import { createSharedFloat64, type ComplexMatrix } from '../shared/complex-matrix.js';
import type { SharedView } from '../kernel/contract.js';
import type { PreparedJob } from './job.js';
import { prepareUserJob, type RunSpec } from './user-job.js';
import { builtinKernel } from './load-kernel.js';
import type { ErrorRecord, Schedule, StepSpec } from './protocol.js';
import { runTiles } from './run-tiles.js';
import { waitAtLeast } from './wait.js';
import { WorkerHandle } from './worker-handle.js';

/** Options of `createPool`. */
export interface PoolOptions {
  /**
   * Worker threads. Each computes its strided share of every job's tiles.
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
   * Called with (tiles done, tiles in all) at most every `progressIntervalMs`, and once at the end.
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

const PROGRESS_INTERVAL_MS = 50;
/** How long a cancelled step may take to reach a tile boundary before its workers are replaced. */
const DRAIN_GRACE_MS = 2000;

interface Entry {
  readonly job: PreparedJob<unknown>;
  readonly options: JobOptions;
  readonly control: ControlBlock;
  /** Rejects when the job is cancelled (abort, timeout, close); raced against every wait. */
  readonly cancelled: Promise<never>;
  cancel(reason: CancelReason, error: HpairError): void;
  resolve(value: unknown): void;
  reject(error: unknown): void;
  settled: boolean;
  dispose(): void;
}

/**
 * A fixed set of worker threads that runs jobs one at a time, in the order they were submitted, each
 * job on every worker. See createPool.
 */
export class Pool {
  readonly size: number;
  /** The pair kernel this pool runs (what `kernel: 'auto'` resolved to). */
  readonly kernel: KernelVariant;
  readonly #schedule: Schedule;
  readonly #maxQueue: number;
  readonly #resourceLimits: ResourceLimits | undefined;
  readonly #workerUrl: URL;
  readonly #inlineFlops: number;
  readonly #maxBytes: number;
  /** Panel scratch, grown on demand and reused: jobs run one at a time and drain before the next. */
  #panels: Float64Array = new Float64Array(new SharedArrayBuffer(0));
  /** The wasm kernels' shared linear memory (panels and per-thread tile scratch), grown on demand. */
  #memory: WebAssembly.Memory | undefined;
  #handles: WorkerHandle[] = [];
  #queue: Entry[] = [];
  #running: Entry | undefined;
  #idle: Promise<void> = Promise.resolve();
  #closed = false;
  #stats = { completed: 0, failed: 0, inline: 0, copiedBytes: 0, workersStarted: 0 };

  /** @param workerUrl @internal tests substitute a worker that injects faults */
  constructor(options: PoolOptions = {}, workerUrl = new URL('./worker.js', import.meta.url)) {
    const {
      workers = availableParallelism(),
      schedule = 'dynamic',
      maxQueue = Infinity,
      resourceLimits,
      inlineFlops = 2e6,
      kernel = 'auto',
      maxBytes = totalmem() / 2,
    } = options;
    if (!(typeof maxBytes === 'number' && maxBytes > 0)) {
      throw new HpairError('INVALID_ARGUMENT', `maxBytes must be a positive number, got ${String(maxBytes)}`);
    }
    this.#maxBytes = maxBytes;
    this.kernel = resolveKernel(kernel);
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
    this.#inlineFlops = inlineFlops;
    this.size = workers;
    this.#schedule = schedule;
    this.#maxQueue = maxQueue;
    this.#resourceLimits = resourceLimits;
    this.#workerUrl = workerUrl;
    for (let w = 0; w < workers; w++) this.#handles.push(this.#spawn());
  }

  /** True once close() was called. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Jobs waiting behind the running one. */
  get queued(): number {
    return this.#queue.length;
  }

  stats(): PoolStats {
    return { ...this.#stats };
  }

  /** Resolves once every worker has started and loaded its code, so later timings exclude start-up. */
  async ready(): Promise<void> {
    this.#assertOpen();
    this.#replaceDead();
    await Promise.all(this.#handles.map((handle) => Promise.race([handle.api.ping(), handle.died])));
  }

  /**
   * Stops the pool. Queued jobs reject with POOL_CLOSED; the running job finishes, or with
   * `{ abort: true }` rejects with POOL_CLOSED at its next tile; then the workers exit.
   * Later calls reject with POOL_CLOSED. Calling close() again returns the same promise.
   */
  close(options: { abort?: boolean } = {}): Promise<void> {
    if (this.#closing !== undefined) return this.#closing;
    this.#closed = true;
    for (const entry of this.#queue.splice(0)) {
      entry.dispose();
      entry.reject(new HpairError('POOL_CLOSED', 'the pool was closed before this job started'));
    }
    if (options.abort === true && this.#running !== undefined) {
      this.#running.cancel(CancelReason.CLOSED, new HpairError('POOL_CLOSED', 'the pool was closed while this job ran'));
    }
    this.#closing = this.#idle.then(async () => {
      await Promise.all(this.#handles.map((handle) => handle.terminate()));
    });
    return this.#closing;
  }
  #closing: Promise<void> | undefined;

  /**
   * Computes H[i,j] = Σ_{m=1}^{M−1} (expp[i,m] − expp[N−1,m]) · conj(expp[j,m] − expp[N−1,m]) / distance[m]
   * for the (N−1)×(N−1) Hermitian H, on every worker. Inputs in shared memory are read in place.
   */
  async hermitian(expp: ComplexMatrix, distance: Float64Array, options: HermitianOptions = {}): Promise<ComplexMatrix> {
    this.#assertOpen();
    const job = prepareHermitian(expp, distance, options.out, {
      variant: this.kernel,
      maxBytes: this.#maxBytes,
      inlineFlops: this.#inlineFlops,
      threads: this.size,
      planarPanels: (length) => {
        if (this.#panels.length < length) this.#panels = createSharedFloat64(length);
        return this.#panels;
      },
      wasm: (bytes) => ({ memory: this.#wasmMemory(bytes), module: compileKernel(this.kernel as Exclude<KernelVariant, 'js'>) }),
    });
    return this.submit(job, options);
  }

  #wasmMemory(bytes: number): WebAssembly.Memory {
    const PAGE = 65536;
    const pages = Math.ceil(bytes / PAGE);
    try {
      if (this.#memory === undefined) {
        this.#memory = new WebAssembly.Memory({ initial: pages, maximum: PAGE, shared: true });
      } else if (this.#memory.buffer.byteLength < pages * PAGE) {
        this.#memory.grow(pages - this.#memory.buffer.byteLength / PAGE);
      }
    } catch (error) {
      throw new HpairError('TOO_LARGE', `cannot grow WebAssembly memory to ${bytes} bytes: ${(error as Error).message}`, { cause: error });
    }
    return this.#memory;
  }

  /**
   * Runs your own kernel over an index space on every worker: the same machinery as `hermitian` (shared
   * views, strided tiles, Atomics completion, cancel, timeout, progress, queueing, crash recovery). Each
   * worker imports the module once and calls its kernel once per tile. Resolves with `spec.buffers`, which
   * the kernel wrote in place. A kernel that throws rejects the job with KERNEL_FAILED (its error in `cause`).
   */
  async run<Buffers extends Record<string, SharedView>>(spec: RunSpec<Buffers>, options: JobOptions = {}): Promise<Buffers> {
    this.#assertOpen();
    return this.submit(prepareUserJob(spec), options);
  }

  /** @internal Queues a prepared job; the public entry points are hermitian() and run(). */
  async submit<T>(job: PreparedJob<T>, options: JobOptions = {}): Promise<T> {
    if (this.#closed) throw new HpairError('POOL_CLOSED', 'the pool is closed');
    validateJobOptions(options);
    if (options.signal?.aborted === true) {
      throw new HpairError('ABORTED', 'the signal was aborted before the job started', { cause: options.signal.reason });
    }
    if (this.#running !== undefined && this.#queue.length >= this.#maxQueue) {
      throw new HpairError('QUEUE_FULL', `the pool's queue already holds maxQueue = ${this.#maxQueue} jobs`);
    }
    return new Promise<T>((resolve, reject) => {
      const entry = this.#entry(job as PreparedJob<unknown>, options, resolve as (value: unknown) => void, reject);
      this.#queue.push(entry);
      this.#pump();
    });
  }

  #entry(job: PreparedJob<unknown>, options: JobOptions, resolve: (value: unknown) => void, reject: (error: unknown) => void): Entry {
    const control = createControlBlock();
    let cancelWith: (error: HpairError) => void = () => undefined;
    const cancelled = new Promise<never>((_, rejectCancelled) => {
      cancelWith = rejectCancelled;
    });
    cancelled.catch(() => undefined);
    const entry: Entry = {
      job,
      options,
      control,
      cancelled,
      settled: false,
      resolve: (value) => {
        if (entry.settled) return;
        entry.settled = true;
        entry.dispose();
        this.#stats.completed++;
        resolve(value);
      },
      reject: (error) => {
        if (entry.settled) return;
        entry.settled = true;
        entry.dispose();
        this.#stats.failed++;
        reject(error);
      },
      cancel: (reason, error) => {
        requestCancel(control, reason);
        const queuedAt = this.#queue.indexOf(entry);
        if (queuedAt >= 0) this.#queue.splice(queuedAt, 1);
        // Reject at once; the pool stays busy until the workers reach a tile boundary (see #execute).
        entry.reject(error);
        cancelWith(error);
      },
      dispose: () => undefined,
    };
    const onAbort = (): void =>
      entry.cancel(CancelReason.ABORTED, new HpairError('ABORTED', 'the job was aborted', { cause: options.signal?.reason }));
    options.signal?.addEventListener('abort', onAbort, { once: true });
    const timer =
      options.timeoutMs === undefined
        ? undefined
        : setTimeout(
            () => entry.cancel(CancelReason.TIMEOUT, new HpairError('TIMEOUT', `the job did not finish within timeoutMs = ${options.timeoutMs}`)),
            options.timeoutMs,
          );
    // A pending deadline must not keep an otherwise finished process alive; a running job refs the workers.
    timer?.unref();
    entry.dispose = () => {
      options.signal?.removeEventListener('abort', onAbort);
      if (timer !== undefined) clearTimeout(timer);
    };
    return entry;
  }

  #pump(): void {
    if (this.#running !== undefined) return;
    const entry = this.#queue.shift();
    if (entry === undefined) return;
    this.#running = entry;
    this.#idle = this.#execute(entry).finally(() => {
      this.#running = undefined;
      this.#pump();
    });
  }

  async #execute(entry: Entry): Promise<void> {
    const { job, control, options } = entry;
    const total = job.steps.reduce((sum, step) => sum + tileCount(step.space), 0);
    const report = (): void => {
      if (!entry.settled) options.onProgress?.(Math.min(Atomics.load(control, Slot.PROGRESS), total), total);
    };
    this.#stats.copiedBytes += job.copiedBytes;
    try {
      if (job.inline) {
        this.#stats.inline++;
        job.steps.forEach((step, index) => {
          const spec: StepSpec = { ...step, schedule: 'strided', control };
          if (step.kernel.kind !== 'builtin') throw new Error('only built-in kernels run inline');
          runTiles(builtinKernel(step.kernel.name), spec, 0, 1);
          job.afterStep?.(index);
        });
      } else {
        this.#replaceDead();
        for (const handle of this.#handles) handle.ref();
        let lastReport = 0;
        const poll = (): void => {
          const now = performance.now();
          if (now - lastReport >= PROGRESS_INTERVAL_MS) {
            lastReport = now;
            report();
          }
        };
        for (let index = 0; index < job.steps.length; index++) {
          await this.#runStep({ ...job.steps[index], schedule: this.#schedule, control }, entry, options.onProgress ? poll : undefined);
          job.afterStep?.(index);
        }
      }
      if (!entry.settled) {
        report();
        entry.resolve(job.result());
      }
    } catch (error) {
      entry.reject(error);
    } finally {
      for (const handle of this.#handles) handle.unref();
    }
  }

  /**
   * Posts one step to every worker and waits for all of them (DONE === workers, and each Comlink call
   * answered). Any failure — a kernel error, a dead worker, a cancel — first drains the step: the
   * other workers are told to stop and waited for, so no thread still writes into this job's buffers
   * when the next job starts.
   */
  async #runStep(spec: StepSpec, entry: Entry, poll: (() => void) | undefined): Promise<void> {
    const { control } = spec;
    const handles = this.#handles;
    const workers = handles.length;
    Atomics.store(control, Slot.DONE, 0);
    Atomics.store(control, Slot.NEXT_TILE, 0);
    const calls = handles.map((handle, w) => Promise.race([handle.api.run(spec, w, workers), handle.died]));
    const answered = Promise.all(calls).then((outcomes) => {
      for (const outcome of outcomes) if (!outcome.ok) throw fromRecord(outcome.error);
    });
    const firstFailure = Promise.race(
      calls.map((call) => call.then((outcome) => (outcome.ok ? new Promise<never>(() => undefined) : Promise.reject(fromRecord(outcome.error))))),
    );
    let settled = false;
    try {
      await Promise.race([
        Promise.all([waitAtLeast(control, Slot.DONE, workers, PROGRESS_INTERVAL_MS, () => settled, poll), answered]),
        firstFailure,
        entry.cancelled,
      ]);
    } catch (error) {
      settled = true;
      requestCancel(control, CancelReason.FAILED);
      entry.reject(error); // the caller hears at once; the pool is busy until the drain is over
      await this.#drain(calls);
      throw error;
    }
    settled = true;
    // Workers skip tiles once CANCEL is set, so a step that "finished" after a cancel is incomplete.
    if (isCancelled(control)) throw new HpairError('ABORTED', 'the job was cancelled');
  }

  async #drain(calls: Promise<unknown>[]): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const grace = new Promise<'stuck'>((resolve) => {
      timer = setTimeout(() => resolve('stuck'), DRAIN_GRACE_MS);
    });
    const outcome = await Promise.race([Promise.allSettled(calls), grace]);
    clearTimeout(timer);
    if (outcome === 'stuck') {
      // A tile that never returns cannot be interrupted from outside its thread: replace the threads.
      await Promise.all(this.#handles.map((handle) => handle.terminate()));
    }
    this.#replaceDead();
  }

  #replaceDead(): void {
    if (this.#closed && this.#running === undefined) return;
    this.#handles = this.#handles.map((handle) => (handle.alive ? handle : this.#spawn()));
  }

  #spawn(): WorkerHandle {
    this.#stats.workersStarted++;
    return new WorkerHandle(this.#workerUrl, this.#resourceLimits);
  }

  #assertOpen(): void {
    if (this.#closed) throw new HpairError('POOL_CLOSED', 'the pool is closed');
  }
}

function validateJobOptions(options: JobOptions): void {
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

/** Rebuilds a worker's error on this thread: its own HpairErrors keep their code; anything else a kernel threw is KERNEL_FAILED. */
function fromRecord(record: ErrorRecord): HpairError {
  const original = Object.assign(new Error(record.message), { name: record.name, stack: record.stack });
  if (record.name === 'HpairError' && record.code !== undefined) {
    return new HpairError(record.code as HpairErrorCode, record.message, { cause: original });
  }
  return new HpairError('KERNEL_FAILED', `the kernel threw ${record.name}: ${record.message}`, { cause: original });
}
