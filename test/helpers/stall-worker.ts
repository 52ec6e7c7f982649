// A worker for watchdog tests only: when HPAIR_TEST_STALL is set as it starts, its first thread (odd thread id)
// stalls at its HPAIR_TEST_STALL_AT-th tile the way the variable says, then loads hpair's real worker
// unchanged. Workers copy the environment when they start, so replacements started after the test deletes
// the variable are healthy.
import { parentPort, threadId } from 'node:worker_threads';

const mode = threadId % 2 === 1 ? process.env.HPAIR_TEST_STALL : undefined;
const at = Number(process.env.HPAIR_TEST_STALL_AT ?? '2');
const PROGRESS = 2;
const add = Atomics.add;
let tiles = 0;
Atomics.add = ((array: Int32Array, index: number, value: number): number => {
  if (index === PROGRESS && ++tiles === at) {
    // A tile that never ends: nothing on this thread runs again.
    if (mode === 'spin') for (;;);
    // The thread goes deaf: it finishes this step, and never hears the next one.
    if (mode === 'deaf') parentPort?.removeAllListeners('message');
  }
  return add(array, index, value);
}) as typeof Atomics.add;
await import(new URL('../../worker.js', import.meta.url).href);
