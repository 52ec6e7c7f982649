// What a service needs from the pool: cancel, time out, progress, queueing, crash recovery, memory guard.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { Pool, createComplexMatrix, createPool, demoProblem, hermitianReference, type PoolOptions } from 'hpair';
import { longJob, randomProblem, rejectionCode, relativeError } from './helpers/support.js';

const test = suite('service');
const big = demoProblem(2048, 2048);
const small = randomProblem(40, 33, 9);
const smallH = hermitianReference(small.expp, small.distance);
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * A job that cannot finish while a test lasts: longJob's 116 GFLOP on the scalar js kernel and one worker (on any
 * CPU, minutes). A rejection from it is the cancellation's doing, never the job's end, with no clock to read.
 */
const endless = (): Pool => createPool({ workers: 1, kernel: 'js', inlineFlops: 0 });

async function assertHealthy(pool: Pool): Promise<void> {
  const h = await pool.hermitian(small.expp, small.distance);
  assert.ok(relativeError(h, smallH) < 1e-12, 'the pool answered wrongly after a failure');
}

test('abort mid-job: ABORTED while the job is still running, pool usable at once', async () => {
  const pool = endless();
  await pool.ready();
  const controller = new AbortController();
  const job = pool.hermitian(longJob().expp, longJob().distance, { signal: controller.signal });
  const code = rejectionCode(job);
  await sleep(150);
  controller.abort();
  assert.is(await code, 'ABORTED');
  assert.is(pool.stats().completed, 0, 'the job completed instead of being cancelled');
  await assertHealthy(pool);
  await pool.close();
});

test('an already-aborted signal rejects before any work', async () => {
  const pool = createPool({ workers: 2, inlineFlops: 0 });
  const before = pool.stats();
  assert.is(await rejectionCode(pool.hermitian(big.expp, big.distance, { signal: AbortSignal.abort() })), 'ABORTED');
  assert.equal(pool.stats(), before);
  await pool.close();
});

test('timeoutMs: TIMEOUT on a job that would run for minutes, then the pool works', async () => {
  const pool = endless();
  await pool.ready();
  assert.is(await rejectionCode(pool.hermitian(longJob().expp, longJob().distance, { timeoutMs: 60 })), 'TIMEOUT');
  await assertHealthy(pool);
  await pool.close();
});

test('onProgress: monotonic, at most ~20 calls a second, ends at (total, total)', async () => {
  const pool = createPool({ workers: 2, inlineFlops: 0 });
  await pool.ready();
  const calls: Array<[number, number, number]> = [];
  const started = performance.now();
  await pool.hermitian(big.expp, big.distance, { onProgress: (done, total) => calls.push([performance.now(), done, total]) });
  const seconds = (performance.now() - started) / 1000;
  assert.ok(calls.length >= 2, `only ${calls.length} progress calls`);
  assert.ok(calls.length <= 20 * seconds + 3, `${calls.length} calls in ${seconds.toFixed(2)} s`);
  for (let i = 1; i < calls.length; i++) assert.ok(calls[i][1] >= calls[i - 1][1], 'progress went backwards');
  const [, done, total] = calls[calls.length - 1];
  assert.is(done, total);
  await pool.close();
});

test('queue: FIFO, no cross-talk, maxQueue → QUEUE_FULL, queued abort leaves the rest alone', async () => {
  const pool = createPool({ workers: 2, inlineFlops: 0, maxQueue: 2 });
  const problems = [randomProblem(300, 200, 1), randomProblem(31, 17, 2), randomProblem(45, 12, 3)];
  const order: number[] = [];
  const controller = new AbortController();
  const jobs = problems.map(({ expp, distance }, k) =>
    pool.hermitian(expp, distance, k === 1 ? { signal: controller.signal } : {}).then((h) => (order.push(k), h)),
  );
  assert.is(await rejectionCode(pool.hermitian(small.expp, small.distance)), 'QUEUE_FULL');
  controller.abort();
  assert.is(await rejectionCode(jobs[1]), 'ABORTED');
  const [h0, h2] = await Promise.all([jobs[0], jobs[2]]);
  assert.equal(order, [0, 2]);
  assert.ok(relativeError(h0, hermitianReference(problems[0].expp, problems[0].distance)) < 1e-12);
  assert.ok(relativeError(h2, hermitianReference(problems[2].expp, problems[2].distance)) < 1e-12);
  await pool.close();
});

const faultWorker = new URL('./helpers/fault-worker.js', import.meta.url);
function faultyPool(mode: string, options: PoolOptions = {}): Pool {
  process.env.HPAIR_TEST_FAULT = mode; // read by fault-worker.js when each thread starts
  // Strided, so the faulting worker surely takes its 3rd tile in the first step (dynamic claiming could
  // let the other worker take most tiles, and the fault would never fire).
  return new Pool({ workers: 2, inlineFlops: 0, schedule: 'strided', ...options }, faultWorker);
}

for (const [mode, options] of [['exit', {}], ['uncaught', {}], ['oom', { resourceLimits: { maxOldGenerationSizeMb: 16 } }]] as const) {
  test(`a worker that dies mid-job (${mode}) → WORKER_CRASHED; replaced; next job succeeds`, async () => {
    // No ready(): its warm-up runs tiles, which fault-worker.js counts toward the fault, so the fault would fire
    // in the warm-up instead of in this job.
    const pool = faultyPool(mode, options);
    // Had the crash gone unnoticed, the job would have finished (or hung): the code says it was caught.
    assert.is(await rejectionCode(pool.hermitian(big.expp, big.distance)), 'WORKER_CRASHED');
    delete process.env.HPAIR_TEST_FAULT;
    // Replacements start from the same fault worker, but with no fault set they behave.
    await assertHealthy(pool);
    assert.ok(pool.stats().workersStarted >= 3);
    await pool.close();
  });
}

test('TOO_LARGE: over maxBytes or past typed-array limits, refused before allocating', async () => {
  const pool = createPool({ workers: 2, maxBytes: 64 * 2 ** 20 });
  assert.is(await rejectionCode(pool.hermitian(big.expp, big.distance)), 'TOO_LARGE');
  const huge = { rows: 70_000, cols: 1, data: new Float64Array(new SharedArrayBuffer(16 * 70_000)) };
  assert.is(await rejectionCode(pool.hermitian(huge, new Float64Array(1))), 'TOO_LARGE');
  await assertHealthy(pool);
  await pool.close();
  assert.throws(() => createPool({ maxBytes: 0 }), (error: Error) => (error as { code?: string }).code === 'INVALID_ARGUMENT');
});

test('out is untouched by a job refused for bad input', async () => {
  const pool = createPool({ workers: 2, inlineFlops: 0 });
  const { expp, distance } = randomProblem(30, 10, 4);
  expp.data[100] = NaN;
  const out = createComplexMatrix(29, 29);
  out.data.fill(7);
  assert.is(await rejectionCode(pool.hermitian(expp, distance, { out })), 'NON_FINITE');
  assert.ok(out.data.every((v) => v === 7));
  await pool.close();
});

test.run();
