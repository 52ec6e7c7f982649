// The pool as a service holds it: reused, closed, never pinning the process, never blocking the event loop.
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { createPool, demoProblem, hermitianReference } from 'hpair';
import { longJob, randomProblem, rejectionCode, relativeError } from './helpers/support.js';

const test = suite('lifecycle');

test('a running job keeps the process alive; an idle pool that was never closed does not', async () => {
  const script = fileURLToPath(new URL('./helpers/idle-exit.js', import.meta.url));
  const started = Date.now();
  const { code, stdout } = await new Promise<{ code: number; stdout: string }>((resolve) => {
    execFile(process.execPath, [script], { timeout: 30_000 }, (error, out) => resolve({ code: error === null ? 0 : -1, stdout: out }));
  });
  assert.is(code, 0, 'the child was killed by the timeout: something kept it alive');
  assert.is(stdout, 'done 63\nunawaited done 699\n');
  assert.ok(Date.now() - started < 15_000);
});

test('close(): queued jobs reject with POOL_CLOSED, the running one finishes, later calls reject', async () => {
  const pool = createPool({ workers: 2, inlineFlops: 0 });
  const big = demoProblem(400, 300);
  const small = randomProblem(10, 5, 1);
  const running = pool.hermitian(big.expp, big.distance);
  const queued = rejectionCode(pool.hermitian(small.expp, small.distance));
  await Promise.resolve();
  assert.is(pool.queued, 1);
  const closed = pool.close();
  assert.is(pool.close(), closed, 'close() twice returns the same promise');
  assert.is(await queued, 'POOL_CLOSED');
  const h = await running;
  assert.is(h.rows, 399);
  await closed;
  assert.ok(pool.closed);
  assert.is(await rejectionCode(pool.hermitian(small.expp, small.distance)), 'POOL_CLOSED');
  assert.is(await rejectionCode(pool.ready()), 'POOL_CLOSED');
});

test('close({ abort: true }) rejects the running job with POOL_CLOSED', async () => {
  const pool = createPool({ workers: 2, inlineFlops: 0 });
  const { expp, distance } = longJob();
  const running = rejectionCode(pool.hermitian(expp, distance));
  await new Promise((resolve) => setTimeout(resolve, 30));
  await pool.close({ abort: true });
  assert.is(await running, 'POOL_CLOSED');
});

test('the event loop stays free during a job of a second or more (p99 delay ≤ 20 ms)', async () => {
  const pool = createPool({ workers: 2, inlineFlops: 0 });
  await pool.ready();
  // The job is grown (work ∝ size³) until it takes ≥ 1 s on whichever kernel and CPU this is.
  let size = pool.kernel === 'js' ? 1600 : 2400;
  let measured: { elapsed: number; ticks: number; p99: number } | undefined;
  for (let attempt = 0; attempt < 4 && (measured === undefined || measured.elapsed < 1000); attempt++) {
    if (measured !== undefined) size = Math.ceil(size * Math.cbrt(1400 / measured.elapsed));
    const { expp, distance } = demoProblem(size, size);
    const histogram = monitorEventLoopDelay({ resolution: 5 });
    let ticks = 0;
    const timer = setInterval(() => ticks++, 10);
    histogram.enable();
    const started = performance.now();
    await pool.hermitian(expp, distance);
    const elapsed = performance.now() - started;
    histogram.disable();
    clearInterval(timer);
    measured = { elapsed, ticks, p99: histogram.percentile(99) / 1e6 };
  }
  await pool.close();
  const { elapsed, ticks, p99 } = measured!;
  assert.ok(elapsed >= 1000, `the job of ${size}×${size} took only ${elapsed.toFixed(0)} ms`);
  assert.ok(ticks >= elapsed / 10 / 2, `a 10 ms timer fired ${ticks} times in ${elapsed.toFixed(0)} ms`);
  assert.ok(p99 <= 20, `event-loop delay p99 = ${p99.toFixed(1)} ms`);
});

test('results stay correct after many jobs of changing sizes (scratch reuse)', async () => {
  const pool = createPool({ workers: 2, inlineFlops: 0 });
  for (const [N, M] of [[60, 61], [20, 9], [61, 60], [3, 2], [40, 80]]) {
    const { expp, distance } = randomProblem(N, M, N + M);
    const h = await pool.hermitian(expp, distance);
    assert.ok(relativeError(h, hermitianReference(expp, distance)) < 1e-12, `${N}×${M}`);
  }
  await pool.close();
});

test.run();
