// H from the pool against the seed's formula ported line for line (hermitianReference), and the properties
// a user relies on: exact Hermitian symmetry, determinism across worker counts and schedules, zero copies.
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { createComplexMatrix, createPool, hermitian, hermitianReference, kernelStatus, kernelSupported, type KernelVariant, type Pool } from 'hpair';
import { KERNEL_VARIANTS } from '../kernel/kernel-names.js';
import { rankedVariants } from '../kernel/variants.js';
import { assertBitIdentical, assertExactlyHermitian, randomProblem, relativeError } from './helpers/support.js';

const test = suite('hermitian');
let pool: Pool;
test.before(() => {
  // inlineFlops: 0 sends even the tiny cases to the workers; the inline path is tested on its own below.
  pool = createPool({ workers: 2, inlineFlops: 0 });
});
test.after(() => pool.close());

const shapes: Array<[number, number]> = [
  [1, 1], [1, 5], [2, 1], [2, 2], [2, 7], [3, 1], [5, 2], [17, 3], [66, 65], [130, 37], [97, 300],
];
for (const [N, M] of shapes) {
  test(`matches the reference port, N = ${N}, M = ${M}`, async () => {
    const { expp, distance } = randomProblem(N, M, N * 1000 + M);
    const h = await pool.hermitian(expp, distance);
    const expected = hermitianReference(expp, distance);
    assert.is(h.rows, Math.max(0, N - 1));
    assert.ok(relativeError(h, expected) < 1e-12, `relative error ${relativeError(h, expected)}`);
    assertExactlyHermitian(h);
  });
}

test('N = 1 gives an empty 0×0 H; M = 1 gives zeros', async () => {
  const one = randomProblem(1, 4, 1);
  const empty = await pool.hermitian(one.expp, one.distance);
  assert.equal([empty.rows, empty.cols, empty.data.length], [0, 0, 0]);
  const { expp, distance } = randomProblem(6, 1, 2);
  const zeros = await pool.hermitian(expp, distance);
  assert.is(zeros.rows, 5);
  assert.ok(zeros.data.every((v) => v === 0));
});

test('distance[0] = 0 is allowed (m = 0 is skipped) and negative distances are valid', async () => {
  const { expp, distance } = randomProblem(9, 6, 3);
  distance[0] = 0;
  distance[2] = -0.75;
  const h = await pool.hermitian(expp, distance);
  assert.ok(relativeError(h, hermitianReference(expp, distance)) < 1e-12);
});

// Every variant this runtime and CPU run, fastest first (auto's order).
const variants = rankedVariants().map((v) => v.name).filter(kernelSupported);

test('this runtime runs the JavaScript kernel and WebAssembly SIMD', () => {
  assert.ok(variants.includes('js') && variants.includes('wasm-simd'), `supported: ${variants.join(', ')}`);
});

for (const kernel of variants) {
  test(`${kernel}: matches the reference on odd and edge shapes`, async () => {
    const p = createPool({ workers: 2, kernel, inlineFlops: 0 });
    assert.is(p.kernel, kernel);
    for (const [N, M] of [[1, 3], [2, 2], [5, 1], [6, 2], [131, 259], [258, 7]]) {
      const { expp, distance } = randomProblem(N, M, 7 * N + M);
      const h = await p.hermitian(expp, distance);
      assert.ok(relativeError(h, hermitianReference(expp, distance)) < 1e-12, `${kernel} ${N}×${M}: ${relativeError(h, hermitianReference(expp, distance))}`);
      assertExactlyHermitian(h);
    }
    // M = 0 (no columns at all): an empty sum, so H is zeros, whatever N.
    for (const N of [2, 300]) {
      const h = await p.hermitian(createComplexMatrix(N, 0), new Float64Array(0));
      assert.ok(h.rows === N - 1 && h.data.every((v) => v === 0), `${kernel} ${N}×0: zeros`);
    }
    await p.close();
  });

  test(`${kernel}: bit-identical for 1, 2 and 3 workers, both schedules, and the inline path`, async () => {
    const { expp, distance } = randomProblem(203, 151, 4);
    const results: Array<[string, Float64Array]> = [];
    for (const workers of [1, 2, 3]) {
      for (const schedule of ['strided', 'dynamic'] as const) {
        const p = createPool({ workers, schedule, kernel, inlineFlops: 0 });
        results.push([`${workers} workers ${schedule}`, (await p.hermitian(expp, distance)).data]);
        await p.close();
      }
    }
    const inline = createPool({ workers: 1, kernel, inlineFlops: Infinity });
    results.push(['inline', (await inline.hermitian(expp, distance)).data]);
    assert.is(inline.stats().inline, 1);
    await inline.close();
    for (const [what, data] of results.slice(1)) assertBitIdentical(data, results[0][1], `${kernel} ${what}`);
  });
}

// Tall jobs (few rows, long M): the whole H's triangle is cut for the pool's workers (kernel/hermitian-tiling.ts),
// so each worker count and schedule computes H from other tiles than one worker does. Shapes: one entry (N = 2),
// one micro-tile row (N = 13), rows under one tile edge (N = 61), rows just past the native edge (N = 256). With
// default accuracy M spans several chunks of k (a kernel's chunk is 1024 or 3072 columns) with a ragged last one; compensated sums run
// over all of k unchunked, so shorter M shows the same. The reference is one worker's uniform grid.
const tallShapes = {
  default: [[2, 3072 + 5], [13, 2 * 3072 + 1], [61, 2 * 3072 + 777], [256, 301]],
  compensated: [[2, 777], [13, 3001], [61, 1201], [256, 65]],
} as const;
for (const kernel of variants) {
  test(`${kernel}: tall shapes bit-identical for 1, 2, 3 and 4 workers, both schedules, and both accuracies`, async () => {
    const accuracies = kernel === 'js' ? (['default'] as const) : (['default', 'compensated'] as const);
    const problems = accuracies.flatMap((accuracy) => tallShapes[accuracy].map(([N, M]) => ({ N, M, accuracy, ...randomProblem(N, M, 31 * N + M) })));
    const references = new Map<string, Float64Array>();
    for (const workers of [1, 2, 3, 4]) {
      for (const schedule of workers === 1 ? (['dynamic'] as const) : (['strided', 'dynamic'] as const)) {
        const p = createPool({ workers, schedule, kernel, inlineFlops: 0 });
        try {
          for (const { N, M, accuracy, expp, distance } of problems) {
            const h = await p.hermitian(expp, distance, { accuracy });
            const key = `${N}×${M} ${accuracy}`;
            const reference = references.get(key);
            if (reference !== undefined) {
              assertBitIdentical(h.data, reference, `${kernel} ${key} on ${workers} workers ${schedule}`);
              continue;
            }
            references.set(key, h.data);
            // One worker's H is itself checked against the reference port where that port is quick.
            if (N * N * M < 2e7) assert.ok(relativeError(h, hermitianReference(expp, distance)) < 1e-12, `${kernel} ${key}: ${relativeError(h, hermitianReference(expp, distance))}`);
            assertExactlyHermitian(h);
          }
        } finally {
          await p.close();
        }
      }
    }
  });
}

test('auto picks the fastest kernel that runs here and says why when it is not native; an unsupported one is refused', async () => {
  const expected: KernelVariant = variants[0];
  const p = createPool({ workers: 1 });
  try {
    assert.is(p.kernel, expected);
    assert.is(p.whyNotNative === undefined, expected.startsWith('native'), `whyNotNative: ${p.whyNotNative}`);
  } finally {
    await p.close();
  }
  const forced = createPool({ workers: 1, kernel: 'wasm-simd' });
  assert.match(String(forced.whyNotNative), /kernel 'wasm-simd' was asked for/);
  await forced.close();
  const statuses = kernelStatus();
  assert.equal(statuses.map((s) => s.kernel), KERNEL_VARIANTS);
  for (const status of statuses) assert.is(status.supported, variants.includes(status.kernel), status.kernel);
  for (const status of statuses.filter((s) => !s.supported)) assert.ok(typeof status.reason === 'string' && status.reason.length > 0 && !status.reason.includes('\n'));
  if (!variants.includes('wasm-relaxed-simd')) {
    assert.throws(() => createPool({ kernel: 'wasm-relaxed-simd' }), (error: Error) => /experimental-wasm-relaxed-simd/.test(error.message));
  }
  assert.throws(() => createPool({ kernel: 'fortran' as 'js' }), (error: Error) => (error as { code?: string }).code === 'INVALID_ARGUMENT');
});

test('relaxed SIMD (Node 20 with --experimental-wasm-relaxed-simd): accurate and bit-identical across workers', async () => {
  const script = fileURLToPath(new URL('./helpers/variant-check.js', import.meta.url));
  const run = await new Promise<{ code: number; out: string }>((resolve) => {
    execFile(process.execPath, ['--experimental-wasm-relaxed-simd', script, 'wasm-relaxed-simd'], { timeout: 120_000 }, (error, stdout, stderr) =>
      resolve({ code: error === null ? 0 : 1, out: stdout + stderr }),
    );
  });
  assert.is(run.code, 0, run.out);
  assert.match(run.out, /wasm-relaxed-simd ok/);
});

test('zero-copy: shared inputs are read in place, plain ones copied once, H is in shared memory', async () => {
  const shared = randomProblem(40, 30, 5);
  const before = pool.stats().copiedBytes;
  const h = await pool.hermitian(shared.expp, shared.distance);
  assert.is(pool.stats().copiedBytes, before, 'a SharedArrayBuffer input was copied');
  assert.instance(h.data.buffer, SharedArrayBuffer);

  const plain = randomProblem(40, 30, 5, false);
  const h2 = await pool.hermitian(plain.expp, plain.distance);
  assert.is(pool.stats().copiedBytes - before, plain.expp.data.byteLength + plain.distance.byteLength);
  assertBitIdentical(h2.data, h.data, 'plain vs shared inputs');
});

test('inputs are never written to', async () => {
  const { expp, distance } = randomProblem(50, 41, 6);
  const exppBefore = expp.data.slice();
  const distanceBefore = distance.slice();
  await pool.hermitian(expp, distance);
  assertBitIdentical(expp.data, exppBefore, 'expp');
  assertBitIdentical(distance, distanceBefore, 'distance');
});

test('out: H is written into a caller-allocated matrix, whose data the result shares', async () => {
  const { expp, distance } = randomProblem(33, 20, 7);
  const out = createComplexMatrix(32, 32);
  const h = await pool.hermitian(expp, distance, { out });
  assert.is(h.data, out.data);
  assert.is(h.kernel, pool.kernel);
  assert.ok(relativeError(out, hermitianReference(expp, distance)) < 1e-12);
});

test('the pool is reused across jobs and concurrent calls all get their own answer', async () => {
  const problems = [0, 1, 2, 3].map((k) => randomProblem(30 + k, 25 + k, 100 + k));
  const results = await Promise.all(problems.map(({ expp, distance }) => pool.hermitian(expp, distance)));
  problems.forEach(({ expp, distance }, k) => assert.ok(relativeError(results[k], hermitianReference(expp, distance)) < 1e-12));
  assert.is(pool.stats().workersStarted, 2);
});

test('one-shot hermitian() starts and closes its own pool', async () => {
  const { expp, distance } = randomProblem(20, 11, 8);
  const h = await hermitian(expp, distance, { workers: 2 });
  assert.ok(relativeError(h, hermitianReference(expp, distance)) < 1e-12);
});

test.run();
