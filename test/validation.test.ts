// Every bad input gets an HpairError with its documented code, before any work, and the pool stays usable.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { allocateComplexMatrix, createComplexMatrix, createPool, hermitianReference, type ComplexMatrix, type Pool } from 'hpair';
import { randomProblem, rejectionCode, relativeError } from './helpers/support.js';

const test = suite('validation');
let pool: Pool;
test.before(() => {
  pool = createPool({ workers: 2, inlineFlops: 0 });
});
test.after(() => pool.close());

const good = randomProblem(8, 6, 1);

const cases: Array<[string, () => [ComplexMatrix, Float64Array], string, RegExp]> = [
  ['expp is not a matrix', () => [null as unknown as ComplexMatrix, good.distance], 'INVALID_ARGUMENT', /expp must be a complex matrix/],
  ['expp.data is not numbers', () => [{ rows: 2, cols: 2, data: 'abcdefgh' as unknown as Float64Array }, good.distance], 'INVALID_ARGUMENT', /expp must be a complex matrix/],
  ['expp.data as number[] of the wrong length', () => [{ rows: 2, cols: 2, data: [1, 2] as unknown as Float64Array }, good.distance], 'SHAPE_MISMATCH', /has 2 values but a 2×2 complex matrix needs 8/],
  ['split planes of the wrong length', () => [{ rows: 2, cols: 3, re: new Float64Array(6), im: new Float32Array(5) } as unknown as ComplexMatrix, Float64Array.of(1, 1, 1)], 'SHAPE_MISMATCH', /expp.im has 5 values but a 2×3 matrix needs 6/],
  ['strides that leave the data', () => [{ data: new Float64Array(16), shape: [3, 3], strides: [3, 1] } as unknown as ComplexMatrix, Float64Array.of(1, 1, 1)], 'SHAPE_MISMATCH', /strides reach element 8 but data holds 8/],
  ['negative strides below element 0', () => [{ data: new Float64Array(18), shape: [3, 3], strides: [-3, 1], offset: 5 } as unknown as ComplexMatrix, Float64Array.of(1, 1, 1)], 'SHAPE_MISMATCH', /strides reach element -1/],
  ['negative rows', () => [{ rows: -1, cols: 6, data: new Float64Array(0) }, good.distance], 'INVALID_ARGUMENT', /non-negative integers/],
  ['data length disagrees with the shape', () => [{ rows: 8, cols: 6, data: new Float64Array(95) }, good.distance], 'SHAPE_MISMATCH', /has 95 values but a 8×6 complex matrix needs 96/],
  ['N < 1', () => [createComplexMatrix(0, 6), good.distance], 'EMPTY_INPUT', /at least one row/],
  ['distance is not numbers', () => [good.expp, 'abcdef' as unknown as Float64Array], 'INVALID_ARGUMENT', /distance must be a Float64Array, Float32Array, array of numbers/],
  ['distance length ≠ M', () => [good.expp, new Float64Array(5).fill(1)], 'SHAPE_MISMATCH', /distance has length 5 but expp has M = 6/],
  ['distance[m] = 0 for m ≥ 1', () => [good.expp, Float64Array.of(1, 1, 1, 0, 1, 1)], 'ZERO_DISTANCE', /distance\[3\] is 0/],
  ['non-finite distance', () => [good.expp, Float64Array.of(1, 1, Infinity, 1, NaN, 1)], 'NON_FINITE', /distance\[2\] is Infinity/],
];
for (const [what, make, code, message] of cases) {
  test(`${what} → ${code}`, async () => {
    const [expp, distance] = make();
    try {
      await pool.hermitian(expp, distance);
      assert.unreachable('expected a rejection');
    } catch (error) {
      assert.is((error as { code?: string }).code, code);
      assert.match((error as Error).message, message);
    }
  });
}

test('non-finite expp values: the first one is named, whichever worker finds it', async () => {
  const { expp, distance } = randomProblem(300, 20, 2);
  expp.data[2 * (250 * 20 + 3) + 1] = NaN; // found by one worker…
  expp.data[2 * (120 * 20 + 7)] = -Infinity; // …and the first, found by the other
  try {
    await pool.hermitian(expp, distance);
    assert.unreachable('expected a rejection');
  } catch (error) {
    assert.is((error as { code?: string }).code, 'NON_FINITE');
    assert.match((error as Error).message, /expp\[120, 7\] has a non-finite real part \(-Infinity\)/);
  }
});

test('a non-finite value in the reference row or in column 0 is reported too', async () => {
  const a = randomProblem(5, 4, 3);
  a.expp.data[2 * (4 * 4 + 2)] = NaN;
  assert.is(await rejectionCode(pool.hermitian(a.expp, a.distance)), 'NON_FINITE');
  const b = randomProblem(5, 4, 3);
  b.expp.data[2 * (1 * 4 + 0) + 1] = Infinity;
  assert.is(await rejectionCode(pool.hermitian(b.expp, b.distance)), 'NON_FINITE');
});

test('bad out: wrong shape, not shared, overlapping an input', async () => {
  const { expp, distance } = good;
  assert.is(await rejectionCode(pool.hermitian(expp, distance, { out: createComplexMatrix(6, 7) })), 'SHAPE_MISMATCH');
  assert.is(await rejectionCode(pool.hermitian(expp, distance, { out: { rows: 7, cols: 7, data: new Float64Array(98) } })), 'INVALID_ARGUMENT');
  const big = createComplexMatrix(8, 13); // room for expp (96 values) and nothing else
  const alias = { rows: 8, cols: 6, data: big.data.subarray(0, 96) };
  const out = { rows: 7, cols: 7, data: big.data.subarray(90, 188) };
  assert.is(await rejectionCode(pool.hermitian(alias, distance, { out })), 'INVALID_ARGUMENT');
});

test('bad job and pool options', async () => {
  const { expp, distance } = good;
  assert.is(await rejectionCode(pool.hermitian(expp, distance, { timeoutMs: -1 })), 'INVALID_ARGUMENT');
  assert.is(await rejectionCode(pool.hermitian(expp, distance, { signal: {} as AbortSignal })), 'INVALID_ARGUMENT');
  for (const options of [{ workers: 0 }, { workers: 1.5 }, { schedule: 'random' as 'strided' }, { maxQueue: -1 }, { inlineFlops: NaN }]) {
    assert.throws(() => createPool(options), (error: Error) => (error as { code?: string }).code === 'INVALID_ARGUMENT');
  }
  assert.throws(() => createComplexMatrix(-1, 2), (error: Error) => (error as { code?: string }).code === 'INVALID_ARGUMENT');
});

test('allocateComplexMatrix: a zeroed shared matrix, small or from the memory thread, and the same shape errors, as rejections', async () => {
  for (const [rows, cols] of [[3, 4], [0, 5], [700, 600]]) {
    const m = await allocateComplexMatrix(rows, cols); // 700 × 600: 6.4 MiB, mapped on the memory thread
    assert.is(m.rows, rows);
    assert.is(m.cols, cols);
    assert.is(m.data.length, 2 * rows * cols);
    assert.ok(m.data.buffer instanceof SharedArrayBuffer, 'over a SharedArrayBuffer');
    assert.ok(m.data.every((v) => v === 0), 'zeroed');
  }
  for (const [rows, cols, code] of [[-1, 2, 'INVALID_ARGUMENT'], [2, 1.5, 'INVALID_ARGUMENT'], [Number.NaN, 2, 'INVALID_ARGUMENT'], ['3' as unknown as number, 2, 'INVALID_ARGUMENT'], [2 ** 16, 2 ** 16 + 1, 'TOO_LARGE']] as const) {
    assert.is(await rejectionCode(allocateComplexMatrix(rows, cols)), code, `${String(rows)} × ${String(cols)}`);
  }
  // Usable as `out`: the same bits as into a createComplexMatrix one.
  const out = await allocateComplexMatrix(good.expp.rows - 1, good.expp.rows - 1);
  const h = await pool.hermitian(good.expp, good.distance, { out });
  assert.is(h.data, out.data);
  assert.equal(Array.from(out.data), Array.from((await pool.hermitian(good.expp, good.distance, { out: createComplexMatrix(out.rows, out.cols) })).data));
});

test('the reference port validates the same way', () => {
  assert.throws(() => hermitianReference(good.expp, new Float64Array(3)), (error: Error) => (error as { code?: string }).code === 'SHAPE_MISMATCH');
});

test('the pool stays usable after every failed job', async () => {
  const h = await pool.hermitian(good.expp, good.distance);
  assert.ok(relativeError(h, hermitianReference(good.expp, good.distance)) < 1e-12);
  assert.is(pool.stats().workersStarted, 2);
});

test.run();
