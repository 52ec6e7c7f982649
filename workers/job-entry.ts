import { CancelReason, createControlBlock, requestCancel, type ControlBlock } from '../shared/control-block.js';
import { HpairAbortError, HpairError } from '../shared/errors.js';
import type { PreparedJob } from '../shared/job.js';
import type { JobOptions } from './options.js';

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
  /** onProgress threw: the job goes on without it, and the error is reported here. */
  progressFailed(error: unknown): void;
}

export function createEntry(
  job: PreparedJob<unknown>,
  options: JobOptions,
  resolve: (value: unknown) => void,
  reject: (error: unknown) => void,
  hooks: EntryHooks,
): Entry {
  const control = createControlBlock();
  let cancelWith: (error: HpairError) => void = () => undefined;
  const cancelled = new Promise<never>((_, rejectCancelled) => {
    cancelWith = rejectCancelled;
  });
  cancelled.catch(() => undefined);
  let progressBroken = false;
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
        options.onProgress(done, total);
      } catch (error) {
        progressBroken = true;
        hooks.progressFailed(error);
      }
    },
    dispose: () => undefined,
  };
  const onAbort = (): void =>
    entry.cancel(CancelReason.ABORTED, new HpairAbortError('the job was aborted', options.signal?.reason));
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
