import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/**
 * This thread's garbage collector, without `--expose-gc` on the command line: the flag is set just long
 * enough for one new context to receive `gc`, then cleared, so no other context (the user's included)
 * sees it. Undefined if the runtime refuses.
 */
function obtainGc(): ((options?: { type?: 'major' | 'minor' }) => void) | undefined {
  try {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as ((options?: { type?: 'major' | 'minor' }) => void) | undefined;
    setFlagsFromString('--no-expose-gc');
    return typeof gc === 'function' ? gc : undefined;
  } catch {
    return undefined;
  }
}

const gc = obtainGc();

/** Collects this thread's garbage; a worker's heap is a few MB, so this takes about a millisecond. */
export function collectGarbage(): void {
  gc?.({ type: 'major' });
}
