// .npy files made by numpy (test/fixtures/make_fixtures.py): every dtype and layout we read, the file we
// write, and the files we refuse.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { encodeComplexMatrixNpy, parseComplexMatrixNpy, parseFloat64VectorNpy, createComplexMatrix } from 'hpair';
import { assertBitIdentical, fixture, npyBytes } from './helpers/support.js';

const test = suite('npy');
const expected = parseComplexMatrixNpy(fixture('expp_c16.npy'));

test('complex128 reads into shared memory with its shape', () => {
  assert.is(expected.rows, 5);
  assert.is(expected.cols, 4);
  assert.instance(expected.data.buffer, SharedArrayBuffer);
});

for (const name of ['expp_c8.npy', 'expp_c16_fortran.npy', 'expp_c16_bigendian.npy']) {
  test(`${name} reads to the same values as complex128 C order`, () => {
    const m = parseComplexMatrixNpy(fixture(name));
    assert.equal([m.rows, m.cols], [5, 4]);
    assertBitIdentical(m.data, expected.data, name);
  });
}

test('float64 reads as a complex matrix with zero imaginary parts', () => {
  const m = parseComplexMatrixNpy(fixture('expp_f8.npy'));
  for (let i = 0; i < 20; i++) {
    assert.is(m.data[2 * i], expected.data[2 * i]);
    assert.is(m.data[2 * i + 1], 0);
  }
});

test('distance: float64, float32 (widened) and big-endian give the same values', () => {
  const d = parseFloat64VectorNpy(fixture('distance_f8.npy'));
  assert.is(d.length, 4);
  assertBitIdentical(parseFloat64VectorNpy(fixture('distance_f4.npy')), d, 'f4');
  assertBitIdentical(parseFloat64VectorNpy(fixture('distance_f8_bigendian.npy')), d, 'big-endian');
});

test('integer distances (every width, both byte orders) widen exactly to float64', () => {
  const limits: Array<[string, number, number]> = [
    ['int8', -128, 127],
    ['int16', -32768, 32767],
    ['int32', -(2 ** 31), 2 ** 31 - 1],
    ['uint8', 0, 255],
    ['uint16', 0, 65535],
    ['uint32', 0, 2 ** 32 - 1],
    ['int64', -(2 ** 53), 2 ** 53],
    ['uint64', 0, 2 ** 53],
    ['int64_bigendian', -(2 ** 53), 2 ** 53],
  ];
  for (const [dtype, min, max] of limits) {
    const d = parseFloat64VectorNpy(fixture(`distance_${dtype}.npy`));
    assert.instance(d.buffer, SharedArrayBuffer);
    assert.equal(Array.from(d), [min, max, 1, 2], dtype);
  }
  // np.arange's int64, as a user saves it.
  assert.equal(Array.from(parseFloat64VectorNpy(fixture('case_int_distance.npy'))), [0, 1, 2, 3, 4, 5, 6, 7, 8]);
});

test('write → read round trip, and the header is NumPy-aligned', () => {
  const m = createComplexMatrix(3, 3);
  m.data.forEach((_, i) => (m.data[i] = i * 0.5 - 2));
  const bytes = encodeComplexMatrixNpy(m);
  assert.is(((bytes[8] | (bytes[9] << 8)) + 10) % 64, 0, 'data starts on a 64-byte boundary');
  const back = parseComplexMatrixNpy(bytes);
  assert.equal([back.rows, back.cols], [3, 3]);
  assertBitIdentical(back.data, m.data, 'round trip');
  // A 0×0 H (N = 1) is still a valid file.
  assert.is(parseComplexMatrixNpy(encodeComplexMatrixNpy(createComplexMatrix(0, 0))).rows, 0);
});

function refusal(parse: () => unknown): string {
  try {
    parse();
  } catch (error) {
    assert.is((error as Error).name, 'HpairError');
    assert.is((error as { code?: string }).code, 'BAD_NPY');
    return (error as Error).message;
  }
  assert.unreachable('expected BAD_NPY');
  return '';
}

test('refused: other dtypes, dimensionality, object arrays; every dtype refusal says what is accepted', () => {
  const complex = /accepted: complex128, complex64, float64\)$/;
  const real = /accepted: float64, float32, integers\)$/;
  assert.match(refusal(() => parseComplexMatrixNpy(fixture('bad_int64.npy'))), /^unsupported dtype '<i8' \(int64; accepted: complex128, complex64, float64\)$/);
  assert.match(refusal(() => parseComplexMatrixNpy(fixture('distance_f4.npy'))), /^unsupported dtype '<f4' \(float32; accepted: complex128/);
  assert.match(refusal(() => parseComplexMatrixNpy(fixture('bad_3d.npy'))), /expected a 2-D array, got shape \(2, 2, 2\)/);
  assert.match(refusal(() => parseFloat64VectorNpy(fixture('bad_1d_complex.npy'))), /^unsupported dtype '<c16' \(complex128; accepted: float64, float32, integers\)$/);
  assert.match(refusal(() => parseFloat64VectorNpy(fixture('expp_c16.npy'))), real);
  assert.match(refusal(() => parseFloat64VectorNpy(fixture('distance_int8.npy').subarray(0, 20))), /header claims/);
  assert.match(refusal(() => parseComplexMatrixNpy(fixture('bad_object.npy'))), /^unsupported dtype '\|O' \(accepted: complex128, complex64, float64\)$/);
  assert.match(refusal(() => parseComplexMatrixNpy(fixture('bad_unicode.npy'))), complex);
  assert.match(refusal(() => parseFloat64VectorNpy(fixture('bad_unicode.npy'))), /^unsupported dtype '<U3' \(accepted: float64, float32, integers\)$/);
  assert.match(refusal(() => parseFloat64VectorNpy(fixture('bad_int64.npy'))), /expected a 1-D array, got shape \(3, 4\)/);
});

test('refused: 64-bit integers beyond ±2^53, naming the first one', () => {
  assert.match(
    refusal(() => parseFloat64VectorNpy(fixture('bad_int64_inexact.npy'))),
    /^element 2 of the int64 array is 9007199254740993, which has no exact float64 \(integers must have \|v\| ≤ 2\^53\)$/,
  );
  assert.match(refusal(() => parseFloat64VectorNpy(fixture('bad_uint64_inexact.npy'))), /^element 1 of the uint64 array is 18446744073709551615,/);
});

test('refused: truncated, padded, not .npy, lying headers', () => {
  const good = fixture('expp_c16.npy');
  assert.match(refusal(() => parseComplexMatrixNpy(good.subarray(0, good.length - 1))), /needs 320 data bytes but the file has 319/);
  const longer = new Uint8Array(good.length + 8);
  longer.set(good);
  assert.match(refusal(() => parseComplexMatrixNpy(longer)), /needs 320 data bytes but the file has 328/);
  assert.match(refusal(() => parseComplexMatrixNpy(good.subarray(0, 30))), /header claims/);
  assert.match(refusal(() => parseComplexMatrixNpy(new TextEncoder().encode('hello, world'))), /not a \.npy file/);
  assert.match(refusal(() => parseComplexMatrixNpy(new Uint8Array(0))), /not a \.npy file/);
  const data = new Uint8Array(320);
  const header = (shape: string, descr = '<c16'): string => `{'descr': '${descr}', 'fortran_order': False, 'shape': ${shape}, }`;
  assert.ok(parseComplexMatrixNpy(npyBytes(header('(5, 4)'), data)).rows === 5, 'the helper builds valid files');
  assert.match(refusal(() => parseComplexMatrixNpy(npyBytes(header('(9999999999999, 4)'), data))), /needs 639999999999936 data bytes but the file has 320/);
  assert.match(refusal(() => parseComplexMatrixNpy(npyBytes(header('(99999999999999999999, 4)'), data))), /malformed/);
  assert.match(refusal(() => parseComplexMatrixNpy(npyBytes(header('(5, -4)'), data))), /malformed/);
  assert.match(refusal(() => parseComplexMatrixNpy(npyBytes(header('(5, 4)').replace("'shape'", "'shape': (5, 4), 'shape'"), data))), /appears twice/);
  assert.match(refusal(() => parseComplexMatrixNpy(npyBytes("{'descr': '<c16', 'shape': (5, 4), }", data))), /needs 'descr', 'fortran_order' and 'shape'/);
  assert.match(refusal(() => parseComplexMatrixNpy(npyBytes(header('(5, 4)') + " __import__('os')", data))), /text after the dict/);
  assert.match(refusal(() => parseComplexMatrixNpy(npyBytes(header('(5, 4)', '<c32'), data))), /unsupported dtype '<c32'/);
  const claimsTooMuch = npyBytes(header('(5, 4)'), data, 2);
  new DataView(claimsTooMuch.buffer).setUint32(8, 0xfffffff0, true);
  assert.match(refusal(() => parseComplexMatrixNpy(claimsTooMuch)), /header claims 4294967280 bytes/);
});

test.run();
