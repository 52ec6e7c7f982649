// Run as a child process with --expose-gc by hardening.test: what a long-running service accumulates.
// Prints one JSON line.
import { createComplexMatrix, createPool, demoProblem } from 'hpair';

const gc = (globalThis as { gc?: () => void }).gc;
if (gc === undefined) throw new Error('run with --expose-gc');
const settle = async (): Promise<void> => {
  gc();
  await new Promise((resolve) => setTimeout(resolve, 300)); // the workers collect after each job
  gc();
};
const scenario = process.argv[2];
// Every error of any thread (hpair's workers and memory thread): one would mean a thread died, and the library's
// fallbacks could hide it from the figures below.
let threadErrors = 0;
process.on('worker', (worker) => worker.on('error', () => threadErrors++));
const pool = createPool({ workers: 2, inlineFlops: 0 });
// 'fresh' starts its jobs at once, as a service's first request would, while the threads are still starting.
if (scenario !== 'fresh') await pool.ready();

if (scenario === 'heap') {
  // Many small jobs through the workers: what stays on the main thread's heap per job.
  const { expp, distance } = demoProblem(9, 5);
  const out = createComplexMatrix(8, 8);
  const run = async (jobs: number): Promise<void> => {
    for (let k = 0; k < jobs; k++) await pool.hermitian(expp, distance, { out });
  };
  await run(500);
  await settle();
  const before = process.memoryUsage().heapUsed;
  const jobs = Number(process.argv[3] ?? 3000);
  await run(jobs);
  await settle();
  process.stdout.write(`${JSON.stringify({ jobs, growth: process.memoryUsage().heapUsed - before })}\n`);
} else if (scenario === 'shared') {
  // Discarded results must not stay alive in the workers.
  const { expp, distance } = demoProblem(1025, 64);
  for (let k = 0; k < 60; k++) await pool.hermitian(expp, distance);
  await settle();
  process.stdout.write(`${JSON.stringify({ arrayBuffers: process.memoryUsage().arrayBuffers, rss: process.memoryUsage().rss })}\n`);
} else if (scenario === 'failed') {
  // Back-to-back jobs that each fail before their last step (a NaN in a fresh 16 MiB expp: the check step
  // rejects it). The workers' idle timer (50 ms) never fires: every 15 jobs this thread collects and, 15 ms
  // later, reads what is still held, which only the workers' own cap lets go of.
  const { distance } = demoProblem(1025, 1024);
  const out = createComplexMatrix(1024, 1024);
  let failed = 0;
  let most = 0;
  for (let k = 1; k <= 60; k++) {
    const expp = createComplexMatrix(1025, 1024);
    expp.data[2 * 1024 * 700] = Number.NaN;
    await pool.hermitian(expp, distance, { out }).catch((error: { code?: string }) => (failed += error.code === 'NON_FINITE' ? 1 : 0));
    if (k % 15 === 0) {
      gc();
      await new Promise((resolve) => setTimeout(resolve, 15)); // this thread frees dead buffers in the background
      gc();
      most = Math.max(most, process.memoryUsage().arrayBuffers);
    }
  }
  process.stdout.write(`${JSON.stringify({ failed, arrayBuffers: most })}\n`);
} else if (scenario === 'fresh') {
  // A new H per job, dropped at once, and no gc() here: V8 must find the dropped ones by itself. N = 601 gives a
  // 5.5 MiB H, which the memory thread maps; N = 300, a 1.4 MiB one, allocated on this thread.
  const { expp, distance } = demoProblem(Number(process.argv[3] ?? 601), 16);
  let collected = 0;
  const registry = new FinalizationRegistry<number>(() => collected++);
  const jobs = Number(process.argv[4] ?? 40);
  for (let k = 0; k < jobs; k++) registry.register((await pool.hermitian(expp, distance)).data.buffer, k);
  await new Promise((resolve) => setTimeout(resolve, 50)); // finalizers run as their own tasks
  // Read after the wait, so the registry outlives it: a collected FinalizationRegistry calls back nothing.
  if (!(registry instanceof FinalizationRegistry)) throw new Error('unreachable');
  process.stdout.write(`${JSON.stringify({ jobs, collected, threadErrors })}\n`);
} else {
  throw new Error(`unknown scenario ${scenario}`);
}
await pool.close();
