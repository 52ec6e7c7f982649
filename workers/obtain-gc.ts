import { setFlagsFromString } from 'node:v8';

/** A thread's garbage collector, as V8's `gc` global gives it. */
export type CollectGarbage = (options?: { type?: 'major' | 'minor' }) => void;

/** The two Node modules obtainGc needs, passed in so that its source stands alone. */
export interface GcSources {
  readonly setFlagsFromString: (flags: string) => void;
  readonly runInNewContext: (code: string) => unknown;
}

/**
 * This thread's garbage collector, without `--expose-gc` on the command line: the flag is set just long
 * enough for one new context to receive `gc`, then cleared, so only a context made in that instant (on any
 * thread: V8's flags are process-wide) sees it. Where `gc` is exposed already (`node --expose-gc`), it is taken
 * as it is and the flag is left alone. Undefined if the runtime refuses.
 *
 * hpair's threads start together, so another thread may clear the flag between this thread's set and its new
 * context, which then has no `gc` (without retries, hardening.test's 16-thread check failed in its first round).
 * Such a worker never collected, so it held every job's buffers until the pool closed. Hence the retries: an
 * attempt fails only when another thread's clear lands inside it, so one of them succeeds, and every thread's
 * last step is a clear. (A thread terminated inside its window cannot clear: see clearLeftoverGcFlag.)
 *
 * Under `node --expose-gc-as=NAME` the collector has another name, which this does not look for: no thread gets
 * one, and buffers are freed at V8's ordinary pace.
 *
 * Self-contained (no module-level names): the memory thread's inline source embeds it as text.
 */
export function obtainGc(node: GcSources): CollectGarbage | undefined {
  const probe = 'typeof gc === "function" ? gc : undefined';
  try {
    const exposed = node.runInNewContext(probe);
    if (typeof exposed === 'function') return exposed as CollectGarbage;
  } catch {
    return undefined;
  }
  for (let attempt = 0; attempt < 100; attempt++) {
    let gc: unknown;
    try {
      node.setFlagsFromString('--expose-gc');
      gc = node.runInNewContext(probe);
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

/** Whether this process was started with `gc` exposed (read once, on the main thread, before any thread toggles it). */
const exposedAtStart = typeof (globalThis as { gc?: unknown }).gc === 'function';

/**
 * Clears `--expose-gc` once more after one of hpair's threads exits, unless the process was started with it:
 * a thread terminated between its set and its clear would otherwise leave it set for every later context.
 */
export function clearLeftoverGcFlag(): void {
  if (exposedAtStart) return;
  try {
    setFlagsFromString('--no-expose-gc');
  } catch {
    // the runtime refuses flags: then it set none either
  }
}
