import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { obtainGc } from './obtain-gc.js';

const gc = obtainGc({ setFlagsFromString, runInNewContext });

/**
 * Collects this thread's garbage: a single major pass between jobs (cheap on a worker's small heap), or with
 * `full` V8's full collection (`gc()` with no options: it collects until nothing more dies) for a thread gone
 * idle. The major pass alone left some of the jobs' SharedArrayBuffers referenced, so their memory stayed
 * mapped after every other thread had dropped them (`npm run bench:service`: idle RSS after a storm).
 */
export function collectGarbage(full = false): void {
  if (full) gc?.();
  else gc?.({ type: 'major' });
}
