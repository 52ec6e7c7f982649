import type { SharedView } from '../kernel/contract.js';
import type { IndexSpace } from '../shared/index-space.js';
import type { KernelRef } from './protocol.js';

/** One step of a job before the pool adds its control block and schedule. */
export interface StepPlan {
  readonly kernel: KernelRef;
  readonly space: IndexSpace;
  readonly buffers: Readonly<Record<string, SharedView>>;
  readonly params: Readonly<Record<string, unknown>>;
}

/**
 * A job the pool can run: steps in order (each a barrier: step s+1 starts after every tile of step s),
 * a check between steps that may fail the job, and the value it resolves with.
 */
export interface PreparedJob<T> {
  readonly steps: readonly StepPlan[];
  /** Run on the calling thread: true when waking the workers would cost more than the work. */
  readonly inline: boolean;
  /** Bytes copied into shared memory because an input was not shared already. */
  readonly copiedBytes: number;
  /** Throws (an HpairError) to fail the job after step `step`. */
  afterStep?(step: number): void;
  result(): T;
}
