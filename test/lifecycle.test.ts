// The pool as a service holds it: reused, closed, never pinning the process, never blocking the event loop.
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { createPool, demoProblem, hermitianReference } from 'hpair';
import { longJob, randomProblem, rejectionCode, relativeError } from './helpers/support.js';
import { describeShare, observeMainThread } from './helpers/main-thread.js';

const test = suite('lifecycle');

test('a running job keeps the process alive; an idle pool that was never closed does not', async () => {
  const script = fileURLToPath(new URL('./helpers/idle-exit.js', import.meta.url));
  const { code, stdout } = await new Promise<{ code: number; stdout: string }>((resolve) => {
    execFile(process.execPath, [script], { timeout: 30_000 }, (error, out) => resolve({ code: error === null ? 0 : -1, stdout: out }));
  });
  assert.is(code, 0, 'the child was killed by the timeout: something kept it alive');
  assert.is(stdout, 'done 63\nunawaited done 699\n');
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

test('the main thread only waits while a big job runs: its busy time is a small part of the job\'s CPU', async () => {
  const pool = createPool({ workers: 2, inlineFlops: 0 });
  await pool.ready();
  // Big enough that the job's own CPU time dwarfs the fixed cost of posting its steps, on any kernel.
  const size = pool.kernel === 'js' ? 800 : 2000;
  const { expp, distance } = demoProblem(size, size);
  let ticks = 0;
  const timer = setInterval(() => ticks++, 10);
  try {
    const share = await observeMainThread(() => pool.hermitian(expp, distance));
    console.log(`  ${describeShare(`${size}×${size} on ${pool.kernel}`, share)}`);
    // Were the job computed on the calling thread, its CPU time would be most of the process's.
    assert.ok(share.mainCpuMs <= 0.25 * share.processCpuMs, describeShare('the main thread was busy', share));
    // Timers kept firing through the job: the loop turned all along, it was not only free at the end.
    assert.ok(ticks >= 2, `a 10 ms timer fired ${ticks} times during the job`);
  } finally {
    clearInterval(timer);
    await pool.close();
  }
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
