// A service's thread that goes quiet after a burst: the pool collects while it idles, so the burst's dropped
// results are freed without anyone calling gc() and without the thread allocating anything more.
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { createComplexMatrix, createPool, demoProblem } from 'hpair';

const test = suite('idle-collect');

/** Waits (polling, so the wait itself allocates next to nothing) until `done()` or a liveness bound passes. */
async function until(done: () => boolean, boundMs: number): Promise<boolean> {
  const end = performance.now() + boundMs;
  while (!done() && performance.now() < end) await new Promise((resolve) => setTimeout(resolve, 20));
  return done();
}

test('dropped results of a burst are collected while the pool idles, with no manual collection', async () => {
  const pool = createPool({ workers: 2, inlineFlops: 0, idleCollectMs: 50 });
  try {
    const { expp, distance } = demoProblem(300, 16); // a 1.4 MiB H each: 30 of them pass the 16 MiB mark
    let collected = 0;
    const registry = new FinalizationRegistry<number>(() => collected++);
    const jobs = 30;
    await Promise.all(Array.from({ length: jobs }, async (_, k) => registry.register((await pool.hermitian(expp, distance)).data.buffer, k)));
    // The bound is for liveness only (the collections come within 750 ms of the drain here).
    assert.ok(await until(() => collected === jobs, 30_000), `${collected} of ${jobs} dropped results collected while idle`);
  } finally {
    await pool.close();
  }
});

test('a burst that brings its own shared memory (inputs read in place, out) has it collected while the pool idles too', async () => {
  // What a service does that streams bodies into shared memory and reuses its H: the pool allocates nothing.
  const pool = createPool({ workers: 2, inlineFlops: 0, idleCollectMs: 50 });
  try {
    let collected = 0;
    const registry = new FinalizationRegistry<number>(() => collected++);
    const jobs = 30;
    const M = 2048; // a 1.6 MiB input each: 30 of them pass the 16 MiB mark with no H allocated
    const held = await Promise.all(
      Array.from({ length: jobs }, async (_, k) => {
        const expp = createComplexMatrix(50, M);
        expp.data.fill(0.5);
        const out = createComplexMatrix(49, 49);
        registry.register(expp.data.buffer, k);
        registry.register(out.data.buffer, k);
        assert.is((await pool.hermitian(expp, new Float64Array(M).fill(1), { out })).data.buffer, out.data.buffer);
        return [expp, out];
      }),
    );
    // Kept while this thread allocates, as a service keeps them while it answers: they move to V8's old
    // generation, which only a full collection frees.
    let junk: unknown[] = [];
    for (let k = 0; k < 3e6; k++) junk.push({ k });
    junk = [];
    held.length = 0;
    // The bound is for liveness only.
    assert.ok(await until(() => collected === 2 * jobs, 30_000), `${collected} of ${2 * jobs} dropped inputs and outs collected while idle`);
  } finally {
    await pool.close();
  }
});

test('the memory a burst freed goes back to the OS while the pool idles: no manual collection, no trim call', async () => {
  // In a child, so that no other test's memory is in the figures; it prints one JSON line.
  const script = fileURLToPath(new URL('./helpers/idle-memory.js', import.meta.url));
  const report = await new Promise<{ skipped?: string; held: number; before: number; peak: number; after: number }>((resolve, reject) => {
    execFile(process.execPath, [script], { timeout: 120_000 }, (error, stdout, stderr) =>
      error === null ? resolve(JSON.parse(stdout)) : reject(new Error(`${error.message}\n${stderr}`)),
    );
  });
  if (report.skipped !== undefined) {
    console.log(`  skipped: ${report.skipped}`);
    return;
  }
  const { held, before, peak, after } = report;
  const figures = `RSS ${before.toFixed(0)} MiB before, ${peak.toFixed(0)} MiB holding ${held} results, ${after.toFixed(0)} MiB once idle`;
  console.log(`  ${figures}`);
  assert.ok(peak - before >= 100, `the burst should have grown RSS by its results (${figures})`);
  assert.ok(after - before <= (peak - before) / 4, `what the burst freed stayed resident: ${figures}`);
});

test('idleCollectMs is checked: 0 (off) to 2^31 − 1', () => {
  for (const bad of [-1, Number.NaN, Infinity, 2 ** 31, '5']) {
    assert.throws(() => createPool({ workers: 1, idleCollectMs: bad as number }), (error: Error) => (error as { code?: string }).code === 'INVALID_ARGUMENT', String(bad));
  }
});

test.run();
