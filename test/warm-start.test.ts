// pool.ready() pays what a first job would pay once: after it, the memory thread answers, every worker has
// loaded its kernel (the native addon) and run tiles, and the first job loads nothing and starts no thread.
// The warm-up is invisible otherwise: no stat, no 'drain', and the first H is bit-identical to a cold pool's.
// Nothing here is timed: what is checked is what each thread loads and does (test/helpers/observed-worker.ts).
import { BroadcastChannel } from 'node:worker_threads';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { kernelSupported, type KernelChoice } from 'hpair';
import { Pool } from '../workers/pool.js';
import { memoryThreadOnline } from '../workers/memory-thread.js';
import { assertBitIdentical, NATIVE_VARIANTS, randomProblem } from './helpers/support.js';

const test = suite('warm-start');
const observed = new URL('./helpers/observed-worker.js', import.meta.url);
const real = new URL('../worker.js', import.meta.url);

interface Counts {
  thread: number;
  dlopens: number;
  tiles: number;
}

/** The code a promise rejects with (this file's Pool is built from the sources, so its HpairError is its own class). */
async function rejectionCode(promise: Promise<unknown>): Promise<string | undefined> {
  return promise.then(
    (): string | undefined => assert.unreachable('expected a rejection') as never,
    (error: unknown) => (error as { code?: string }).code,
  );
}

let queries = 0;
/** Each observed worker thread's counts, asked for now (answers come after everything the thread did before). */
async function countsOf(threads: number): Promise<Map<number, Counts>> {
  const channel = new BroadcastChannel('hpair-test-observed');
  const query = ++queries;
  const seen = new Map<number, Counts>();
  try {
    return await new Promise((resolve) => {
      channel.onmessage = (event) => {
        const data = (event as unknown as { data: Counts & { answer?: number } }).data;
        if (data.answer !== query) return;
        seen.set(data.thread, { thread: data.thread, dlopens: data.dlopens, tiles: data.tiles });
        if (seen.size === threads) resolve(seen);
      };
      channel.postMessage({ query });
    });
  } finally {
    channel.close();
  }
}

const native = NATIVE_VARIANTS.some((variant) => kernelSupported(variant));

test('before ready() nothing is warm; after it the memory thread answers and every worker has loaded its kernel and run tiles', async () => {
  assert.is(memoryThreadOnline(), false, 'no memory thread before any pool is ready');
  const pool = new Pool({ workers: 2, schedule: 'strided' }, observed);
  let drains = 0;
  pool.on('drain', () => drains++);
  try {
    await pool.ready();
    assert.ok(memoryThreadOnline(), 'the memory thread answered during ready()');
    const warm = await countsOf(2);
    for (const counts of warm.values()) {
      assert.ok(counts.tiles > 0, `worker ${counts.thread} ran tiles during ready()`);
      if (native) assert.ok(counts.dlopens > 0, `worker ${counts.thread} loaded the native addon during ready()`);
    }
    // The warm-up is the pool's own: in no stat and no event.
    const stats = pool.stats();
    assert.equal([stats.completed, stats.failed, stats.inline, stats.runMs.count, stats.waitMs.count, stats.copiedBytes], [0, 0, 0, 0, 0, 0]);
    assert.is(drains, 0);

    // The first job: H at N = M = 512 (large enough to come from the memory thread) loads nothing new anywhere.
    const { expp, distance } = randomProblem(512, 512, 17);
    const h = await pool.hermitian(expp, distance);
    const after = await countsOf(2);
    for (const [thread, counts] of after) {
      assert.is(counts.dlopens, warm.get(thread)!.dlopens, `worker ${thread} loaded nothing during the first job`);
      assert.ok(counts.tiles > warm.get(thread)!.tiles, `worker ${thread} took part in the first job`);
    }
    assert.is(pool.stats().workersStarted, 2, 'no thread started for the first job');
    assert.is(pool.stats().completed, 1);
    assert.is(drains, 1, "one 'drain', after the caller's job");

    // Bit-identical to a pool that never warmed up, and to the warm pool's next job.
    const cold = new Pool({ workers: 2, schedule: 'strided', kernel: pool.kernel }, real);
    try {
      const reference = await cold.hermitian(expp, distance);
      assert.is(reference.kernel, h.kernel);
      assertBitIdentical(h.data, reference.data, 'first H after ready() vs a cold pool');
      assertBitIdentical((await pool.hermitian(expp, distance)).data, reference.data, 'second H');
    } finally {
      await cold.close();
    }
  } finally {
    await pool.close();
  }
});

const kernels: KernelChoice[] = ['wasm-simd', 'js'];
for (const kernel of kernels) {
  test(`${kernel}: after ready() the first H is bit-identical to a cold pool's, and only the caller's job is counted`, async () => {
    const pool = new Pool({ workers: 2, kernel, schedule: 'dynamic' }, observed);
    const cold = new Pool({ workers: 2, kernel, schedule: 'dynamic' }, real);
    try {
      await pool.ready();
      const warm = await countsOf(2);
      assert.ok([...warm.values()].some((counts) => counts.tiles > 0), 'the warm-up ran tiles on the workers');
      for (const [N, M] of [[300, 200], [20, 20]] as const) {
        const { expp, distance } = randomProblem(N, M, N + M);
        const h = await pool.hermitian(expp, distance);
        assert.is(h.kernel, kernel);
        assertBitIdentical(h.data, (await cold.hermitian(expp, distance)).data, `${kernel} at N = ${N}, M = ${M}`);
      }
      const stats = pool.stats();
      assert.is(stats.completed, 2);
      assert.is(stats.inline, 1, 'the small job ran inline, the warm-up is not counted');
    } finally {
      await Promise.all([pool.close(), cold.close()]);
    }
  });
}

test('a pool whose maxBytes no warm-up fits is still ready, and its jobs are refused as before; ready() after close is POOL_CLOSED', async () => {
  // Room for a tiny job, not for the warm-up's job on the workers nor for an H of 4 MiB.
  const pool = new Pool({ workers: 2, maxBytes: 2 * 2 ** 20 }, real);
  try {
    await pool.ready();
    const { expp, distance } = randomProblem(512, 8, 3);
    assert.is(await rejectionCode(pool.hermitian(expp, distance)), 'TOO_LARGE');
    const small = randomProblem(4, 3, 4);
    assert.is((await pool.hermitian(small.expp, small.distance)).rows, 3);
    assert.is(pool.stats().failed, 0, 'a refused job never reached the queue');
  } finally {
    await pool.close();
  }
  assert.is(await rejectionCode(pool.ready()), 'POOL_CLOSED');
});

test.run();
