// Run as a child process by idle-collect.test, with no --expose-gc and no gc() anywhere: a burst of jobs whose
// results are all held at once, then dropped, and the process's resident memory while the pool idles.
// Prints one JSON line: RSS before the burst, at its peak, and once it has come back (or the liveness bound passed).
import { createRequire } from 'node:module';
import { createPool, demoProblem, nativeAddonFile } from 'hpair';

const MiB = 2 ** 20;
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Why this process cannot give freed memory back by itself, or undefined when it can. */
function whyNoTrim(): string | undefined {
  const file = nativeAddonFile();
  if (file === undefined) return 'the native addon does not load here';
  const addon = createRequire(import.meta.url)(file) as { trimMemory?: unknown };
  if (typeof addon.trimMemory !== 'function') return 'the native addon has no trimMemory (built before it existed)';
  const glibc = (process.report.getReport() as { header?: { glibcVersionRuntime?: string } }).header?.glibcVersionRuntime;
  return glibc === undefined ? 'the C library is not glibc' : undefined;
}

const skipped = whyNoTrim();
if (skipped !== undefined) {
  process.stdout.write(`${JSON.stringify({ skipped })}\n`);
} else {
  const pool = createPool({ workers: 2, inlineFlops: 0, idleCollectMs: 50 });
  await pool.ready();
  await sleep(500);
  const before = process.memoryUsage().rss;
  // N = 200: a 633 KB H, under the mmap threshold, so it comes from malloc's arenas; all held at once.
  const { expp, distance } = demoProblem(200, 64);
  let results = await Promise.all(Array.from({ length: 300 }, () => pool.hermitian(expp, distance)));
  const held = results.length;
  const peak = process.memoryUsage().rss;
  results = [];
  // The collections come at 50, 100, 200 and 400 ms of idleness; the bound is for liveness only.
  let after = process.memoryUsage().rss;
  for (let waited = 0; waited < 20_000 && after - before > (peak - before) / 4; waited += 100) {
    await sleep(100);
    after = process.memoryUsage().rss;
  }
  process.stdout.write(`${JSON.stringify({ held, before: before / MiB, peak: peak / MiB, after: after / MiB })}\n`);
  await pool.close();
}
