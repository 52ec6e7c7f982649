// workerNice: the pool's worker threads lower their own scheduling priority, never the caller's thread, and every
// result is the same bits at any value. What the nice value buys (the event loop's delay in a storm) is measured
// by `npm run bench:service`, not here.
import { readFileSync, readdirSync } from 'node:fs';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { createPool, hermitianReference, type Pool } from 'hpair';
import { testIf } from './helpers/children.js';
import { threadNice } from './helpers/priority-kernel.js';
import { assertBitIdentical, randomProblem } from './helpers/support.js';

const test = suite('worker-priority');
const module = new URL('./helpers/priority-kernel.js', import.meta.url);
const linux = process.platform === 'linux';
const linuxTest = testIf(test, 'worker-priority', linux, () => `per-thread nice values are Linux's (this is ${process.platform})`);

/** Nice value of each thread of this process, by thread id. */
function threadNices(): Map<number, number> {
  const nices = new Map<number, number>();
  for (const tid of readdirSync('/proc/self/task')) {
    try {
      nices.set(Number(tid), threadNice(readFileSync(`/proc/self/task/${tid}/stat`, 'latin1')));
    } catch {
      // the thread ended while the list was read
    }
  }
  return nices;
}

async function withPool<T>(options: Parameters<typeof createPool>[0], work: (pool: Pool) => Promise<T>): Promise<T> {
  const pool = createPool(options);
  try {
    return await work(pool);
  } finally {
    await pool.close();
  }
}

const base = linux ? threadNice() : 0;

linuxTest('the H workers and the user-kernel workers run workerNice steps below the caller; the caller and every other thread keep theirs', async () => {
  const before = threadNices();
  const step = 7;
  const want = Math.min(19, base + step);
  await withPool({ workers: 2, inlineFlops: 0, workerNice: step, schedule: 'strided' }, async (pool) => {
    const { expp, distance } = randomProblem(60, 8, 3);
    await pool.hermitian(expp, distance); // starts the H workers
    const nices = new Int32Array(new SharedArrayBuffer(4 * pool.size)).fill(-100);
    await pool.run({ module, export: 'niceness', space: { kind: 'range', n: 64, tile: 1 }, buffers: { nices } }, {});
    assert.equal([...nices], Array(pool.size).fill(want), 'each user-kernel worker saw its own thread at the lowered nice value');
    const started = [...threadNices()].filter(([tid]) => !before.has(tid));
    const lowered = started.filter(([, nice]) => nice === want).length;
    // Two H workers and two user-kernel workers; the memory thread and Node's own threads stay at the caller's.
    assert.is(lowered, 2 * pool.size, `threads the pool started and their nice values: ${JSON.stringify(started)}`);
    assert.is(threadNice(), base, "the caller's thread keeps its priority");
    for (const [tid, nice] of before) {
      const now = threadNices().get(tid);
      if (now !== undefined) assert.is(now, nice, `thread ${tid}, there before the pool, changed priority`);
    }
  });
});

linuxTest('nice is capped at 19: workerNice 19 from a caller already at ' + base + ' gives 19, and the pool works', async () => {
  await withPool({ workers: 2, workerNice: 19, schedule: 'strided' }, async (pool) => {
    const nices = new Int32Array(new SharedArrayBuffer(4 * pool.size)).fill(-100);
    await pool.run({ module, export: 'niceness', space: { kind: 'range', n: 64, tile: 1 }, buffers: { nices } });
    assert.equal([...nices], Array(pool.size).fill(19));
  });
});

test('H from niced workers is bit for bit the H of a default pool and of the reference, on every kernel here', async () => {
  const problem = randomProblem(97, 33, 11);
  const reference = hermitianReference(problem.expp, problem.distance);
  for (const kernel of ['auto', 'wasm-simd', 'js'] as const) {
    const plain = await withPool({ workers: 2, inlineFlops: 0, kernel }, (pool) => pool.hermitian(problem.expp, problem.distance));
    const niced = await withPool({ workers: 2, inlineFlops: 0, kernel, workerNice: 10 }, (pool) => pool.hermitian(problem.expp, problem.distance));
    assertBitIdentical(niced.data, plain.data, `${kernel}: workerNice 10 vs 0`);
    for (let k = 0; k < reference.data.length; k++) {
      if (Math.abs(niced.data[k] - reference.data[k]) > 1e-12 * (1 + Math.abs(reference.data[k]))) assert.unreachable(`${kernel}: H[${k}] = ${niced.data[k]}, reference ${reference.data[k]}`);
    }
  }
});

test('workerNice is checked: an integer from 0 to 19', () => {
  for (const bad of [-1, 20, 1.5, Number.NaN, Infinity, '5', null]) {
    assert.throws(() => createPool({ workers: 1, workerNice: bad as number }), (error: Error) => (error as { code?: string }).code === 'INVALID_ARGUMENT', String(bad));
  }
});

test.run();
