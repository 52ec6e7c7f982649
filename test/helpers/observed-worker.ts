// A worker for the warm-start tests only: it counts what its thread loads (native addons, through
// process.dlopen) and the tiles it completes (PROGRESS is control slot 2), then loads hpair's real worker
// unchanged. It answers a query on the BroadcastChannel 'hpair-test-observed' with its counts; a thread's
// messages arrive in order, so an answer to a query sent after a job counts everything the job did there.
import { BroadcastChannel, threadId } from 'node:worker_threads';

const PROGRESS = 2;
const counts = { thread: threadId, dlopens: 0, tiles: 0 };
const dlopen = process.dlopen;
process.dlopen = function observedDlopen(this: unknown, ...args: Parameters<typeof process.dlopen>) {
  counts.dlopens++;
  return dlopen.apply(this, args);
} as typeof process.dlopen;
const add = Atomics.add;
Atomics.add = ((array: Int32Array, index: number, value: number): number => {
  if (index === PROGRESS) counts.tiles++;
  return add(array, index, value);
}) as typeof Atomics.add;
const channel = new BroadcastChannel('hpair-test-observed');
channel.unref(); // an idle pool's threads must still let the process exit
channel.onmessage = (event) => {
  const { query } = (event as unknown as { data: { query?: number } }).data;
  if (query !== undefined) channel.postMessage({ answer: query, ...counts });
};
await import(new URL('../../worker.js', import.meta.url).href);
