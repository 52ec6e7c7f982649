// The tile edge of a job (kernel/hermitian-tiling.ts, triangleEdge and blockEdge): native jobs with a long k take
// tiles of twice the edge when their workers still finish sooner. The edge is a grain of work, never part of a
// result: every edge, worker count, schedule and accuracy gives the same bits. The memory a job is charged is
// the scratch of its own edge, as hermitianJobBytes says, to the byte.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { createPool, hermitianJobBytes, hermitianReference, isHpairError, kernelSupported, type Accuracy, type ComplexMatrix, type KernelVariant } from 'hpair';
import { blockEdge, largestEdge, planTriangle, triangleEdge } from '../kernel/hermitian-tiling.js';
import { blockTiles } from '../kernel/hermitian-block.js';
import { loadNativeAddon, type NativePathName } from '../kernel/native/addon.js';
import { HermitianEngine } from '../kernel/hermitian-engine.js';
import { variantNamed } from '../kernel/variants.js';
import { assertBitIdentical, randomProblem, relativeError } from './helpers/support.js';
import { testIf } from './helpers/children.js';

const test = suite('tile edge');

const addon = loadNativeAddon().addon;
const natives = (['native-avx512', 'native-avx2'] as const).filter((name) => kernelSupported(name));
const nativeTest = testIf(test, 'tile edge', addon !== undefined && natives.length > 0, () =>
  addon === undefined ? 'the native addon is not loaded here' : 'no AVX2 or AVX-512 path runs on this CPU',
);

test('a larger edge is taken only where its workers finish sooner; tall and small jobs keep the variant\'s tile', () => {
  for (const step of [12, 6]) {
    // Big squares have many tiles of either edge per worker: packing each row half as often wins.
    for (const threads of [1, 2, 4]) for (const n of [2047, 4095]) assert.is(triangleEdge(n, [240, 480], step, threads), 480, `n = ${n}, ${threads} threads, step ${step}`);
    // A triangle holding no whole tile of the larger edge (a tall job) is cut from the smaller one only.
    for (const threads of [1, 2, 4]) for (const n of [1, 100, 255, 479]) assert.is(triangleEdge(n, [240, 480], step, threads), 240, `n = ${n}, ${threads} threads`);
    // One edge only: that one.
    assert.is(triangleEdge(4095, [240], step, 2), 240);
  }
  // Where few tiles of the larger edge would leave a worker idle at the end, the smaller one is kept (1439 rows
  // on 2 workers: three rows of 480-tiles, six tiles of unequal work).
  assert.is(triangleEdge(1439, [240, 480], 12, 2), 240);
  // Every cut of the larger edge covers the triangle exactly once, no tile longer than that edge.
  for (const n of [480, 481, 999, 1439, 2047]) {
    for (const threads of [1, 2, 3, 7]) {
      for (const schedule of ['dynamic', 'strided'] as const) {
        const { space } = planTriangle(n, { tile: 480, step: 12 }, threads, schedule);
        assert.ok(largestEdge(space) <= 480, `n = ${n}: edge ${largestEdge(space)}`);
      }
    }
  }
  // A block's own tiles: a 2000-square off-diagonal block takes the larger edge on two threads, a 300-square one
  // cannot, and on 64 threads the smaller edge balances better.
  const cut = (side: number) => (edge: number) => blockTiles(2 * side, [edge], { r0: side, c0: 0, rows: side, cols: side }, true, 1);
  assert.is(blockEdge([240, 480], 2000, 2, cut(2000)), 480);
  assert.is(blockEdge([240, 480], 300, 2, cut(300)), 240);
  assert.is(blockEdge([240, 480], 2000, 64, cut(2000)), 240);
});

test('the native variants take the larger edge only with k of two k blocks or more, at accuracy \'default\'', () => {
  for (const name of natives) {
    const variant = variantNamed(name);
    assert.equal(variant.tileEdges(384, 'default'), [variant.tile]);
    assert.equal(variant.tileEdges(385, 'default'), [variant.tile, 2 * variant.tile]);
    assert.equal(variant.tileEdges(4096, 'default'), [variant.tile, 2 * variant.tile]);
    // Compensated sums leave the caches in the larger tile: it would be slower.
    assert.equal(variant.tileEdges(4096, 'compensated'), [variant.tile]);
  }
  for (const name of ['js', 'wasm-simd'] as const) assert.equal(variantNamed(name).tileEdges(4096, 'default'), [variantNamed(name).tile]);
});

/** H over a grid of tile × tile tiles through the addon, one thread: the pool's bits, computed without it. */
function tiled(path: NativePathName, expp: ComplexMatrix, distance: Float64Array, tile: number, compensated: boolean): Float64Array {
  const N = expp.rows, n = N - 1, M = expp.cols;
  const h = new Float64Array(new SharedArrayBuffer(16 * n * n)).fill(NaN);
  for (let i0 = 0; i0 < n; i0 += tile) {
    for (let j0 = 0; j0 <= i0; j0 += tile) {
      const bad = addon![compensated ? 'hermitianTileCompensated' : 'hermitianTile'](path, expp.data, distance, h, N, M, i0, Math.min(n, i0 + tile), j0, Math.min(n, j0 + tile), 0, 0, n, n);
      if (bad !== -1) assert.unreachable(`tile (${i0}, ${j0}): non-finite entry at ${bad}`);
    }
  }
  return h;
}

nativeTest('every edge, worker count, schedule and accuracy gives the same bits, and they are right', async () => {
  // k of 399 (two k blocks or more) and 999 rows: one to three workers take the larger edge, four the smaller.
  const N = 1000, M = 400, n = N - 1;
  for (const threads of [1, 2, 3]) assert.is(triangleEdge(n, [240, 480], 12, threads), 480, `${threads} threads`);
  assert.is(triangleEdge(n, [240, 480], 12, 4), 240);
  const { expp, distance } = randomProblem(N, M, 2026);
  const reference = hermitianReference(expp, distance);
  for (const accuracy of ['default', 'compensated'] as const satisfies readonly Accuracy[]) {
    const compensated = accuracy === 'compensated';
    // The grids the job may be cut into, an odd one, and the whole triangle as one tile (the pool cuts compensated
    // jobs into the smaller edge only; the addon takes any).
    const path = natives[0].slice('native-'.length) as NativePathName;
    const expected = tiled(path, expp, distance, 240, compensated);
    for (const tile of [480, 97, n]) assertBitIdentical(tiled(path, expp, distance, tile, compensated), expected, `${accuracy}: addon grid of ${tile}`);
    const error = relativeError({ rows: n, cols: n, data: expected }, reference);
    assert.ok(error < 1e-12, `${accuracy}: relative error ${error} against the reference`);
    for (const kernel of natives) {
      for (const workers of [1, 2, 3, 4]) {
        for (const schedule of ['dynamic', 'strided'] as const) {
          // Inline jobs would run on the calling thread alone, with the same cut: workers run these.
          const pool = createPool({ workers, schedule, kernel: kernel as KernelVariant, accuracy, inlineFlops: 0 });
          try {
            const h = await pool.hermitian(expp, distance);
            assert.is(h.kernel, kernel);
            assertBitIdentical(h.data, expected, `${accuracy}, ${kernel}, ${workers} workers ${schedule}`);
          } finally {
            await pool.close();
          }
        }
      }
    }
  }
});

nativeTest('blocks give the whole H\'s bits; blockTiles cuts a long block into tiles of a larger edge it is offered', async () => {
  const N = 1200, M = 400, n = N - 1;
  const { expp, distance } = randomProblem(N, M, 12);
  const kernel = natives[0];
  const whole = tiled(kernel.slice('native-'.length) as NativePathName, expp, distance, 240, false);
  // Off the diagonal, on it, above it, and a strip: the first two are long enough for a doubled edge.
  const blocks = [
    { rows: [600, 1199], cols: [0, 599] },
    { rows: [100, 1100], cols: [100, 1100] },
    { rows: [0, 550], cols: [560, 1199] },
    { rows: [0, 1199], cols: [500, 540] },
  ] as const;
  // The native variants offer only their tile (kernel/variant-native.ts); the cut itself still takes a larger edge offered.
  const own = blockTiles(1198, [240, 480], { r0: 599, c0: 0, rows: 599, cols: 599 }, true, 2);
  assert.is(largestEdge({ kind: 'list', n: 1198, tile: 240, list: own }), Math.ceil(599 / 2), 'the first block is cut into tiles of the larger edge');
  for (const workers of [1, 2]) {
    const pool = createPool({ workers, kernel, inlineFlops: 0 });
    try {
      for (const block of blocks) {
        const [[i0, i1], [j0, j1]] = [block.rows, block.cols];
        const h = await pool.hermitianBlock(expp, distance, { rows: [i0, i1], cols: [j0, j1] });
        const expected = new Float64Array(2 * (i1 - i0) * (j1 - j0));
        for (let i = i0; i < i1; i++) expected.set(whole.subarray(2 * (i * n + j0), 2 * (i * n + j1)), 2 * (i - i0) * (j1 - j0));
        assertBitIdentical(h.data, expected, `${workers} workers, block ${JSON.stringify(block)}`);
      }
    } finally {
      await pool.close();
    }
  }
});

nativeTest('a job is charged the scratch of its own edge, to the byte, as hermitianJobBytes counts it', async () => {
  const kernel = natives[0];
  const variant = variantNamed(kernel);
  const N = 1000, M = 400, n = N - 1;
  const { expp, distance } = randomProblem(N, M, 7);
  for (const workers of [2, 4]) {
    const bytes = hermitianJobBytes(N, M, kernel, workers);
    const edge = triangleEdge(n, variant.tileEdges(M, 'default'), variant.tileStep, workers);
    assert.is(bytes.panels, variant.scratchBytes(N, M, workers, edge).native);
    const pool = createPool({ workers, kernel, inlineFlops: 0 });
    try {
      // Inputs already shared: nothing is copied, so the job needs exactly H and the scratch.
      const exact = bytes.h + bytes.panels;
      const h = await pool.hermitian(expp, distance, { maxBytes: exact });
      assertBitIdentical(h.data, tiled(kernel.slice('native-'.length) as NativePathName, expp, distance, 240, false), `${workers} workers at maxBytes = ${exact}`);
      let refused: unknown;
      try {
        await pool.hermitian(expp, distance, { maxBytes: exact - 1 });
      } catch (error) {
        refused = error;
      }
      assert.ok(isHpairError(refused) && refused.code === 'TOO_LARGE', `${workers} workers: one byte less is refused (${String(refused)})`);
    } finally {
      await pool.close();
    }
  }
});

nativeTest('a block job is charged the scratch of its own tiles, not of the largest edge', () => {
  const kernel = natives[0];
  const variant = variantNamed(kernel);
  const N = 1200, M = 400;
  const { expp, distance } = randomProblem(N, M, 3);
  const engine = new HermitianEngine({ kernel, accuracy: 'default', threads: 2, schedule: 'dynamic', maxBytes: Infinity, inlineWork: 0, allocate: async (bytes) => new SharedArrayBuffer(bytes) });
  // Blocks whose own tiles are small (a narrow strip) and large (a big square off the diagonal).
  for (const block of [{ rows: [600, 1199], cols: [0, 100] }, { rows: [600, 1199], cols: [0, 599] }] as const) {
    const [[i0, i1], [j0, j1]] = [block.rows, block.cols];
    const sub = i1 - i0 + (j1 - j0);
    const list = blockTiles(sub, variant.tileEdges(M, 'default'), { r0: j1 - j0, c0: 0, rows: i1 - i0, cols: j1 - j0 }, true, 2);
    const edge = largestEdge({ kind: 'list', n: sub, tile: variant.tile, list });
    // The block's rows are gathered (copied) and its H is new: both counted with the scratch.
    const exact = 16 * (i1 - i0) * (j1 - j0) + variant.scratchBytes(sub + 1, M, 2, edge).native + 16 * (sub + 1) * M;
    const what = `block ${JSON.stringify(block)} (tiles up to ${edge})`;
    engine.prepareBlock(expp, distance, { rows: [...block.rows], cols: [...block.cols] }, undefined, exact);
    assert.throws(() => engine.prepareBlock(expp, distance, { rows: [...block.rows], cols: [...block.cols] }, undefined, exact - 1), (error: unknown) => (error as { code?: unknown }).code === 'TOO_LARGE', what);
    if (edge < 2 * variant.tile) assert.ok(variant.scratchBytes(sub + 1, M, 2, edge).native < variant.scratchBytes(sub + 1, M, 2, 2 * variant.tile).native, what);
  }
});

test.run();
