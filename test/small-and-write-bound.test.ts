// Small jobs and H-write-bound jobs as a user sees them: a warm pool answering many tiny jobs in a row (inline,
// new H and `out`) bit for bit against the reference port, with every error path still reported after the inline
// path has cached what it caches; each new H a buffer of its own that no later job writes, and freed by a
// young-generation collection once dropped; the idle collection still coming after a long run of back-to-back jobs; an H
// big enough to be written with streaming stores (kernel/native/src/store.h) bit-identical to the same entries
// written with ordinary ones; and the write-bandwidth probe of the bench (src/bandwidth.c, bench/bandwidth.ts).
// No test judges speed.
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { createComplexMatrix, createPool, hermitianReference, type ComplexMatrix } from 'hpair';
import { loadNativeAddon } from '../kernel/native/addon.js';
import { hBytesWritten, measureWriteBandwidth, writeLimitFor } from '../bench/bandwidth.js';
import { assertBitIdentical, assertExactlyHermitian, randomProblem, relativeError } from './helpers/support.js';
import { testIf } from './helpers/children.js';
import { decideHugePages } from '../workers/huge-pages.js';

const test = suite('small and write-bound jobs');
const execFileAsync = promisify(execFile);
const addon = loadNativeAddon().addon;
/** `test` where the native addon loads; elsewhere each test is reported as skipped, with the reason. */
const withAddon = testIf(test, 'small and write-bound jobs', addon !== undefined, () => `no native addon: ${loadNativeAddon().reason ?? ''}`);

function codeOf(error: unknown): string | undefined {
  return (error as { code?: string }).code;
}

test('a warm pool answers many tiny jobs in a row, inline, each bit-identical to a worker job and close to the reference', async () => {
  const inline = createPool({ workers: 2 });
  const workers = createPool({ workers: 2, inlineFlops: 0 });
  try {
    await inline.ready();
    const out = createComplexMatrix(63, 63);
    for (let seed = 0; seed < 6; seed++) {
      const { expp, distance } = randomProblem(64, 64, 900 + seed);
      const expected = await workers.hermitian(expp, distance);
      const reference = hermitianReference(expp, distance);
      for (let round = 0; round < 40; round++) {
        // Alternating a new H and `out`, so a reused buffer or cached step could leak one job's values into the next.
        const h = round % 2 === 0 ? await inline.hermitian(expp, distance) : await inline.hermitian(expp, distance, { out });
        assertBitIdentical(h.data, expected.data, `seed ${seed}, round ${round}`);
      }
      assert.ok(relativeError(expected, reference) < 1e-12, `seed ${seed}: ${relativeError(expected, reference)}`);
      assertExactlyHermitian(expected);
    }
    assert.ok(inline.stats().inline >= 240, `${inline.stats().inline} jobs ran inline`);
    assert.is(workers.stats().inline, 0);
  } finally {
    await inline.close();
    await workers.close();
  }
});

// An inline job runs every tile on the calling thread: its tiles are cut for one thread, however many workers the
// pool has (cut for two, the small triangle would become several tiles, one for each worker, all run by one thread).
// The tile count is what onProgress reports as its total. A job given to the workers is still cut for all of them.
test('an inline job is cut into the tiles of one thread on any pool; a worker job into tiles for every worker', async () => {
  const pools = [1, 2, 3].map((workers) => createPool({ workers }));
  const spread = createPool({ workers: 2, inlineFlops: 0 });
  try {
    const tilesOf = async (pool: typeof spread, N: number): Promise<number> => {
      const { expp, distance } = randomProblem(N, 48, N);
      let total = -1;
      const h = await pool.hermitian(expp, distance, { onProgress: (_done, all) => (total = all) });
      assertBitIdentical(h.data, (await spread.hermitian(expp, distance)).data, `N = ${N}`);
      return total;
    };
    for (const N of [24, 64, 100]) {
      const totals = await Promise.all(pools.map((pool) => tilesOf(pool, N)));
      assert.equal(totals, totals.map(() => totals[0]), `N = ${N}: tiles per pool size ${totals}`);
      // The same job on the workers is cut so that each of them gets a tile.
      assert.ok((await tilesOf(spread, N)) >= 2, `N = ${N}: a two-worker job of one tile`);
    }
    for (const pool of pools) assert.ok(pool.stats().inline >= 3, `${pool.stats().inline} jobs ran inline`);
    assert.is(spread.stats().inline, 0);
  } finally {
    await Promise.all([...pools, spread].map((pool) => pool.close()));
  }
});

test('after many inline jobs, every error path of a tiny job still rejects with its code', async () => {
  const pool = createPool({ workers: 2 });
  try {
    const { expp, distance } = randomProblem(64, 64, 77);
    for (let k = 0; k < 50; k++) await pool.hermitian(expp, distance);
    // A non-finite value, named by its place, in a copy of expp so the good one stays usable.
    const bad = createComplexMatrix(64, 64);
    bad.data.set(expp.data);
    bad.data[2 * (17 * 64 + 5) + 1] = Number.NaN;
    const nonFinite = await pool.hermitian(bad, distance).catch((error: unknown) => error);
    assert.is(codeOf(nonFinite), 'NON_FINITE');
    assert.match((nonFinite as Error).message, /expp\[17, 5\] has a non-finite imaginary part/);
    // A zero distance, a wrong out, an out overlapping expp, a job too big for its maxBytes.
    const zero = new Float64Array(new SharedArrayBuffer(8 * 64)).fill(1);
    zero[9] = 0;
    await pool.hermitian(expp, zero).then(
      () => assert.unreachable('zero distance accepted'),
      (error: unknown) => assert.is(codeOf(error), 'ZERO_DISTANCE'),
    );
    await pool.hermitian(expp, distance, { out: createComplexMatrix(62, 63) }).then(
      () => assert.unreachable('wrong out accepted'),
      (error: unknown) => assert.is(codeOf(error), 'SHAPE_MISMATCH'),
    );
    const overlapping: ComplexMatrix = { rows: 63, cols: 63, data: new Float64Array(expp.data.buffer, 0, 2 * 63 * 63) };
    await pool.hermitian(expp, distance, { out: overlapping }).then(
      () => assert.unreachable('an out over expp accepted'),
      (error: unknown) => assert.is(codeOf(error), 'INVALID_ARGUMENT'),
    );
    await pool.hermitian(expp, distance, { maxBytes: 1000 }).then(
      () => assert.unreachable('maxBytes ignored'),
      (error: unknown) => assert.is(codeOf(error), 'TOO_LARGE'),
    );
    // And the pool still answers right afterwards.
    const h = await pool.hermitian(expp, distance);
    assert.ok(relativeError(h, hermitianReference(expp, distance)) < 1e-12);
    // Only the non-finite value fails a job that was accepted; the others are refused at the call.
    assert.is(pool.stats().failed, 1);
  } finally {
    await pool.close();
  }
});

test('tiny jobs with a new H: each result owns a SharedArrayBuffer of its own, which no later job writes, even as its out', async () => {
  const inline = createPool({ workers: 2 });
  const workers = createPool({ workers: 2, inlineFlops: 0 });
  try {
    await inline.ready();
    const problems = Array.from({ length: 12 }, (_, seed) => randomProblem(64, 64, 1300 + seed));
    const expected = await Promise.all(problems.map(({ expp, distance }) => workers.hermitian(expp, distance)));
    // Results kept while later jobs run, each snapshotted when it arrived.
    const kept: { h: ComplexMatrix; copy: Float64Array; of: number }[] = [];
    for (let round = 0; round < 120; round++) {
      const of = round % problems.length;
      const h = await inline.hermitian(problems[of].expp, problems[of].distance);
      assertBitIdentical(h.data, expected[of].data, `round ${round}`);
      assert.ok(h.data.buffer instanceof SharedArrayBuffer, `round ${round}: H is not in a SharedArrayBuffer`);
      // The whole buffer is this H's: nothing before or after it that another result or the pool could use.
      assert.is(h.data.byteOffset, 0);
      assert.is(h.data.buffer.byteLength, h.data.byteLength);
      if (round % 3 === 0) kept.push({ h, copy: h.data.slice(), of });
    }
    const buffers = new Set(kept.map(({ h }) => h.data.buffer));
    assert.is(buffers.size, kept.length, 'two kept results share a buffer');
    // A kept result as a later job's out: that job writes it, and no other kept result changes.
    const target = kept[1];
    const other = (target.of + 5) % problems.length;
    await inline.hermitian(problems[other].expp, problems[other].distance, { out: target.h });
    assertBitIdentical(target.h.data, expected[other].data, 'the kept result used as out');
    for (const [k, { h, copy }] of kept.entries()) if (h !== target.h) assertBitIdentical(h.data, copy, `kept result ${k}`);
    assert.ok(inline.stats().inline >= 121, `${inline.stats().inline} jobs ran inline`);
  } finally {
    await inline.close();
    await workers.close();
  }
});

test('one pool through a sequence of shapes, accuracies and blocks: each job bit-identical to the same job on a fresh pool', async () => {
  // The engine reuses the last whole-H plan of the same shape and accuracy: a job of another shape or accuracy in
  // between, or a block, must never run on a stale plan.
  const kernel = loadNativeAddon().addon !== undefined ? 'native' : 'auto';
  const pool = createPool({ workers: 2, kernel });
  try {
    const compensated = pool.kernel !== 'js';
    const sequence: { N: number; M: number; accuracy: 'default' | 'compensated'; block?: boolean }[] = [
      { N: 64, M: 64, accuracy: 'default' },
      { N: 64, M: 64, accuracy: 'default' },
      ...(compensated ? [{ N: 64, M: 64, accuracy: 'compensated' as const }] : []),
      { N: 64, M: 64, accuracy: 'default' },
      { N: 65, M: 64, accuracy: 'default' },
      { N: 64, M: 65, accuracy: 'default' },
      { N: 64, M: 64, accuracy: 'default', block: true },
      { N: 64, M: 64, accuracy: 'default' },
      { N: 200, M: 300, accuracy: 'default' },
      // Where the default accuracy takes the native kernels' larger tiles and the compensated one does not.
      { N: 600, M: 400, accuracy: 'default' },
      ...(compensated ? [{ N: 600, M: 400, accuracy: 'compensated' as const }] : []),
      { N: 64, M: 64, accuracy: 'default' },
    ];
    for (const [k, { N, M, accuracy, block }] of sequence.entries()) {
      const { expp, distance } = randomProblem(N, M, 1500 + k);
      const region = { rows: [3, 40], cols: [10, 60] } as const;
      const got = block ? await pool.hermitianBlock(expp, distance, region, { accuracy }) : await pool.hermitian(expp, distance, { accuracy });
      const fresh = createPool({ workers: 2, kernel });
      try {
        const expected = block ? await fresh.hermitianBlock(expp, distance, region, { accuracy }) : await fresh.hermitian(expp, distance, { accuracy });
        assert.is(got.kernel, expected.kernel, `job ${k}`);
        assert.is(got.rows, expected.rows, `job ${k}`);
        assertBitIdentical(got.data, expected.data, `job ${k}: ${N}×${M}, ${accuracy}${block ? ', a block' : ''}`);
      } finally {
        await fresh.close();
      }
    }
    // A refused accuracy is still refused after its shape was planned.
    const { expp, distance } = randomProblem(64, 64, 1599);
    await pool.hermitian(expp, distance, { accuracy: 'exact' as 'default' }).then(
      () => assert.unreachable('an unknown accuracy accepted'),
      (error: unknown) => assert.is(codeOf(error), 'INVALID_ARGUMENT'),
    );
  } finally {
    await pool.close();
  }
});

withAddon('a dropped new H of a tiny job is freed by a young-generation collection, and the count for the collector comes back', async () => {
  // Before, every job's result stayed reachable until a full collection (its entry, and the FinalizationRegistry
  // that counted it), so each new H of a run of tiny jobs came from fresh pages.
  const hBytes = 16 * 63 * 63;
  const keptBound = 8 * hBytes;
  const driftBound = 8 * 2 ** 20;
  const helper = fileURLToPath(new URL('./helpers/tiny-new-h.js', import.meta.url));
  const { stdout } = await execFileAsync(process.execPath, ['--expose-gc', helper, String(keptBound), String(driftBound)], { timeout: 120_000 });
  const { dropped, keptAfterMinor, externalDrift, inline } = JSON.parse(stdout) as Record<string, number>;
  assert.ok(inline >= 3420, `${inline} jobs ran inline`);
  assert.ok(keptAfterMinor < keptBound, `${(keptAfterMinor / hBytes).toFixed(0)} of ${dropped} dropped results still held after young-generation collections`);
  // 3000 jobs counted 190 MB in all: none of it may stay counted, nor may more be taken back than was counted.
  assert.ok(Math.abs(externalDrift) < driftBound, `the external memory count moved by ${(externalDrift / 2 ** 20).toFixed(1)} MiB`);
});

test('the idle collection still comes after back-to-back jobs that outlast several idle periods', async () => {
  const idleCollectMs = 40;
  const pool = createPool({ workers: 2, idleCollectMs });
  try {
    const { expp, distance } = randomProblem(64, 64, 5); // a 62 KiB H each, inline
    let collected = 0;
    const registry = new FinalizationRegistry<number>(() => collected++);
    let jobs = 0;
    const started = performance.now();
    // Past the pool's 16 MiB mark, and for several idle periods, so the kept timer fires mid-run and waits again.
    while (jobs < 400 || performance.now() - started < 5 * idleCollectMs) {
      registry.register((await pool.hermitian(expp, distance)).data.buffer, jobs);
      jobs++;
    }
    const end = performance.now() + 30_000; // liveness only
    while (collected < jobs && performance.now() < end) await new Promise((resolve) => setTimeout(resolve, 20));
    // Read after the wait, so the registry outlives it: V8 keeps a suspended function's local only while a later
    // line reads it, and a FinalizationRegistry that is itself collected calls back nothing.
    assert.ok(registry instanceof FinalizationRegistry);
    assert.is(collected, jobs, `${collected} of ${jobs} dropped results collected while idle`);
  } finally {
    await pool.close();
  }
});

// 2049² complex entries are just over 64 MiB: the whole H is streamed; blocks of it, an `out` that is not 16-byte
// aligned, and the wasm kernel write the same entries with ordinary stores.
withAddon('an H written with streaming stores is bit-identical to the same entries written with ordinary stores, on 1 and 2 workers', async () => {
  const N = 2050;
  const M = 4;
  const n = N - 1;
  const { expp, distance } = randomProblem(N, M, 2050);
  const one = createPool({ workers: 1, kernel: 'native' });
  const two = createPool({ workers: 2, kernel: 'native' });
  try {
    const whole = await two.hermitian(expp, distance);
    assertExactlyHermitian(whole);
    assertBitIdentical((await one.hermitian(expp, distance)).data, whole.data, '1 worker against 2');
    // Preallocated H: aligned (streamed) and shifted by one value (ordinary stores).
    const aligned = createComplexMatrix(n, n);
    await two.hermitian(expp, distance, { out: aligned });
    assertBitIdentical(aligned.data, whole.data, 'aligned out');
    const backing = new Float64Array(new SharedArrayBuffer(8 * (2 * n * n + 1)));
    const shifted: ComplexMatrix = { rows: n, cols: n, data: backing.subarray(1) };
    await two.hermitian(expp, distance, { out: shifted });
    assertBitIdentical(shifted.data, whole.data, 'out at an 8-byte offset');
    // Blocks, each far below the streaming size, across the diagonal and off it.
    for (const [[i0, i1], [j0, j1]] of [
      [[0, 700], [0, 700]],
      [[1500, n], [3, 900]],
      [[10, 1200], [1100, n]],
    ] as const) {
      const block = await two.hermitianBlock(expp, distance, { rows: [i0, i1], cols: [j0, j1] });
      for (let i = i0; i < i1; i++) {
        const got = block.data.subarray(2 * (i - i0) * (j1 - j0), 2 * (i - i0 + 1) * (j1 - j0));
        const want = whole.data.subarray(2 * (i * n + j0), 2 * (i * n + j1));
        assertBitIdentical(got, want, `block rows ${i0}…${i1}, cols ${j0}…${j1}, row ${i}`);
      }
    }
    // Compensated accuracy combines and stores through the same code.
    const compensated = await two.hermitian(expp, distance, { accuracy: 'compensated' });
    const compensatedBlock = await two.hermitianBlock(expp, distance, { rows: [1800, n], cols: [0, 300] }, { accuracy: 'compensated' });
    for (let i = 1800; i < n; i++) {
      assertBitIdentical(compensatedBlock.data.subarray(2 * (i - 1800) * 300, 2 * (i - 1800 + 1) * 300), compensated.data.subarray(2 * i * n, 2 * (i * n + 300)), `compensated row ${i}`);
    }
    // Against the reference port: the values, not only the agreement of two native runs.
    assert.ok(relativeError(whole, hermitianReference(expp, distance)) < 1e-12);
  } finally {
    await one.close();
    await two.close();
  }
});

withAddon('writeBandwidth refuses bad arguments with a typed error, writing nothing', () => {
  const values = new Float64Array(1024).fill(-1);
  const call = (...args: unknown[]) => {
    try {
      (addon!.writeBandwidth as (...a: unknown[]) => number)(...args);
    } catch (error) {
      return error as Error & { code?: string };
    }
    return undefined;
  };
  const cases: [unknown[], string, RegExp][] = [
    [[], 'TypeError', /takes a Float64Array/],
    [[new Float32Array(8), 0.01, false], 'TypeError', /Float64Array/],
    [[[1, 2, 3], 0.01, false], 'TypeError', /Float64Array/],
    [[new Float64Array(0), 0.01, false], 'RangeError', /at least one value/],
    [[values, 0, false], 'RangeError', /\(0, 10\]/],
    [[values, Number.NaN, true], 'RangeError', /\(0, 10\]/],
    [[values, 11, true], 'RangeError', /\(0, 10\]/],
    [[values, '0.01', true], 'TypeError', /seconds must be a number/],
    [[values, 0.01, 1], 'TypeError', /streaming must be a boolean/],
  ];
  for (const [args, kind, message] of cases) {
    const error = call(...args);
    assert.ok(error, `writeBandwidth(${args.map(String).join(', ')}) did not throw`);
    assert.is(error!.constructor.name, kind, error!.message);
    assert.is(error!.code, 'ERR_HPAIR_NATIVE');
    assert.match(error!.message, message);
  }
  assert.ok(values.every((v) => v === -1), 'a refused call wrote into values');
});

withAddon('writeBandwidth writes every value of the view and nothing around it, for the time it is given, with both kinds of store', () => {
  // An odd offset and length, so the streaming loop's unaligned head and its tail run too.
  const backing = new Float64Array(new SharedArrayBuffer(8 * 100_003)).fill(-7);
  const view = backing.subarray(3, 100_000);
  for (const streaming of [false, true]) {
    backing.fill(-7);
    const started = performance.now();
    const rate = addon!.writeBandwidth(view, 0.02, streaming);
    const elapsed = (performance.now() - started) / 1e3;
    assert.ok(Number.isFinite(rate) && rate > 0, `rate ${rate}`);
    assert.ok(elapsed >= 0.02, `returned after ${elapsed} s`);
    // No memory takes more than 10 TB/s from one thread.
    assert.ok(rate < 1e13, `rate ${rate} bytes/s`);
    const last = view[0];
    assert.ok(last >= 2 && Number.isInteger(last), `last pass wrote ${last}`);
    assert.ok(view.every((v) => v === last), `streaming ${streaming}: a value of the view was not written by the last pass`);
    for (const at of [0, 1, 2, 100_000, 100_001, 100_002]) assert.is(backing[at], -7, `streaming ${streaming}: wrote outside the view at ${at}`);
  }
});

withAddon('the bench measures the write bandwidth on each thread count with both kinds of store, threads at once', async () => {
  const report = await measureWriteBandwidth({ threads: [2], seconds: 0.02, repetitions: 2, sliceBytes: 4 * 2 ** 20 + 8 });
  assert.is(report.unavailable, undefined);
  assert.equal(
    report.measurements.map((m) => `${m.threads} ${m.kind}`),
    ['1 store', '1 stream', '2 store', '2 stream'],
  );
  for (const m of report.measurements) {
    assert.is(m.perThread.length, m.threads);
    assert.is(m.repetitions.length, 2);
    assert.is(m.sliceBytes % 4096, 0, 'slices start on pages');
    assert.ok(m.perThread.every((rate) => rate > 0), `${m.threads} ${m.kind}: ${m.perThread.join(', ')}`);
    assert.ok(Math.abs(m.bytesPerSecond - m.perThread.reduce((a, b) => a + b, 0)) <= 1e-6 * m.bytesPerSecond);
    assert.ok(m.bytesPerSecond >= Math.max(...m.repetitions) * (1 - 1e-12), 'the best repetition is kept');
  }
  const limit = writeLimitFor(report.measurements, 2);
  assert.ok(limit !== undefined && limit.threads === 2);
  assert.is(limit!.bytesPerSecond, Math.max(...report.measurements.filter((m) => m.threads === 2).map((m) => m.bytesPerSecond)));
  assert.is(writeLimitFor(report.measurements, 3), undefined);
  assert.is(hBytesWritten(8192), 16 * 8191 * 8191);
});

test('huge pages: HPAIR_NO_HUGE_PAGES decides when set; unset, a balloon that reports free memory to the hypervisor turns them off', () => {
  // sysfs gives a virtio device's features as one '0'/'1' per bit; bit 5 is VIRTIO_BALLOON_F_REPORTING.
  const reporting = '0110010100000000000000000000000010000000';
  const quiet = '0110000000000000000000000000000010000000';
  const never = (): string[] => {
    throw new Error('the host must not be consulted when HPAIR_NO_HUGE_PAGES is set');
  };
  assert.is(decideHugePages('0', never).wanted, true, '0 asks for them whatever the host');
  for (const value of ['1', 'yes', 'true', '00']) assert.is(decideHugePages(value, never).wanted, false, `HPAIR_NO_HUGE_PAGES=${value}`);
  for (const unset of [undefined, '']) {
    assert.is(decideHugePages(unset, () => []).wanted, true, 'no balloon: the default');
    assert.is(decideHugePages(unset, () => [quiet]).wanted, true, 'a balloon that does not report free memory');
    const off = decideHugePages(unset, () => [quiet, reporting]);
    assert.is(off.wanted, false, 'a balloon that reports free memory');
    assert.match(off.reason, /balloon/);
    assert.is(decideHugePages(unset, () => ['01100']).wanted, true, 'a feature string too short to hold the bit');
    assert.is(
      decideHugePages(unset, () => {
        throw new Error('sysfs unreadable');
      }).wanted,
      true,
      'an unreadable host: the default',
    );
  }
});

test.run();
