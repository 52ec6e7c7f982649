import type { SharedView } from './kernel-contract.js';
import type { IndexSpace } from './index-space.js';
import type { KernelRef } from './protocol.js';

/** One step of a job before the runner adds its control block and schedule. */
export interface StepPlan {
  readonly kernel: KernelRef;
  readonly space: IndexSpace;
  readonly buffers: Readonly<Record<string, SharedView>>;
  readonly params: Readonly<Record<string, unknown>>;
}

/**
 * A job the runner can run. Nothing is allocated when it is queued: `start` runs when the job reaches the
 * front of the queue and returns its steps, in order (each a barrier: step s+1 starts after every tile of
 * step s). `afterStep` may fail the job between steps; `result` is what it resolves with; `release` drops
 * every reference to the job's buffers once it has settled, so a discarded result can be collected.
 */
export interface PreparedJob<T> {
  /** Run on the calling thread: true when waking the workers would cost more than the work. */
  readonly inline: boolean;
  /** Bytes of the caller's shared memory the job reads or writes in place (an input not copied, an `out`). */
  readonly borrowedBytes?: number;
  /**
   * Allocates, copies what must be copied, and lays out the steps. It may yield between chunks of work
   * (so the event loop stays free) and must stop early, returning anything, once `cancelled()` is true.
   */
  start(cancelled: () => boolean): Promise<readonly StepPlan[]> | readonly StepPlan[];
  /** Throws (an HpairError) to fail the job after step `step`. */
  afterStep?(step: number): void;
  result(): T;
  release?(): void;
}
