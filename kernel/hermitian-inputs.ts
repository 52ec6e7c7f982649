import type { ComplexMatrix } from '../shared/complex-matrix.js';
import { HpairError } from '../shared/errors.js';

/** Problem dimensions: expp is N×M, H is (N−1)×(N−1), and K = M−1 columns enter the sum. */
export interface HermitianShape {
  readonly N: number;
  readonly M: number;
}

/**
 * Everything about the inputs that costs O(M) or less. The O(N·M) scan of `expp` for non-finite values
 * runs in the workers while they pack (see hermitian-pack.ts), so the main thread stays O(M).
 */
export function checkHermitianInputs(expp: ComplexMatrix, distance: Float64Array): HermitianShape {
  if (typeof expp !== 'object' || expp === null || !(expp.data instanceof Float64Array)) {
    throw new HpairError('INVALID_ARGUMENT', 'expp must be a ComplexMatrix { rows, cols, data: Float64Array }');
  }
  const { rows, cols, data } = expp;
  if (!Number.isSafeInteger(rows) || rows < 0 || !Number.isSafeInteger(cols) || cols < 0) {
    throw new HpairError('INVALID_ARGUMENT', `expp.rows and expp.cols must be non-negative integers, got ${String(rows)}×${String(cols)}`);
  }
  if (data.length !== 2 * rows * cols) {
    throw new HpairError(
      'SHAPE_MISMATCH',
      `expp.data has ${data.length} values but a ${rows}×${cols} complex matrix needs ${2 * rows * cols} (interleaved re, im)`,
    );
  }
  if (rows < 1) throw new HpairError('EMPTY_INPUT', 'expp needs at least one row (N ≥ 1): row N−1 is the reference row');
  if (!(distance instanceof Float64Array)) {
    throw new HpairError('INVALID_ARGUMENT', 'distance must be a Float64Array');
  }
  if (distance.length !== cols) {
    throw new HpairError('SHAPE_MISMATCH', `distance has length ${distance.length} but expp has M = ${cols} columns`);
  }
  const bad = firstNonFinite(distance, 0, distance.length);
  if (bad >= 0) throw new HpairError('NON_FINITE', `distance[${bad}] is ${String(distance[bad])}; every value must be finite`);
  for (let m = 1; m < cols; m++) {
    if (distance[m] === 0) throw new HpairError('ZERO_DISTANCE', `distance[${m}] is 0; the sum divides by distance[m] for m ≥ 1`);
  }
  return { N: rows, M: cols };
}

/** Index of the first NaN/±Infinity in values[start…end), or −1. */
export function firstNonFinite(values: Float64Array, start: number, end: number): number {
  for (let i = start; i < end; i++) {
    // x − x is NaN exactly when x is NaN or ±Infinity: one subtraction instead of Number.isFinite's call.
    if (values[i] - values[i] !== 0) return i;
  }
  return -1;
}

export function nonFiniteExppError(expp: ComplexMatrix, flatValueIndex: number): HpairError {
  const element = Math.floor(flatValueIndex / 2);
  const row = Math.floor(element / expp.cols);
  const col = element - row * expp.cols;
  const part = flatValueIndex % 2 === 0 ? 'real' : 'imaginary';
  return new HpairError(
    'NON_FINITE',
    `expp[${row}, ${col}] has a non-finite ${part} part (${String(expp.data[flatValueIndex])}); every value must be finite`,
  );
}
