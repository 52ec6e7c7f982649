import type { ResourceLimits } from 'node:worker_threads';
import { CancelReason, Slot, isCancelled, requestCancel, type ControlBlock } from '../shared/control-block.js';
import { HpairAbortError, HpairError } from '../shared/errors.js';
import { tileCount } from '../shared/index-space.js';
import type { PreparedJob, StepPlan } from '../shared/job.js';
import { toWireStep, type RunOutcome, type Schedule, type StepSpec } from '../shared/protocol.js';
import { builtinKernel, type BuiltinKernels } from './load-kernel.js';
import { fromRecord } from './error-record.js';
import { createEntry, type Entry } from './job-entry.js';
import { signalState, type JobOptions, type LatencySummary, type PoolStats } from './options.js';
import { runTiles } from './run-tiles.js';
import { waitAtLeast } from './wait.js';
import { WorkerHandle } from './worker-handle.js';
import { createHistogram, type RecordableHistogram } from 'node:perf_hooks';

const PROGRESS_INTERVAL_MS = 50;
/** How long a cancelled step may take to reach a tile boundary before its workers are replaced. */
const DRAIN_GRACE_MS = 2000;
/** The watchdog looks this many times per watchdogMs, so it fires within 1.25 × watchdogMs of the last sign of life. */
const WATCHDOG_LOOKS = 4;

/**
 * H jobs and user kernels (pool.run) run on separate threads: a user kernel may change its realm in ways no
 * check can see (a built-in replaced from a timer after its step, the thread's message port emptied), and
 * none of that can reach an H job if no H job ever runs where user code ran. The user crew starts at the
 * first user job, so a pool that never runs one pays nothing for it.
 */
type Crew = 'h' | 'user';

/** What the watchdog watches while a step runs: any change of these is a sign of life. */
interface Watch {
  readonly control: ControlBlock;
  readonly answered: boolean[];
  answers: number;
  lastAnswers: number;
  progress: number;
  done: number;
  since: number;
  /** Fails the step with WORKER_UNRESPONSIVE. */
  fire: (error: HpairError) => void;
}

export interface JobRunnerOptions {
  readonly workers: number;
  readonly schedule: Schedule;
  readonly maxQueue: number;
  readonly resourceLimits: ResourceLimits | undefined;
  /** Nice steps each worker thread lowers itself by (PoolOptions.workerNice). */
  readonly workerNice: number;
  /** A step whose workers complete no tile and answer nothing for this long fails with WORKER_UNRESPONSIVE. */
  readonly watchdogMs: number;
  readonly workerUrl: URL;
  /** The kernels an inline step may name (a worker thread takes its own from its entry module). */
  readonly builtins: BuiltinKernels;
  /** A job's onProgress threw or its promise rejected: the job goes on, and the pool reports the error. */
  readonly progressFailed: (error: unknown, rejected: boolean) => void;
  /** A worker died while no job was running (it has been replaced already). */
  readonly workerCrashed: (error: HpairError) => void;
  /** The queue is empty and no job runs. */
  readonly drained: () => void;
}

/** The runner's share of PoolStats (the H engine adds copiedBytes). */
export type RunnerStats = Omit<PoolStats, 'copiedBytes'>;

/**
 * The generic engine under every job, H or a user's kernel: a fixed set of worker threads that runs jobs
 * one at a time, first in first out, each job's steps on every worker (tiles claimed from an Atomics
 * counter or dealt in strided slices), with cancellation, timeouts, progress and crash recovery.
 * It knows nothing of H: a job arrives as a PreparedJob (see shared/job.ts).
 */
export class JobRunner {
  readonly size: number;
  readonly #options: JobRunnerOptions;
  /** Each crew's threads; the user crew is empty until the first user job. */
  readonly #crews: Record<Crew, WorkerHandle[]> = { h: [], user: [] };
  #watch: Watch | undefined;
  #watchdog: NodeJS.Timeout | undefined;
  #queue: Entry[] = [];
  #running: Entry | undefined;
  #idle: Promise<void> = Promise.resolve();
  #closing: Promise<void> | undefined;
  /** Workers whose built-ins a user kernel changed: replaced once the job is over. */
  readonly #tainted = new Set<WorkerHandle>();
  readonly #counts = { completed: 0, failed: 0, inline: 0, workersStarted: 0 };
  /** In microseconds (histograms hold integers ≥ 1). */
  readonly #runTimes = createHistogram();
  readonly #waitTimes = createHistogram();
  readonly #born = performance.now();
  #busyMs = 0;
  /** Jobs the pool runs for itself (the warm-up): in no count, time or drain a caller sees. */
  readonly #quiet = new WeakSet<Entry>();
  /** A caller's job has ended since the queue last drained. */
  #owesDrain = false;

  constructor(options: JobRunnerOptions) {
    this.#options = options;
    this.size = options.workers;
    for (let w = 0; w < this.size; w++) this.#crews.h.push(this.#spawn('h'));
  }

  get #handles(): WorkerHandle[] {
    return [...this.#crews.h, ...this.#crews.user];
  }

  get closed(): boolean {
    return this.#closing !== undefined;
  }

  get queued(): number {
    return this.#queue.length;
  }

  /** A job runs or waits. */
  get busy(): boolean {
    return this.#running !== undefined || this.#queue.length > 0;
  }

  /** Callers' jobs that settled (completed + failed), without stats()'s histogram summaries: cheap enough per job. */
  get settled(): number {
    return this.#counts.completed + this.#counts.failed;
  }

  stats(): RunnerStats {
    const running = this.#running === undefined ? 0 : performance.now() - this.#running.startedAt;
    const life = performance.now() - this.#born;
    return {
      ...this.#counts,
      runMs: summarize(this.#runTimes),
      waitMs: summarize(this.#waitTimes),
      utilization: life > 0 ? Math.min(1, (this.#busyMs + running) / life) : 0,
    };
  }

  async ready(): Promise<void> {
    this.#assertOpen();
    this.#replaceDead('h');
    const handles = this.#crews.h;
    // Idle workers are unref'd: an answer awaited from one would not keep the process alive until it came.
    for (const handle of handles) handle.ref();
    try {
      await Promise.all(handles.map((handle) => handle.call((api) => api.ping())));
    } finally {
      if (this.#running === undefined) for (const handle of handles) handle.unref();
    }
  }

  close(abort: boolean): Promise<void> {
    if (this.#closing !== undefined) {
      // close() then close({ abort: true }): the second call still aborts the running job.
      if (abort) this.#abortRunning();
      return this.#closing;
    }
    for (const entry of this.#queue.splice(0)) {
      entry.reject(new HpairError('POOL_CLOSED', 'the pool was closed before this job started'));
    }
    this.#closing = this.#idle.then(async () => {
      await Promise.all(this.#handles.map((handle) => handle.terminate()));
    });
    if (abort) this.#abortRunning();
    return this.#closing;
  }

  /**
   * Stops everything now: queued jobs and the running one reject with POOL_CLOSED, and the threads are
   * terminated at once instead of at the running tile's end.
   */
  async destroy(): Promise<void> {
    const closing = this.close(true);
    await Promise.all(this.#handles.map((handle) => handle.terminate()));
    await closing;
  }

  #abortRunning(): void {
    this.#running?.cancel(CancelReason.CLOSED, new HpairError('POOL_CLOSED', 'the pool was closed while this job ran'));
  }

  /**
   * Queues a prepared job and resolves with its result. A `quiet` job (the pool's own warm-up) runs like any
   * other but leaves the stats, the latency histograms and the drain event as they were.
   */
  submit<T>(job: PreparedJob<T>, options: JobOptions, quiet = false): Promise<T> {
    this.#assertOpen();
    const signal = options.signal === undefined ? undefined : signalState(options.signal);
    if (signal?.aborted === true) return Promise.reject(new HpairAbortError('the signal was aborted before the job started', signal.reason));
    if (this.#running !== undefined && this.#queue.length >= this.#options.maxQueue) {
      return Promise.reject(new HpairError('QUEUE_FULL', `the pool's queue already holds maxQueue = ${this.#options.maxQueue} jobs`));
    }
    return new Promise<T>((resolve, reject) => {
      const entry = createEntry(job as PreparedJob<unknown>, options, resolve as (value: unknown) => void, reject, {
        settled: (ok) => {
          if (!quiet) this.#counts[ok ? 'completed' : 'failed']++;
        },
        cancelled: (cancelledEntry) => {
          const queuedAt = this.#queue.indexOf(cancelledEntry);
          if (queuedAt >= 0) this.#queue.splice(queuedAt, 1);
        },
        progressFailed: (error, rejected) => this.#options.progressFailed(error, rejected),
      });
      if (quiet) this.#quiet.add(entry);
      this.#queue.push(entry);
      this.#pump();
    });
  }

  #pump(): void {
    if (this.#running !== undefined) return;
    const entry = this.#queue.shift();
    if (entry === undefined) {
      clearInterval(this.#watchdog); // an idle pool keeps no timer
      this.#watchdog = undefined;
      if (this.#owesDrain) {
        this.#owesDrain = false;
        this.#options.drained();
      }
      return;
    }
    this.#running = entry;
    entry.startedAt = performance.now();
    const quiet = this.#quiet.has(entry);
    if (!quiet) record(this.#waitTimes, entry.startedAt - entry.submittedAt);
    this.#idle = this.#execute(entry).finally(() => {
      if (!quiet) {
        const ran = performance.now() - entry.startedAt;
        this.#busyMs += ran;
        record(this.#runTimes, ran);
      }
      this.#running = undefined;
      if (!quiet) this.#owesDrain = true;
      this.#pump();
    });
  }

  async #execute(entry: Entry): Promise<void> {
    const { job, control, options } = entry;
    const stopped = (): boolean => entry.settled || isCancelled(control);
    let total = 0;
    const report = (): void => entry.progress(Math.min(Atomics.load(control, Slot.PROGRESS), total), total);
    try {
      const steps = await job.start(stopped);
      if (stopped()) return;
      total = steps.reduce((sum, step) => sum + tileCount(step.space), 0);
      if (job.inline) {
        if (!this.#quiet.has(entry)) this.#counts.inline++;
        this.#runInline(steps, entry);
      } else {
        this.#replaceDead('h');
        for (const handle of this.#handles) handle.ref();
        let lastReport = 0;
        const poll = (): void => {
          const now = performance.now();
          if (now - lastReport >= PROGRESS_INTERVAL_MS) {
            lastReport = now;
            report();
          }
        };
        for (let index = 0; index < steps.length; index++) {
          await this.#runStep(stepSpec(steps, index, this.#options.schedule, control), entry, options.onProgress ? poll : undefined);
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
      job.release?.();
      for (const handle of this.#tainted) handle.retire();
      this.#tainted.clear();
      for (const handle of this.#handles) handle.unref();
    }
  }

  /** Small jobs: every step on this thread, tile by tile, as one worker would run them. */
  #runInline(steps: readonly StepPlan[], entry: Entry): void {
    steps.forEach((step, index) => {
      if (step.kernel.kind !== 'builtin') throw new HpairError('INVALID_ARGUMENT', 'only built-in kernels run inline');
      runTiles(builtinKernel(this.#options.builtins, step.kernel.name), stepSpec(steps, index, 'strided', entry.control), 0, 1);
      entry.job.afterStep?.(index);
    });
  }

  /**
   * Posts one step to every worker and waits for all of them (DONE === workers, and each Comlink call
   * answered). Any failure — a kernel error, a dead worker, a cancel — first drains the step: the
   * other workers are told to stop and waited for, so no thread still writes into this job's buffers
   * when the next job starts.
   */
  async #runStep(spec: StepSpec, entry: Entry, poll: (() => void) | undefined): Promise<void> {
    const { control } = spec;
    const crew: Crew = spec.kernel.kind === 'builtin' ? 'h' : 'user';
    if (crew === 'user') this.#staffUserCrew();
    const handles = this.#crews[crew];
    const workers = handles.length;
    Atomics.store(control, Slot.DONE, 0);
    Atomics.store(control, Slot.NEXT_TILE, 0);
    const wire = toWireStep(spec);
    const watch = this.#startWatch(control, workers);
    const calls = handles.map((handle, w) =>
      handle.call<RunOutcome>((api) => api.run(wire, w, workers) as Promise<RunOutcome>).then((outcome) => {
        watch.answered[w] = true;
        watch.answers++;
        if (outcome.tainted !== undefined) this.#tainted.add(handle);
        return outcome;
      }),
    );
    const hung = new Promise<never>((_, reject) => {
      watch.fire = reject;
    });
    hung.catch(() => undefined);
    // The first failure (a kernel's error or a dead thread) fails the step at once, without waiting for the rest.
    const failed = new Promise<never>((_, reject) => {
      for (const call of calls) call.then((outcome: RunOutcome) => (outcome.ok ? undefined : reject(fromRecord(outcome.error))), reject);
    });
    failed.catch(() => undefined);
    let settled = false;
    // Without a progress callback the wait has no timeout, so no timer is armed per step for nothing. A wait
    // that can no longer complete (a worker died, the job was cancelled) is woken below instead, so it never
    // dangles.
    const pollMs = poll === undefined ? Infinity : PROGRESS_INTERVAL_MS;
    try {
      await Promise.race([
        Promise.all([waitAtLeast(control, Slot.DONE, workers, pollMs, () => settled, poll), Promise.all(calls)]),
        failed,
        entry.cancelled,
        hung,
      ]);
    } catch (error) {
      settled = true;
      this.#watch = undefined;
      Atomics.notify(control, Slot.DONE); // the wait above sees `settled` and ends
      requestCancel(control, CancelReason.FAILED);
      entry.reject(error); // the caller hears at once; the pool is busy until the drain is over
      // Threads that let the watchdog fire get no grace: they showed no sign of life for watchdogMs already.
      if ((error as HpairError).code === 'WORKER_UNRESPONSIVE') {
        await Promise.all(handles.filter((_, w) => !watch.answered[w]).map((handle) => handle.terminate()));
      }
      await this.#drain(calls, crew);
      throw error;
    }
    settled = true;
    this.#watch = undefined;
    // Workers skip tiles once CANCEL is set, so a step that "finished" after a cancel is incomplete.
    if (isCancelled(control)) throw new HpairError('ABORTED', 'the job was cancelled');
  }

  /** Watches a step from now on: the interval below fails it once it shows no sign of life for watchdogMs. */
  #startWatch(control: ControlBlock, workers: number): Watch {
    const watch: Watch = { control, answered: new Array<boolean>(workers).fill(false), answers: 0, lastAnswers: 0, progress: 0, done: 0, since: performance.now(), fire: () => undefined };
    this.#watch = watch;
    if (this.#watchdog === undefined) {
      const period = Math.max(1, Math.floor(this.#options.watchdogMs / WATCHDOG_LOOKS));
      // One interval for as long as jobs keep coming (cleared when the queue drains), not a timer per step.
      this.#watchdog = setInterval(() => this.#look(), period);
      this.#watchdog.unref(); // a running job refs its workers, which keep the process alive
    }
    return watch;
  }

  #look(): void {
    const watch = this.#watch;
    if (watch === undefined) return;
    const progress = Atomics.load(watch.control, Slot.PROGRESS);
    const done = Atomics.load(watch.control, Slot.DONE);
    const now = performance.now();
    if (progress !== watch.progress || done !== watch.done || watch.answers !== watch.lastAnswers) {
      watch.progress = progress;
      watch.done = done;
      watch.lastAnswers = watch.answers;
      watch.since = now;
    } else if (now - watch.since >= this.#options.watchdogMs) {
      this.#watch = undefined;
      const silent = watch.answered.length - watch.answers;
      watch.fire(
        new HpairError(
          'WORKER_UNRESPONSIVE',
          `the step's worker threads completed no tile and answered nothing for watchdogMs = ${this.#options.watchdogMs}; ` +
            `the ${silent} of ${watch.answered.length} that had not answered were terminated and are replaced`,
        ),
      );
    }
  }

  async #drain(calls: Promise<unknown>[], crew: Crew): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const grace = new Promise<'stuck'>((resolve) => {
      timer = setTimeout(() => resolve('stuck'), DRAIN_GRACE_MS);
    });
    const outcome = await Promise.race([Promise.allSettled(calls), grace]);
    clearTimeout(timer);
    if (outcome === 'stuck') {
      // A tile that never returns cannot be interrupted from outside its thread: replace the threads.
      await Promise.all(this.#crews[crew].map((handle) => handle.terminate()));
    }
    this.#replaceDead(crew);
  }

  #replaceDead(crew: Crew): void {
    if (this.closed && this.#running === undefined) return;
    this.#crews[crew] = this.#crews[crew].map((handle) => (handle.alive ? handle : this.#spawn(crew)));
  }

  /** The user crew's threads, started at the first user job, and dead ones replaced. */
  #staffUserCrew(): void {
    if (this.#crews.user.length === 0) {
      for (let w = 0; w < this.size; w++) this.#crews.user.push(this.#spawn('user'));
    } else {
      this.#replaceDead('user');
    }
    for (const handle of this.#crews.user) handle.ref();
  }

  #spawn(crew: Crew): WorkerHandle {
    this.#counts.workersStarted++;
    const handle: WorkerHandle = new WorkerHandle(this.#options.workerUrl, this.#options.resourceLimits, this.#options.workerNice, (error) => {
      // A death during a job fails that job (its caller hears); between jobs nobody would, so the pool reports
      // it and starts the replacement now, so the next job does not pay for it. A thread that died before it
      // ever answered is replaced at the next job instead: respawning at once would loop if it cannot start.
      if (this.#running !== undefined || this.closed) return;
      this.#options.workerCrashed(error);
      if (handle.healthy) this.#crews[crew] = this.#crews[crew].map((candidate) => (candidate === handle ? this.#spawn(crew) : candidate));
    });
    return handle;
  }

  #assertOpen(): void {
    if (this.closed) throw new HpairError('POOL_CLOSED', 'the pool is closed');
  }
}

/** Step `index` of a job as it crosses to a worker (or runs inline). */
function stepSpec(steps: readonly StepPlan[], index: number, schedule: Schedule, control: ControlBlock): StepSpec {
  // Field by field: an object spread here cost a small inline job several microseconds per step.
  const { kernel, space, buffers, params } = steps[index];
  return { kernel, space, buffers, params, schedule, control, last: index === steps.length - 1 };
}

function record(histogram: RecordableHistogram, ms: number): void {
  histogram.record(Math.max(1, Math.round(ms * 1000)));
}

function summarize(histogram: RecordableHistogram): LatencySummary {
  if (histogram.count === 0) return { count: 0, mean: 0, p50: 0, p90: 0, p99: 0, max: 0 };
  const ms = (us: number): number => us / 1000;
  return {
    count: histogram.count,
    mean: ms(histogram.mean),
    p50: ms(histogram.percentile(50)),
    p90: ms(histogram.percentile(90)),
    p99: ms(histogram.percentile(99)),
    max: ms(histogram.max),
  };
}
