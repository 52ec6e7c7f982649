import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { obtainGc } from './obtain-gc.js';

const gc = obtainGc({ setFlagsFromString, runInNewContext });

/** Collects this thread's garbage; a worker's heap is a few MB, so this takes about a millisecond. */
export function collectGarbage(): void {
  gc?.({ type: 'major' });
}
