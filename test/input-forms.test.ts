// Real-world inputs: every accepted form of expp and distance gives the H of the same values, bit for bit.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { createPool, hermitianReference, type ComplexMatrixInput, type Pool, type RealVectorInput } from 'hpair';
import { assertBitIdentical, randomProblem, relativeError } from './helpers/support.js';

const test = suite('input-forms');
let pool: Pool;
test.before(() => {
  pool = createPool({ workers: 2, inlineFlops: 0 });
});
test.after(() => pool.close());

const N = 37;
const M = 23;
const { expp, distance } = randomProblem(N, M, 11);
const reference = hermitianReference(expp, distance);
const values = Array.from(expp.data);
const re = values.filter((_, k) => k % 2 === 0);
const im = values.filter((_, k) => k % 2 === 1);

/** expp transposed in memory (column-major), read through strides. */
function columnMajor(): Float64Array {
  const data = new Float64Array(2 * N * M);
  for (let r = 0; r < N; r++) {
    for (let c = 0; c < M; c++) {
      data[2 * (c * N + r)] = expp.data[2 * (r * M + c)];
      data[2 * (c * N + r) + 1] = expp.data[2 * (r * M + c) + 1];
    }
  }
  return data;
}

/** expp stored upside down behind a 3-element prefix: negative row stride, non-zero offset. */
function reversedRows(): Float64Array {
  const data = new Float64Array(2 * (N * M + 3));
  for (let r = 0; r < N; r++) data.set(expp.data.subarray(2 * r * M, 2 * (r + 1) * M), 2 * (3 + (N - 1 - r) * M));
  return data;
}

const exppForms: Array<[string, () => ComplexMatrixInput]> = [
  ['shared Float64Array (in place)', () => expp],
  ['plain Float64Array', () => ({ rows: N, cols: M, data: new Float64Array(expp.data) })],
  ['shared Float64Array view at an offset (in place)', () => {
    const backing = new Float64Array(new SharedArrayBuffer(8 * (2 * N * M + 6)));
    backing.set(expp.data, 6);
    return { rows: N, cols: M, data: backing.subarray(6) };
  }],
  ['number[]', () => ({ rows: N, cols: M, data: values })],
  ['split { re, im } planes, number[] and Float64Array', () => ({ rows: N, cols: M, re, im: Float64Array.from(im) })],
  ['strided, column-major', () => ({ data: columnMajor(), shape: [N, M], strides: [1, N] })],
  ['strided, negative row stride and an offset', () => ({ data: reversedRows(), shape: [N, M], strides: [-M, 1], offset: 3 + (N - 1) * M })],
  ['strided, dense row-major over shared memory (in place)', () => ({ data: expp.data, shape: [N, M], strides: [M, 1] })],
];

let first: Float64Array | undefined;
for (const [what, make] of exppForms) {
  test(`expp as ${what}: the same H, bit for bit`, async () => {
    const before = pool.stats().copiedBytes;
    const h = await pool.hermitian(make(), distance);
    assert.ok(relativeError(h, reference) < 1e-12);
    first ??= h.data;
    assertBitIdentical(h.data, first, what);
    const copied = pool.stats().copiedBytes - before;
    assert.is(copied === 0, /in place/.test(what), `${what}: copied ${copied} bytes`);
  });
}

const distanceForms: Array<[string, () => RealVectorInput]> = [
  ['number[]', () => Array.from(distance)],
  ['Float32Array of float32-exact values', () => Float32Array.from(distance, (d) => Math.fround(d))],
  ['strided with stride 2', () => ({ data: Array.from(distance).flatMap((d) => [d, 99]), shape: [M], strides: [2] })],
];
for (const [what, make] of distanceForms) {
  test(`distance as ${what}`, async () => {
    const input = make();
    const widened = Float64Array.from({ length: M }, (_, m) => (Array.isArray(input) || ArrayBuffer.isView(input) ? (input as ArrayLike<number>)[m] : distance[m]));
    const shared = new Float64Array(new SharedArrayBuffer(8 * M));
    shared.set(widened);
    const expected = await pool.hermitian(expp, shared);
    assertBitIdentical((await pool.hermitian(expp, input)).data, expected.data, what);
  });
}

test('Float32Array expp is widened exactly', async () => {
  const narrow = Float32Array.from(expp.data);
  const widened = { rows: N, cols: M, data: Float64Array.from(narrow) };
  assertBitIdentical((await pool.hermitian({ rows: N, cols: M, data: narrow }, distance)).data, (await pool.hermitian(widened, distance)).data, 'float32');
});

test('a non-finite value is named by row, column and part whatever the form', async () => {
  const planes = { rows: N, cols: M, re: re.slice(), im: im.slice() };
  planes.im[5 * M + 7] = Number.NaN;
  try {
    await pool.hermitian(planes, distance);
    assert.unreachable('expected NON_FINITE');
  } catch (error) {
    assert.is((error as { code?: string }).code, 'NON_FINITE');
    assert.match((error as Error).message, /expp\[5, 7\] has a non-finite imaginary part/);
  }
});

test.run();
