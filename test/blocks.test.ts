// pool.hermitianBlock: any rectangle of H, bit-identical to the same entries of the whole H.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { createComplexMatrix, createPool, kernelSupported, type ComplexMatrix, type HermitianBlock, type KernelVariant } from 'hpair';
import { NATIVE_VARIANTS, randomProblem, rejectionCode } from './helpers/support.js';

const test = suite('blocks');

/** Bits of entry (i, j) of `h` (whole) against entry (i − i0, j − j0) of the block. */
function assertBlockMatches(block: ComplexMatrix, whole: ComplexMatrix, [i0, i1]: readonly [number, number], [j0, j1]: readonly [number, number], what: string): void {
  assert.is(block.rows, i1 - i0, `${what}: rows`);
  assert.is(block.cols, j1 - j0, `${what}: cols`);
  for (let i = i0; i < i1; i++) {
    for (let j = j0; j < j1; j++) {
      for (const part of [0, 1]) {
        const got = block.data[2 * ((i - i0) * block.cols + (j - j0)) + part];
        const want = whole.data[2 * (i * whole.cols + j) + part];
        if (!Object.is(got, want)) assert.unreachable(`${what}: H[${i}, ${j}] part ${part} is ${got}, the whole H has ${want}`);
      }
    }
  }
}

const kernels = ([...NATIVE_VARIANTS, 'wasm-simd', 'js'] as KernelVariant[]).filter((k) => kernelSupported(k));
// N − 1 = 300 rows: with the wasm kernel's 128-wide tiles and the native 240-wide ones, rectangles below
// cross tile edges, the diagonal and H's last row and column.
const { expp, distance } = randomProblem(301, 97, 21);
const rectangles: Array<[string, HermitianBlock]> = [
  ['straddling the diagonal across tile edges', { rows: [100, 260], cols: [50, 290] }],
  ['wholly below the diagonal', { rows: [200, 300], cols: [0, 130] }],
  ['wholly above the diagonal (mirrors only)', { rows: [3, 97], cols: [120, 255] }],
  ['a diagonal block aligned to the tile grid', { rows: [128, 256], cols: [128, 256] }],
  ['below the diagonal at odd offsets (native: tiles cut from its own corner)', { rows: [201, 263], cols: [17, 158] }],
  ['a diagonal square at an odd offset', { rows: [37, 190], cols: [37, 190] }],
  ['above the diagonal, touching it', { rows: [40, 91], cols: [90, 299] }],
  ['rows ending on the diagonal, every column left of it (an out-of-core job of several blocks)', { rows: [200, 260], cols: [40, 260] }],
  ['the last row and column', { rows: [299, 300], cols: [0, 300] }],
  ['one entry on the diagonal', { rows: [7, 8], cols: [7, 8] }],
  ['the whole H', { rows: [0, 300], cols: [0, 300] }],
  ['an empty range', { rows: [10, 10], cols: [0, 300] }],
];

for (const kernel of kernels) {
  test(`${kernel}: every rectangle equals the same entries of the whole H, bit for bit`, async () => {
    const pool = createPool({ workers: 2, kernel, inlineFlops: 0 });
    const whole = await pool.hermitian(expp, distance);
    for (const [what, block] of rectangles) {
      const h = await pool.hermitianBlock(expp, distance, block);
      assert.is(h.kernel, kernel);
      assertBlockMatches(h, whole, block.rows, block.cols, what);
    }
    // A block whose rows, with the reference row, are all of expp's (an out-of-core driver's sub-problem)
    // reads shared inputs in place: nothing copied.
    const copied = pool.stats().copiedBytes;
    const tail = await pool.hermitianBlock(expp, distance, { rows: [150, 300], cols: [0, 150] });
    assert.is(pool.stats().copiedBytes, copied, 'a block covering every row copied its input');
    assertBlockMatches(tail, whole, [150, 300], [0, 150], 'rows [0, 300) in place');
    // One worker and three give the same bits (the list of tiles is dealt differently).
    for (const workers of [1, 3]) {
      const other = createPool({ workers, kernel, inlineFlops: 0 });
      assertBlockMatches(await other.hermitianBlock(expp, distance, rectangles[0][1]), whole, [100, 260], [50, 290], `${workers} workers`);
      await other.close();
    }
    await pool.close();
  });
}

test('out, cancel, progress and errors work as for the whole H', async () => {
  const pool = createPool({ workers: 2, inlineFlops: 0 });
  const out = createComplexMatrix(40, 50);
  const h = await pool.hermitianBlock(expp, distance, { rows: [10, 50], cols: [0, 50] }, { out, onProgress: () => undefined });
  assert.is(h.data, out.data);
  assert.is(await rejectionCode(pool.hermitianBlock(expp, distance, { rows: [10, 50], cols: [0, 50] }, { out: createComplexMatrix(50, 40) })), 'SHAPE_MISMATCH');
  assert.is(await rejectionCode(pool.hermitianBlock(expp, distance, { rows: [0, 301], cols: [0, 1] })), 'INVALID_ARGUMENT');
  assert.is(await rejectionCode(pool.hermitianBlock(expp, distance, { rows: [5, 4], cols: [0, 1] })), 'INVALID_ARGUMENT');
  assert.is(await rejectionCode(pool.hermitianBlock(expp, distance, null as never)), 'INVALID_ARGUMENT');
  assert.is(await rejectionCode(pool.hermitianBlock(expp, distance, { rows: [0, 300], cols: [0, 300] }, { signal: AbortSignal.abort() })), 'ABORTED');
  // A non-finite value is named by its row in the caller's expp, and only the rows a block reads are checked.
  const bad = randomProblem(301, 97, 21);
  bad.expp.data[2 * (250 * 97 + 3)] = Number.NaN;
  assert.ok((await pool.hermitianBlock(bad.expp, bad.distance, { rows: [0, 100], cols: [0, 100] })).rows === 100);
  try {
    await pool.hermitianBlock(bad.expp, bad.distance, { rows: [200, 260], cols: [0, 10] });
    assert.unreachable('expected NON_FINITE');
  } catch (error) {
    assert.is((error as { code?: string }).code, 'NON_FINITE');
    assert.match((error as Error).message, /expp\[250, 3\]/);
  }
  await pool.close();
});

test.run();
