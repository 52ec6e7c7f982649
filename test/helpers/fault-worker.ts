// A worker for fault-injection tests only: it wraps Atomics.add so that, when a worker reports its
// HPAIR_TEST_FAULT_AT-th tile (PROGRESS is control slot 2), it dies the way HPAIR_TEST_FAULT says,
// then loads hpair's real worker unchanged. Production code has no fault hooks.
// Only odd thread ids fault, so of a pool's first two workers exactly one dies and one survives.
import { threadId } from 'node:worker_threads';

const mode = threadId % 2 === 1 ? process.env.HPAIR_TEST_FAULT : undefined;
const at = Number(process.env.HPAIR_TEST_FAULT_AT ?? '3');
const PROGRESS = 2;
const add = Atomics.add;
let tiles = 0;
// A death between jobs: the thread exits on its own a while after it started, while the pool is idle.
if (mode === 'exit-when-idle') setTimeout(() => process.exit(3), 300);
Atomics.add = ((array: Int32Array, index: number, value: number): number => {
  if (index === PROGRESS && ++tiles === at) {
    if (mode === 'exit') process.exit(7);
    if (mode === 'oom') {
      const hog: number[][] = [];
      for (;;) hog.push(new Array(1e6).fill(1.5));
    }
    if (mode === 'uncaught') {
      // A microtask queued now runs before the step's answer is posted (that is queued later, when the
      // step returns), so the thread dies mid-step, deterministically. setImmediate raced the next step's
      // message: a worker that took it first finished the whole job before throwing (flaky, seen in CI).
      queueMicrotask(() => {
        throw new Error('injected uncaught error');
      });
    }
  }
  return add(array, index, value);
}) as typeof Atomics.add;
await import(new URL('../../worker.js', import.meta.url).href);
