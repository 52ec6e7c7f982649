import type { ResourceLimits } from 'node:worker_threads';
import { CancelReason, Slot, isCancelled, requestCancel } from '../shared/control-block.js';
import { HpairError } from '../shared/errors.js';
import { tileCount } from '../shared/index-space.js';
import { prepareHermitian } from '../kernel/hermitian-job.js';
import { resolveKernel, type KernelVariant } from '../kernel/kernel-variant.js';
import { compileKernel } from '../kernel/wasm-module.js';
import { createSharedFloat64, type ComplexMatrix } from '../shared/complex-matrix.js';
import type { SharedView } from '../kernel/contract.js';
import type { PreparedJob } from './job.js';
import { createEntry, type Entry } from './job-entry.js';
import { prepareUserJob, type RunSpec } from './user-job.js';
import { builtinKernel } from './load-kernel.js';
import { fromRecord } from './error-record.js';
import { resolvePoolOptions, validateJobOptions, type HermitianOptions, type JobOptions, type PoolOptions, type PoolStats } from './options.js';
import type { Schedule, StepSpec } from './protocol.js';
import { runTiles } from './run-tiles.js';
import { waitAtLeast } from './wait.js';
import { WorkerHandle } from './worker-handle.js';

const PROGRESS_INTERVAL_MS = 50;
/** How long a cancelled step may take to reach a tile boundary before its workers are replaced. */
const DRAIN_GRACE_MS = 2000;

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
    const resolved = resolvePoolOptions(options);
    this.kernel = resolveKernel(resolved.kernel);
    this.size = resolved.workers;
    this.#maxBytes = resolved.maxBytes;
    this.#inlineFlops = resolved.inlineFlops;
    this.#schedule = resolved.schedule;
    this.#maxQueue = resolved.maxQueue;
    this.#resourceLimits = resolved.resourceLimits;
    this.#workerUrl = workerUrl;
    for (let w = 0; w < this.size; w++) this.#handles.push(this.#spawn());
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
    const MAX_PAGES = 65536; // wasm32's 4 GiB; a shared memory must declare its maximum up front
    const pages = Math.ceil(bytes / PAGE);
    try {
      if (this.#memory === undefined) {
        this.#memory = new WebAssembly.Memory({ initial: pages, maximum: MAX_PAGES, shared: true });
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
      const entry = createEntry(job as PreparedJob<unknown>, options, resolve as (value: unknown) => void, reject, {
        settled: (ok) => (ok ? this.#stats.completed++ : this.#stats.failed++),
        cancelled: (cancelledEntry) => {
          const queuedAt = this.#queue.indexOf(cancelledEntry);
          if (queuedAt >= 0) this.#queue.splice(queuedAt, 1);
        },
      });
      this.#queue.push(entry);
      this.#pump();
    });
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
