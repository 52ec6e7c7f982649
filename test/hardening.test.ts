// A long-running service and a hostile caller: no stalls, no leaks, no amplification, only HpairErrors.
import { execFile } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { createComplexMatrix, createPool, demoProblem, hermitian, hermitianReference, kernelSupported, type ComplexMatrix, type KernelVariant, type Pool } from 'hpair';
import { obtainGc } from '../workers/obtain-gc.js';
import { assertBitIdentical, longJob, NATIVE_VARIANTS, randomProblem, rejectionCode, relativeError } from './helpers/support.js';
import { describeShare, observeMainThread } from './helpers/main-thread.js';

const test = suite('hardening');
const kernels = new URL('./helpers/kernels.js', import.meta.url);
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

function child(script: string, args: string[], env: Record<string, string> = {}): Promise<Record<string, number>> {
  return new Promise((resolve, reject) => {
    const options = { timeout: 120_000, env: { ...process.env, ...env } };
    execFile(process.execPath, ['--expose-gc', fileURLToPath(new URL(script, import.meta.url)), ...args], options, (error, stdout, stderr) =>
      error === null ? resolve(JSON.parse(stdout) as Record<string, number>) : reject(new Error(`${error.message}\n${stderr}`)),
    );
  });
}

test('amplification: expp of (8000, 1) goes to the workers (H is 976 MiB of zeros); the caller only waits', async () => {
  const pool = createPool({ workers: 1 });
  await pool.ready();
  const expp = createComplexMatrix(8000, 1);
  const share = await observeMainThread(() => pool.hermitian(expp, new Float64Array(1)));
  console.log(`  ${describeShare('(8000, 1)', share)}`);
  const h = share.value;
  assert.is(pool.stats().inline, 0, 'a job with a big H must not run on the calling thread');
  assert.is(h.rows, 7999);
  for (const at of [0, 1, 2 * 7999 * 7999 - 1, 2 * (4000 * 7999 + 17)]) assert.is(h.data[at], 0);
  // Storing 976 MiB of zeros is the job's work, and it is the workers': the main thread's busy time is a small
  // part of the CPU the job took (were the job inline, the two would be about equal).
  assert.ok(share.mainCpuMs <= 0.25 * share.processCpuMs, describeShare('the main thread did the work', share));
  await pool.close();
});

test('a per-job maxBytes keeps a tiny request from allocating a huge H', async () => {
  const pool = createPool({ workers: 2 });
  assert.is(await rejectionCode(pool.hermitian(createComplexMatrix(8000, 1), new Float64Array(1), { maxBytes: 64 * 2 ** 20 })), 'TOO_LARGE');
  await pool.close();
});

test('plain (non-shared) inputs are copied in pieces, giving the event loop turns in between', async () => {
  const pool = createPool({ workers: 1 });
  await pool.ready();
  // 128 MiB of expp: on any host its copy into fresh shared memory takes several of the copier's turns.
  const shared = demoProblem(8, 1 << 20);
  const plain = { rows: shared.expp.rows, cols: shared.expp.cols, data: new Float64Array(shared.expp.data) };
  const distance = new Float64Array(shared.distance);
  // On the main thread only the copier calls setImmediate during a job (to let the loop turn between pieces);
  // counted, not timed.
  const original = globalThis.setImmediate;
  let turns = 0;
  globalThis.setImmediate = Object.assign((...args: Parameters<typeof setImmediate>) => {
    turns++;
    return original(...args);
  }, original);
  let h: ComplexMatrix;
  try {
    h = await pool.hermitian(plain, distance);
  } finally {
    globalThis.setImmediate = original;
  }
  assert.ok(turns >= 1, 'the copy never yielded to the event loop: it ran in one stretch');
  assert.is(pool.stats().copiedBytes, plain.data.byteLength + distance.byteLength);
  const again = await pool.hermitian(plain, distance);
  assertBitIdentical(again.data, h.data, 'the reused copy scratch gives the same H');
  assertBitIdentical(h.data, (await pool.hermitian(shared.expp, shared.distance)).data, 'a copied input gives the bits of the shared one');
  await pool.close();
});
test('queued jobs allocate nothing until they start, and a queued job\'s timeoutMs counts its time in the queue', async () => {
  const pool = createPool({ workers: 2, inlineFlops: 0 });
  await pool.ready();
  const big = longJob();
  const controller = new AbortController();
  let runningSettled = false;
  const running = rejectionCode(pool.hermitian(big.expp, big.distance, { signal: controller.signal })).finally(() => (runningSettled = true));
  await sleep(100);
  const before = process.memoryUsage().arrayBuffers;
  const queued = rejectionCode(pool.hermitian(big.expp, big.distance, { timeoutMs: 200 }));
  assert.ok(process.memoryUsage().arrayBuffers - before < 2 ** 20, 'a queued job allocated its H');
  // The job ahead is never let finish: it is aborted only once the queued job has rejected, so that rejection
  // came from the deadline counting time in the queue, not from the queued job starting.
  assert.is(await queued, 'TIMEOUT');
  assert.not.ok(runningSettled, 'the job ahead was still running when the queued job timed out');
  controller.abort();
  assert.is(await running, 'ABORTED');
  await pool.close();
});

test('the main heap does not grow per job (20 000 jobs would add under 5 MiB)', async () => {
  const { jobs, growth } = await child('./helpers/memory-scenarios.js', ['heap', '3000']);
  const per20k = (growth / jobs) * 20_000;
  assert.ok(per20k <= 5 * 2 ** 20, `heap grew ${growth} bytes over ${jobs} jobs: ${(per20k / 2 ** 20).toFixed(1)} MiB per 20 000`);
});

test('discarded results are not kept alive by the workers: 60 jobs of 16 MiB leave under 256 MiB', async () => {
  const { arrayBuffers } = await child('./helpers/memory-scenarios.js', ['shared']);
  assert.ok(arrayBuffers <= 256 * 2 ** 20, `${(arrayBuffers / 2 ** 20).toFixed(0)} MiB of array buffers still held`);
});

test('inputs of jobs that fail before their last step are let go too: 60 such jobs of 16 MiB, back to back, never hold over 256 MiB', async () => {
  // The workers collect at a job's last step, or when idle; these jobs never reach it and never leave them idle.
  const { failed, arrayBuffers } = await child('./helpers/memory-scenarios.js', ['failed']);
  assert.is(failed, 60, 'every job failed with NON_FINITE');
  assert.ok(arrayBuffers <= 256 * 2 ** 20, `${(arrayBuffers / 2 ** 20).toFixed(0)} MiB of array buffers still held`);
});

test('threads that start together each obtain their garbage collector (V8 flags are process-wide)', async () => {
  // A worker that lost the race never collected, and held every job's H until its pool closed. The single-try
  // version failed this in its first round of 16. (A thread that starts inside another's window sees a global gc,
  // as documented, so the inline code must not declare one of its own.)
  const source = `const { parentPort } = require('node:worker_threads');
const collector = (${obtainGc.toString()})({ setFlagsFromString: require('node:v8').setFlagsFromString, runInNewContext: require('node:vm').runInNewContext });
parentPort.postMessage({ obtained: typeof collector === 'function' });`;
  for (let round = 0; round < 4; round++) {
    const threads = Array.from({ length: 16 }, () => new Worker(source, { eval: true }));
    const replies = await Promise.all(threads.map((thread) => new Promise<{ obtained: boolean }>((resolve, reject) => {
      thread.once('message', resolve);
      thread.once('error', reject);
    })));
    await Promise.all(threads.map((thread) => thread.terminate()));
    assert.equal(replies.filter((reply) => !reply.obtained).length, 0, `round ${round}: threads without a collector`);
  }
  // …and the flag ends cleared: a context made now has no gc.
  const late = new Worker("require('node:worker_threads').parentPort.postMessage(typeof gc)", { eval: true });
  assert.equal(await new Promise((resolve) => late.once('message', resolve)), 'undefined');
  await late.terminate();
});

test("a process started with --expose-gc keeps it: hpair's threads take the exposed gc and leave the flag alone", async () => {
  const script = `
    const { runInNewContext } = require('node:vm');
    const { createPool, demoProblem } = require(${JSON.stringify(createRequire(import.meta.url).resolve('hpair'))});
    (async () => {
      const pool = createPool({ workers: 2, inlineFlops: 0 });
      const { expp, distance } = demoProblem(601, 8); // big enough for the memory thread
      await pool.hermitian(expp, distance);
      await pool.close();
      process.stdout.write(JSON.stringify({ newContext: runInNewContext('typeof gc'), global: typeof gc }));
    })();`;
  const reply = await new Promise<{ newContext: string; global: string }>((resolve, reject) => {
    execFile(process.execPath, ['--expose-gc', '-e', script], { timeout: 60_000 }, (error, stdout, stderr) =>
      error === null ? resolve(JSON.parse(stdout) as { newContext: string; global: string }) : reject(new Error(`${error.message}\n${stderr}`)),
    );
  });
  assert.equal(reply, { newContext: 'function', global: 'function' });
});

test('dropped results are found by V8 without help: a new H per job, most collected during the run', async () => {
  // V8 does not count a SharedArrayBuffer's bytes toward its collection schedule; unreported, none of the 40 was
  // collected and the process held them all. Both ways of reporting them (the native addon's and its fallback),
  // for an H from the memory thread (5.5 MiB) and one allocated on the caller's thread (1.4 MiB). The children
  // run with --expose-gc (a global gc the memory thread's own code once collided with) and start at once.
  const noAddon = { HPAIR_NATIVE_ADDON: fileURLToPath(new URL('./no-such-addon.node', import.meta.url)) };
  // V8 collects once a thread's external memory has grown by 64 MiB, so the small case runs 150 jobs (210 MiB).
  for (const [how, n, jobCount, env] of [
    ['native addon, 5.5 MiB', '601', '40', {}],
    ['without the addon, 5.5 MiB', '601', '40', noAddon],
    ['native addon, 1.4 MiB', '300', '150', {}],
    ['without the addon, 1.4 MiB', '300', '150', noAddon],
  ] as const) {
    const { jobs, collected, threadErrors } = await child('./helpers/memory-scenarios.js', ['fresh', n, jobCount], env);
    assert.is(threadErrors, 0, `${how}: a thread failed`);
    assert.ok(collected >= jobs / 2, `${how}: ${collected} of ${jobs} dropped results collected`);
  }
});

test('a user kernel that poisons its worker (Math.ceil = () => 0): the worker is replaced, H stays exact', async () => {
  const pool = createPool({ workers: 2, kernel: kernelSupported('wasm-simd') ? 'wasm-simd' : 'js', inlineFlops: 0 });
  const { expp, distance } = randomProblem(300, 70, 5);
  const clean = await pool.hermitian(expp, distance);
  const started = pool.stats().workersStarted;
  await pool.run({ module: kernels, export: 'poisons', space: { kind: 'range', n: 8, tile: 1 }, buffers: {} });
  const after = await pool.hermitian(expp, distance);
  assertBitIdentical(after.data, clean.data, 'H after the poisoning job');
  assert.ok(relativeError(after, hermitianReference(expp, distance)) < 1e-12);
  assert.ok(pool.stats().workersStarted > started, 'the poisoned workers were not replaced');
  await pool.close();
});

test('a kernel cannot forge an hpair error code: both forgeries are KERNEL_FAILED', async () => {
  const pool = createPool({ workers: 2 });
  for (const how of ['real', 'by hand']) {
    const run = pool.run({ module: kernels, export: 'forges', space: { kind: 'range', n: 4, tile: 1 }, buffers: {}, params: { how } });
    assert.is(await rejectionCode(run), 'KERNEL_FAILED', how);
  }
  await pool.close();
});

test("a throwing onProgress is reported on the pool's 'error' event, and the job still resolves correctly", async () => {
  const pool = createPool({ workers: 2, inlineFlops: 0 });
  const { expp, distance } = demoProblem(1200, 800);
  const errors: Error[] = [];
  pool.on('error', (error) => errors.push(error));
  let calls = 0;
  const h = await pool.hermitian(expp, distance, {
    onProgress: () => {
      calls++;
      throw new Error('my progress bar broke');
    },
  });
  assert.is(calls, 1, 'onProgress is not called again after it threw');
  assert.is(errors.length, 1);
  assert.is((errors[0] as { code?: string }).code, 'CALLBACK_FAILED');
  assert.match(errors[0].message, /my progress bar broke/);
  assert.ok(relativeError(h, hermitianReference(expp, distance)) < 1e-12);
  await pool.close();
});

test("…and without an 'error' listener, as a process warning (never an uncaught exception)", async () => {
  const script = "import { createPool, demoProblem } from 'hpair'; const pool = createPool({ workers: 2, inlineFlops: 0 }); const { expp, distance } = demoProblem(600, 400); const h = await pool.hermitian(expp, distance, { onProgress() { throw new Error('broke'); } }); console.log(String(h.rows)); await pool.close();";
  const { stdout, stderr } = await new Promise<{ stdout: string; stderr: string }>((resolve, reject) => {
    execFile(process.execPath, ['--input-type=module', '-e', script], { cwd: fileURLToPath(new URL('.', import.meta.url)), timeout: 60_000 }, (error, out, err) =>
      error === null ? resolve({ stdout: out, stderr: err }) : reject(new Error(`${error.message}\n${err}`)),
    );
  });
  assert.is(stdout, '599\n', JSON.stringify(stdout));
  assert.match(stderr, /\[HPAIR_PROGRESS_THREW\] HpairWarning: onProgress threw Error: broke/);
});

const overflowKernels = (['js', 'wasm-simd', ...NATIVE_VARIANTS] as KernelVariant[]).filter((k) => kernelSupported(k));
for (const kernel of overflowKernels) {
  test(`${kernel}: finite inputs whose H overflows give OVERFLOW, not an H of Infinities`, async () => {
    const pool = createPool({ workers: 2, kernel, inlineFlops: 0 });
    const tiny = randomProblem(40, 9, 6);
    tiny.distance[4] = 1e-310; // subnormal
    assert.is(await rejectionCode(pool.hermitian(tiny.expp, tiny.distance)), 'OVERFLOW');
    const huge = randomProblem(40, 9, 7);
    huge.expp.data[2 * (3 * 9 + 2)] = 1e200;
    assert.is(await rejectionCode(pool.hermitian(huge.expp, huge.distance)), 'OVERFLOW');
    const fine = randomProblem(40, 9, 8);
    assert.ok(relativeError(await pool.hermitian(fine.expp, fine.distance), hermitianReference(fine.expp, fine.distance)) < 1e-12);
    await pool.close();
  });
}

// One huge expp value makes exactly one entry overflow, its diagonal one: the error must name that entry of the
// caller's H, deep inside its tile, whichever way the tile was finished: the native driver keeps a tile's sums in
// column panels (driver.h, hp_at) and finds the first non-finite entry there, in a tile combined micro-tile by
// micro-tile, in a streamed H (over 64 MiB, combined after the loops) and in a block; a block's rows are gathered
// into a smaller problem, whose entry is not the caller's.
for (const kernel of overflowKernels) {
  test(`${kernel}: the one entry that overflows is the one named, in a small H, a streamed H and a block`, async () => {
    const pool = createPool({ workers: 2, kernel, inlineFlops: 0 });
    try {
      for (const [N, r] of [[600, 437], [2050, 1234]] as const) {
        const { expp, distance } = randomProblem(N, 4, N);
        expp.data[2 * (r * 4 + 2)] = 1e200; // H[r, r] ~ 1e400; every other entry of row r ~ 1e200, finite
        const message = async (job: Promise<unknown>): Promise<string> => {
          try {
            await job;
          } catch (error) {
            assert.is((error as { code?: string }).code, 'OVERFLOW', String(error));
            return (error as Error).message;
          }
          throw new Error(`N = ${N}: the job succeeded with H[${r}, ${r}] overflowed`);
        };
        assert.match(await message(pool.hermitian(expp, distance)), `H[${r}, ${r}] came out`, `N = ${N}, whole H`);
        const block = pool.hermitianBlock(expp, distance, { rows: [r - 100, r + 50], cols: [r - 120, r + 30] });
        assert.match(await message(block), `H[${r}, ${r}] came out`, `N = ${N}, block`);
        expp.data[2 * (r * 4 + 2)] = 1e100; // the same problem, now finite throughout: the pool is still usable
        assert.ok(relativeError(await pool.hermitian(expp, distance), hermitianReference(expp, distance)) < 1e-12);
      }
    } finally {
      await pool.close();
    }
  });
}

test('close() then close({ abort: true }) aborts the running job', async () => {
  const pool = createPool({ workers: 2, inlineFlops: 0 });
  await pool.ready();
  const big = longJob();
  const running = rejectionCode(pool.hermitian(big.expp, big.distance));
  await sleep(50);
  const first = pool.close();
  assert.is(pool.close({ abort: true }), first);
  assert.is(await running, 'POOL_CLOSED');
  await first;
});

const proxy = <T extends object>(target: T): T =>
  new Proxy(target, {
    get() {
      throw new TypeError('trap');
    },
  });
const valid = randomProblem(6, 4, 9);
const badCalls: Array<[string, (pool: Pool) => Promise<unknown> | unknown]> = [
  ['createPool(null)', () => createPool(null as never)],
  ['workers: 1e6', () => createPool({ workers: 1e6 })],
  ['workers: 257', () => createPool({ workers: 257 })],
  ['resourceLimits: negative', () => createPool({ resourceLimits: { maxOldGenerationSizeMb: -5 } })],
  ['resourceLimits: unknown key', () => createPool({ resourceLimits: { heapMb: 5 } as never })],
  ['pool options behind a throwing Proxy', () => createPool(proxy({ workers: 2 }))],
  ['timeoutMs past 2^31 − 1', (pool) => pool.hermitian(valid.expp, valid.distance, { timeoutMs: 2 ** 31 })],
  ['job options: null', (pool) => pool.hermitian(valid.expp, valid.distance, null as never)],
  ['run options: null', (pool) => pool.run({ module: kernels, export: 'coverage', space: { kind: 'range', n: 1 }, buffers: {} }, null as never)],
  ['one-shot hermitian() options: null', () => hermitian(valid.expp, valid.distance, null as never)],
  ['expp behind a throwing Proxy', (pool) => pool.hermitian(proxy(valid.expp) as ComplexMatrix, valid.distance)],
  ['expp.data behind a Proxy', (pool) => pool.hermitian({ rows: 6, cols: 4, data: new Proxy(valid.expp.data, {}) }, valid.distance)],
  ['job maxBytes: -1', (pool) => pool.hermitian(valid.expp, valid.distance, { maxBytes: -1 })],
];
for (const [what, call] of badCalls) {
  test(`${what} → INVALID_ARGUMENT (an HpairError), and the pool stays usable`, async () => {
    const pool = createPool({ workers: 1 });
    let thrown: unknown;
    try {
      await call(pool);
    } catch (error) {
      thrown = error;
    }
    assert.instance(thrown, Error, `${what} did not throw`);
    assert.is((thrown as Error).name, 'HpairError', String(thrown));
    assert.is((thrown as { code?: string }).code, 'INVALID_ARGUMENT', String(thrown));
    const h = await pool.hermitian(valid.expp, valid.distance);
    assert.ok(relativeError(h, hermitianReference(valid.expp, valid.distance)) < 1e-12);
    await pool.close();
  });
}

test.run();
