import { CancelReason, createControlBlock, requestCancel, type ControlBlock } from '../shared/control-block.js';
import { HpairAbortError, HpairError } from '../shared/errors.js';
import type { PreparedJob } from '../shared/job.js';
import { signalState, type JobOptions } from './options.js';

/**
 * A submitted job's bookkeeping: its control block, its settle-once promise callbacks, and the wiring of
 * its `signal` and `timeoutMs` to a cancel. Cancelling rejects the caller at once and sets the control
 * block's CANCEL flag; the pool still waits for the workers to stop before it starts the next job.
 */
export interface Entry {
  readonly job: PreparedJob<unknown>;
  readonly options: JobOptions;
  readonly control: ControlBlock;
  /** Rejects when the job is cancelled (abort, timeout, close); raced against every wait. */
  readonly cancelled: Promise<never>;
  cancel(reason: CancelReason, error: HpairError): void;
  /** Calls the job's onProgress, unless the job has settled or onProgress threw before. */
  progress(done: number, total: number): void;
  resolve(value: unknown): void;
  reject(error: unknown): void;
  settled: boolean;
  /** performance.now() at submission and at start (when the runner began it). */
  readonly submittedAt: number;
  startedAt: number;
  dispose(): void;
}

export interface EntryHooks {
  /** The job's promise settled: resolved (true) or rejected (false). */
  settled(ok: boolean): void;
  /** The job was cancelled (abort, timeout, close): take it out of the queue if it is still there. */
  cancelled(entry: Entry): void;
  /** onProgress threw (rejected false) or its promise rejected (true): the job goes on without it, and the error is reported here. */
  progressFailed(error: unknown, rejected: boolean): void;
}

export function createEntry(
  job: PreparedJob<unknown>,
  options: JobOptions,
  resolve: (value: unknown) => void,
  reject: (error: unknown) => void,
  hooks: EntryHooks,
): Entry {
  const control = createControlBlock(!job.inline);
  let cancelWith: (error: HpairError) => void = () => undefined;
  const cancelled = new Promise<never>((_, rejectCancelled) => {
    cancelWith = rejectCancelled;
  });
  cancelled.catch(() => undefined);
  let progressBroken = false;
  const { signal } = options;
  let onAbort: (() => void) | undefined;
  let timer: NodeJS.Timeout | undefined;
  const entry: Entry = {
    job,
    options,
    control,
    cancelled,
    settled: false,
    submittedAt: performance.now(),
    startedAt: 0,
    resolve: (value) => {
      if (entry.settled) return;
      entry.settled = true;
      entry.dispose();
      hooks.settled(true);
      resolve(value);
    },
    reject: (error) => {
      if (entry.settled) return;
      entry.settled = true;
      entry.dispose();
      hooks.settled(false);
      reject(error);
    },
    cancel: (reason, error) => {
      requestCancel(control, reason);
      hooks.cancelled(entry);
      // Reject at once; the pool stays busy until the workers reach a tile boundary (see #execute).
      entry.reject(error);
      cancelWith(error);
    },
    progress: (done, total) => {
      if (entry.settled || progressBroken || options.onProgress === undefined) return;
      try {
        const returned: unknown = options.onProgress(done, total);
        // An async onProgress that rejects would otherwise be an unhandled rejection: the process would exit.
        if (isThenable(returned)) {
          Promise.resolve(returned).then(undefined, (error: unknown) => {
            if (progressBroken) return;
            progressBroken = true;
            hooks.progressFailed(error, true);
          });
        }
      } catch (error) {
        progressBroken = true;
        hooks.progressFailed(error, false);
      }
    },
    // Set here, never assigned later: storing a new closure into a property of this object kept every entry (and
    // through `resolve`, its job's result) alive past young-generation collections until a full one, so each new
    // H of a run of small jobs stayed allocated and the next one came from fresh pages.
    dispose: () => {
      if (onAbort !== undefined) Reflect.apply(removeListener, signal, ['abort', onAbort]);
      if (timer !== undefined) clearTimeout(timer);
    },
  };
  if (signal !== undefined) {
    onAbort = () => entry.cancel(CancelReason.ABORTED, new HpairAbortError('the job was aborted', signalState(signal).reason));
    // EventTarget's own methods: a signal (checked to be a real one) may carry own properties that shadow them.
    Reflect.apply(addListener, signal, ['abort', onAbort, { once: true }]);
  }
  if (options.timeoutMs !== undefined) {
    timer = setTimeout(
      () => entry.cancel(CancelReason.TIMEOUT, new HpairError('TIMEOUT', `the job did not finish within timeoutMs = ${options.timeoutMs}`)),
      options.timeoutMs,
    );
    // A pending deadline must not keep an otherwise finished process alive; a running job refs the workers.
    timer.unref();
  }
  return entry;
}

const addListener = EventTarget.prototype.addEventListener;
const removeListener = EventTarget.prototype.removeEventListener;

/** Whether a value is a promise-like; reading `then` may itself throw (a getter), which counts as onProgress throwing. */
function isThenable(value: unknown): value is PromiseLike<unknown> {
  return (typeof value === 'object' || typeof value === 'function') && value !== null && typeof (value as { then?: unknown }).then === 'function';
}
