// User kernels against H: whatever a pool.run kernel does to its thread (built-ins replaced from a timer or a
// microtask after its step, Atomics broken, the message port emptied, a tile that never returns), the next H is
// bit-identical to a clean pool's, on every H kernel that runs here, and the pool stays usable. Nothing here
// waits on a wall clock: a step that hangs is ended by the pool's watchdog, and the test then sees its error.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { Pool, createPool, kernelSupported, type KernelChoice } from 'hpair';
import { attackNames } from './helpers/hostile-kernels.js';
import { assertBitIdentical, NATIVE_VARIANTS, randomProblem, rejectionCode } from './helpers/support.js';

const test = suite('isolation');
const hostile = new URL('./helpers/hostile-kernels.js', import.meta.url);
const kernels = new URL('./helpers/kernels.js', import.meta.url);
const WORKERS = 2;
/** Short, so a broken step ends soon; every legitimate tile here takes well under it on any machine. */
const WATCHDOG_MS = 3000;

const variants: KernelChoice[] = [];
if (NATIVE_VARIANTS.some((variant) => kernelSupported(variant))) variants.push('native');
else console.log('  note: isolation on the native kernel skipped: no native path runs here');
if (kernelSupported('wasm-simd')) variants.push('wasm-simd');
else console.log('  note: isolation on wasm-simd skipped: this Node has no WebAssembly SIMD');
variants.push('js');

const problem = randomProblem(181, 67, 17);
const sharedInt32 = (length: number): Int32Array => new Int32Array(new SharedArrayBuffer(4 * length));

/** H from a pool that never ran user code. */
const clean = new Map<KernelChoice, Float64Array>();
async function cleanH(kernel: KernelChoice): Promise<Float64Array> {
  let h = clean.get(kernel);
  if (h === undefined) {
    const pool = createPool({ workers: WORKERS, kernel, inlineFlops: 0 });
    try {
      h = (await pool.hermitian(problem.expp, problem.distance)).data;
    } finally {
      await pool.close();
    }
    clean.set(kernel, h);
  }
  return h;
}

/** A user job whose every visit is counted: proves the pool still runs user kernels, completely. */
async function coverage(pool: Pool): Promise<void> {
  const n = 1000;
  const visits = sharedInt32(n);
  await pool.run({ module: kernels, export: 'coverage', space: { kind: 'range', n, tile: 7 }, buffers: { visits }, params: { n, kind: 'range' } });
  for (let i = 0; i < n; i++) if (visits[i] !== 1) assert.unreachable(`index ${i} visited ${visits[i]} times`);
}

/**
 * Waits until every worker's deferred attack has run (the hostile kernel counts them in `fired`). Polled with a
 * timer: a pending Atomics.waitAsync does not keep the process alive, and idle workers do not either.
 */
async function attacksLanded(fired: Int32Array): Promise<void> {
  while (Atomics.load(fired, 0) < WORKERS) await new Promise((resolve) => setTimeout(resolve, 5));
}

for (const kernel of variants) {
  for (const attack of attackNames) {
    test(`${kernel}: a user kernel's ${attack} → the next H is a clean pool's, bit for bit; the pool stays usable`, async () => {
      const reference = await cleanH(kernel);
      const pool = createPool({ workers: WORKERS, kernel, inlineFlops: 0, watchdogMs: WATCHDOG_MS });
      try {
        assertBitIdentical((await pool.hermitian(problem.expp, problem.distance)).data, reference, 'H before the attack');
        const fired = sharedInt32(1);
        await pool.run({ module: hostile, export: 'attacker', space: { kind: 'range', n: 4, tile: 1 }, buffers: { fired }, params: { attack } });
        await attacksLanded(fired);
        assertBitIdentical((await pool.hermitian(problem.expp, problem.distance)).data, reference, 'H after the attack');
        // The attacked user threads: the next user job either runs on them correctly or fails with a typed error
        // (they are refused, or the watchdog ends a step they cannot hear), and the one after runs on new threads.
        try {
          await coverage(pool);
        } catch (error) {
          assert.ok(['WORKER_CRASHED', 'WORKER_UNRESPONSIVE'].includes(await rejectionCode(Promise.reject(error))), String(error));
        }
        await coverage(pool);
        assertBitIdentical((await pool.hermitian(problem.expp, problem.distance)).data, reference, 'H at the end');
      } finally {
        await pool.destroy();
      }
    });
  }
}

test('a kernel that breaks its own tile loop (Atomics.add during its tile) → WORKER_UNRESPONSIVE by the watchdog; the pool goes on', async () => {
  const pool = createPool({ workers: WORKERS, inlineFlops: 0, watchdogMs: WATCHDOG_MS });
  try {
    const job = pool.run({ module: hostile, export: 'breaksOwnLoop', space: { kind: 'range', n: 8, tile: 1 }, buffers: {} });
    assert.is(await rejectionCode(job), 'WORKER_UNRESPONSIVE');
    await coverage(pool);
    const reference = await cleanH(pool.kernel.startsWith('native') ? 'native' : pool.kernel);
    assertBitIdentical((await pool.hermitian(problem.expp, problem.distance)).data, reference, 'H after the stuck job');
  } finally {
    await pool.destroy();
  }
});

test('a tile that never returns, with no timeoutMs: the watchdog ends the job; queued jobs then run', async () => {
  const pool = createPool({ workers: WORKERS, inlineFlops: 0, watchdogMs: WATCHDOG_MS });
  try {
    const stuck = pool.run({ module: hostile, export: 'spins', space: { kind: 'range', n: 4, tile: 1 }, buffers: {} });
    const queuedH = pool.hermitian(problem.expp, problem.distance);
    const queuedRun = coverage(pool);
    assert.is(await rejectionCode(stuck), 'WORKER_UNRESPONSIVE');
    const reference = await cleanH(pool.kernel.startsWith('native') ? 'native' : pool.kernel);
    assertBitIdentical((await queuedH).data, reference, 'the H queued behind the stuck job');
    await queuedRun;
    const errors: string[] = [];
    pool.on('error', (error) => errors.push(error.code));
    await coverage(pool);
    assert.equal(errors, [], 'the terminated threads were reported as crashes between jobs');
  } finally {
    await pool.destroy();
  }
});

for (const mode of ['spin', 'deaf'] as const) {
  test(`an H job whose worker ${mode === 'spin' ? 'is stuck in a tile' : 'stops hearing the pool'}, with no timeoutMs → WORKER_UNRESPONSIVE by the watchdog; the next H is exact`, async () => {
    process.env.HPAIR_TEST_STALL = mode;
    const pool = new Pool({ workers: WORKERS, kernel: 'js', inlineFlops: 0, watchdogMs: WATCHDOG_MS }, new URL('./helpers/stall-worker.js', import.meta.url));
    delete process.env.HPAIR_TEST_STALL;
    try {
      const reference = await cleanH('js');
      // A deaf thread finishes the step it is in: the job may complete, and the next one is the one that stalls.
      const first = pool.hermitian(problem.expp, problem.distance);
      const outcome = await first.then(
        (h) => h.data,
        (error: { code?: string }) => error.code,
      );
      if (outcome instanceof Float64Array) {
        assertBitIdentical(outcome, reference, 'the H job the deaf thread finished');
        assert.is(await rejectionCode(pool.hermitian(problem.expp, problem.distance)), 'WORKER_UNRESPONSIVE');
      } else {
        assert.is(outcome, 'WORKER_UNRESPONSIVE');
      }
      assertBitIdentical((await pool.hermitian(problem.expp, problem.distance)).data, reference, 'H on the replacement threads');
    } finally {
      await pool.destroy();
    }
  });
}

test('a kernel module that changes a built-in when imported → KERNEL_FAILED, no tile ran; H and later user jobs are fine', async () => {
  const pool = createPool({ workers: WORKERS, inlineFlops: 0, watchdogMs: WATCHDOG_MS });
  try {
    const ran = sharedInt32(1);
    const job = pool.run({ module: new URL('./helpers/polluting-kernel.js', import.meta.url), space: { kind: 'range', n: 16, tile: 1 }, buffers: { ran } });
    assert.is(await rejectionCode(job), 'KERNEL_FAILED');
    assert.is(Atomics.load(ran, 0), 0, 'tiles ran on a thread the import had changed');
    await coverage(pool);
    const reference = await cleanH(pool.kernel.startsWith('native') ? 'native' : pool.kernel);
    assertBitIdentical((await pool.hermitian(problem.expp, problem.distance)).data, reference, 'H after the polluting import');
  } finally {
    await pool.destroy();
  }
});

test('a user job never runs on an H thread and an H job never on a user thread', async () => {
  const pool = createPool({ workers: WORKERS, inlineFlops: 0 });
  try {
    await pool.hermitian(problem.expp, problem.distance);
    assert.is(pool.stats().workersStarted, WORKERS, 'H threads only, until the first user job');
    await coverage(pool);
    assert.is(pool.stats().workersStarted, 2 * WORKERS, 'the first user job starts its own threads');
    await pool.hermitian(problem.expp, problem.distance);
    await coverage(pool);
    assert.is(pool.stats().workersStarted, 2 * WORKERS, 'later jobs of either kind reuse their own threads');
  } finally {
    await pool.close();
  }
});

test('kernel errors whose message, stack, name or prototype cannot be read → KERNEL_FAILED, never a raw error', async () => {
  const pool = createPool({ workers: WORKERS, inlineFlops: 0 });
  try {
    for (const how of ['getters', 'proxy', 'symbol', 'toString']) {
      const job = pool.run({ module: hostile, export: 'throwsUnreadable', space: { kind: 'range', n: 2, tile: 1 }, buffers: {}, params: { how } });
      assert.is(await rejectionCode(job), 'KERNEL_FAILED', how);
    }
    await coverage(pool);
  } finally {
    await pool.close();
  }
});

test('watchdogMs is checked: 1 to 2^31 − 1', () => {
  for (const bad of [0, -1, Number.NaN, Infinity, 2 ** 31, '100']) {
    assert.throws(() => createPool({ workers: 1, watchdogMs: bad as number }), (error: Error) => (error as { code?: string }).code === 'INVALID_ARGUMENT', String(bad));
  }
});

test.run();
