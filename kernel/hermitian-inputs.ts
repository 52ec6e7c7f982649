import type { ComplexMatrix } from '../shared/complex-matrix.js';
import { HpairError } from '../shared/errors.js';

/** Problem dimensions: expp is N×M, H is (N−1)×(N−1), and K = M−1 columns enter the sum. */
export interface HermitianShape {
  readonly N: number;
  readonly M: number;
}

/**
 * Everything about H's inputs that costs O(M) or less, once their forms are read (shared/array-inputs.ts).
 * The O(N·M) scan of expp for non-finite values runs in the workers (hermitian-check.ts, hermitian-pack.ts),
 * so the main thread stays O(M).
 */
export function checkHermitianShape(rows: number, cols: number, distance: Float64Array): HermitianShape {
  if (rows < 1) throw new HpairError('EMPTY_INPUT', 'expp needs at least one row (N ≥ 1): row N−1 is the reference row');
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

/** The checks of checkHermitianShape, for the dense forms the reference port takes. */
export function checkHermitianInputs(expp: ComplexMatrix, distance: Float64Array): HermitianShape {
  if (typeof expp !== 'object' || expp === null || !(expp.data instanceof Float64Array)) {
    throw new HpairError('INVALID_ARGUMENT', 'expp must be a ComplexMatrix { rows, cols, data: Float64Array }');
  }
  if (expp.data.length !== 2 * expp.rows * expp.cols) {
    throw new HpairError('SHAPE_MISMATCH', `expp.data has ${expp.data.length} values but a ${expp.rows}×${expp.cols} complex matrix needs ${2 * expp.rows * expp.cols}`);
  }
  if (!(distance instanceof Float64Array)) throw new HpairError('INVALID_ARGUMENT', 'distance must be a Float64Array');
  return checkHermitianShape(expp.rows, expp.cols, distance);
}

/** Index of the first NaN/±Infinity in values[start…end), or −1. */
export function firstNonFinite(values: Float64Array, start: number, end: number): number {
  for (let i = start; i < end; i++) {
    // x − x is NaN exactly when x is NaN or ±Infinity: one subtraction instead of Number.isFinite's call.
    if (values[i] - values[i] !== 0) return i;
  }
  return -1;
}

/**
 * Names expp's first non-finite value by row, column and part; `values` is expp (or the rows of it a job
 * gathered) interleaved row-major, and `row` the caller's row of it when they differ.
 */
export function nonFiniteExppError(values: Float64Array, cols: number, flatValueIndex: number, row = Math.floor(flatValueIndex / 2 / cols)): HpairError {
  const element = Math.floor(flatValueIndex / 2);
  const col = element % cols;
  const part = flatValueIndex % 2 === 0 ? 'real' : 'imaginary';
  return new HpairError(
    'NON_FINITE',
    `expp[${row}, ${col}] has a non-finite ${part} part (${String(values[flatValueIndex])}); every value must be finite`,
  );
}
