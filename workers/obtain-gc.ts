/** A thread's garbage collector, as V8's `gc` global gives it. */
export type CollectGarbage = (options?: { type?: 'major' | 'minor' }) => void;

/** The two Node modules obtainGc needs, passed in so that its source stands alone. */
export interface GcSources {
  readonly setFlagsFromString: (flags: string) => void;
  readonly runInNewContext: (code: string) => unknown;
}

/**
 * This thread's garbage collector, without `--expose-gc` on the command line: the flag is set just long
 * enough for one new context to receive `gc`, then cleared, so no other context (the user's included)
 * sees it. Undefined if the runtime refuses.
 *
 * V8's flags are process-wide, and hpair's threads start together: another thread may clear the flag between
 * this thread's set and its new context, which then has no `gc` (measured: 6 of 90 workers started three at a
 * time lost it). Such a worker never collected, so it held every job's buffers until the pool closed. Hence
 * the retry: a thread fails an attempt only when another thread's clear lands inside it, and every thread's
 * last step is a clear, so the flag always ends cleared.
 *
 * Self-contained (no module-level names): the memory thread's inline source embeds it as text.
 */
export function obtainGc(node: GcSources): CollectGarbage | undefined {
  for (let attempt = 0; attempt < 100; attempt++) {
    let gc: unknown;
    try {
      node.setFlagsFromString('--expose-gc');
      gc = node.runInNewContext('typeof gc === "function" ? gc : undefined');
    } catch {
      return undefined;
    } finally {
      try {
        node.setFlagsFromString('--no-expose-gc');
      } catch {
        // nothing was set
      }
    }
    if (typeof gc === 'function') return gc as CollectGarbage;
  }
  return undefined;
}
