// What a Node service expects of a pool: await using, destroy, events, stats, recognisable aborts.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { HpairError, Pool, createPool, demoProblem, isHpairError } from 'hpair';
import { longJob, randomProblem, rejectionCode } from './helpers/support.js';

const test = suite('ergonomics');
const small = randomProblem(40, 30, 1);
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

test('await using closes the pool at the end of the scope', async () => {
  let escaped: Pool | undefined;
  {
    await using pool = createPool({ workers: 1 });
    escaped = pool;
    await pool.hermitian(small.expp, small.distance);
    assert.not.ok(pool.closed);
  }
  assert.ok(escaped.closed);
  assert.is(await rejectionCode(escaped.hermitian(small.expp, small.distance)), 'POOL_CLOSED');
});

test('destroy(): the running and queued jobs reject with POOL_CLOSED at once, threads end mid-tile', async () => {
  const pool = createPool({ workers: 2, inlineFlops: 0 });
  await pool.ready();
  const big = longJob();
  const running = rejectionCode(pool.hermitian(big.expp, big.distance));
  const queued = rejectionCode(pool.hermitian(small.expp, small.distance));
  await sleep(100);
  await pool.destroy();
  // Rejected, not finished: destroy() did not wait for the running job.
  assert.is(await running, 'POOL_CLOSED');
  assert.is(await queued, 'POOL_CLOSED');
});

test("'drain' fires when the queue empties; stats() has latency distributions and utilization", async () => {
  const pool = createPool({ workers: 2, inlineFlops: 0 });
  let drains = 0;
  pool.on('drain', () => drains++);
  await Promise.all([0, 1, 2].map(() => pool.hermitian(small.expp, small.distance)));
  await sleep(0);
  assert.is(drains, 1);
  const stats = pool.stats();
  assert.is(stats.runMs.count, 3);
  assert.is(stats.waitMs.count, 3);
  assert.ok(stats.runMs.p50 > 0 && stats.runMs.p50 <= stats.runMs.p99 && stats.runMs.p99 <= stats.runMs.max);
  assert.ok(stats.waitMs.max >= stats.waitMs.p50, 'the queued jobs waited');
  assert.ok(stats.utilization > 0 && stats.utilization <= 1, `utilization ${stats.utilization}`);
  await pool.close();
});

test("a worker that dies between jobs is reported on 'error' and replaced before the next job", async () => {
  // With HPAIR_TEST_FAULT=exit-when-idle, fault-worker.js exits 300 ms after it starts (odd thread ids
  // only); workers copy the environment when they start, so replacements do not inherit the fault.
  process.env.HPAIR_TEST_FAULT = 'exit-when-idle';
  const pool = new Pool({ workers: 2, inlineFlops: 0 }, new URL('./helpers/fault-worker.js', import.meta.url));
  delete process.env.HPAIR_TEST_FAULT;
  const errors: HpairError[] = [];
  pool.on('error', (error) => errors.push(error));
  await pool.ready();
  await sleep(600);
  assert.ok(errors.length >= 1, 'no error event');
  assert.ok(isHpairError(errors[0]) && errors[0].code === 'WORKER_CRASHED');
  const started = pool.stats().workersStarted;
  assert.ok(started >= 3, 'the dead worker was not replaced');
  await pool.hermitian(small.expp, small.distance);
  assert.is(pool.stats().workersStarted, started, 'the next job had to start a worker');
  await pool.close();
});

test('an aborted job rejects with an AbortError carrying the signal’s reason', async () => {
  const pool = createPool({ workers: 2, inlineFlops: 0 });
  const big = demoProblem(1024, 1024);
  const controller = new AbortController();
  const job = pool.hermitian(big.expp, big.distance, { signal: controller.signal });
  const reason = new Error('client went away');
  controller.abort(reason);
  const error = await job.then(() => undefined, (e: unknown) => e as HpairError);
  assert.ok(error !== undefined);
  assert.is(error.name, 'AbortError');
  assert.is(error.code, 'ABORTED');
  assert.ok(error instanceof HpairError);
  assert.is(error.cause, reason);
  const early = await pool.hermitian(small.expp, small.distance, { signal: AbortSignal.abort('stop') }).then(() => undefined, (e: unknown) => e as HpairError);
  assert.ok(early !== undefined);
  assert.is(early.name, 'AbortError');
  assert.is(early.cause, 'stop');
  await pool.close();
});

test.run();
