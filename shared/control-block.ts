/**
 * The job control block: one small SharedArrayBuffer per job that the main thread and the workers
 * read and write with Atomics. Nothing else about a running job is shared between threads, so
 * every cross-thread signal is listed here.
 *
 * Protocol (one step of a job at a time):
 * - Main zeroes DONE and NEXT_TILE, then posts the step to every worker.
 * - Each worker takes tiles (its strided slice, or claims from NEXT_TILE with Atomics.add), checks
 *   CANCEL before every tile, bumps PROGRESS after every tile, and — in a `finally`, so a throwing
 *   kernel cannot skip it — adds 1 to DONE and calls Atomics.notify on DONE.
 * - Main awaits DONE === workers with Atomics.waitAsync(expected = last value seen). waitAsync
 *   compares before sleeping, so a notify that lands between our load and our wait is not lost:
 *   the value already differs and the wait returns "not-equal" at once.
 * - To stop a job (abort, timeout, crash, close), main stores a non-zero reason in CANCEL. Workers
 *   see it at the next tile boundary; a tile is never half-written because workers only check between
 *   tiles. Main never reuses a control block, so a late DONE from a cancelled job cannot be mistaken
 *   for the next job's.
 */
export const Slot = {
  /** Workers that finished the current step. */
  DONE: 0,
  /** Non-zero: stop at the next tile boundary. The value is a CancelReason. */
  CANCEL: 1,
  /** Tiles finished over the whole job (all steps). */
  PROGRESS: 2,
  /** Next tile index to claim, for dynamic scheduling. */
  NEXT_TILE: 3,
} as const;

export const CancelReason = { NONE: 0, ABORTED: 1, TIMEOUT: 2, FAILED: 3, CLOSED: 4 } as const;
export type CancelReason = (typeof CancelReason)[keyof typeof CancelReason];

const INT32_SLOTS = 8;

export type ControlBlock = Int32Array;

/**
 * `shared` false for a job that runs inline: no other thread ever sees its block, and Atomics work on an ordinary
 * buffer too, so it skips a SharedArrayBuffer's allocation and bookkeeping, a measurable share of a tiny job.
 */
export function createControlBlock(shared = true): ControlBlock {
  const bytes = INT32_SLOTS * Int32Array.BYTES_PER_ELEMENT;
  return new Int32Array(shared ? new SharedArrayBuffer(bytes) : new ArrayBuffer(bytes));
}

export function isCancelled(block: ControlBlock): boolean {
  return Atomics.load(block, Slot.CANCEL) !== CancelReason.NONE;
}

/** Sets the cancel reason unless one is already set (the first reason wins). */
export function requestCancel(block: ControlBlock, reason: CancelReason): void {
  Atomics.compareExchange(block, Slot.CANCEL, CancelReason.NONE, reason);
}
