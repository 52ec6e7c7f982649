import { HpairError } from './errors.js';

/**
 * A dense complex matrix, row-major, stored interleaved: element (r, c) is
 * `data[2 * (r * cols + c)]` (real) and `data[2 * (r * cols + c) + 1]` (imaginary).
 * Results from hpair always have `data` over a `SharedArrayBuffer`.
 */
export interface ComplexMatrix {
  readonly rows: number;
  readonly cols: number;
  readonly data: Float64Array;
}

/** The largest element count of one typed array on Node ≥ 20 (V8 caps typed arrays at 2^32 elements). */
export const MAX_TYPED_ARRAY_LENGTH = 2 ** 32;

/** A zero-filled `Float64Array` over a fresh `SharedArrayBuffer`. */
export function createSharedFloat64(length: number): Float64Array {
  assertFloat64Length(length);
  return new Float64Array(new SharedArrayBuffer(length * Float64Array.BYTES_PER_ELEMENT));
}

function assertFloat64Length(length: number): void {
  if (!Number.isSafeInteger(length) || length < 0 || length > MAX_TYPED_ARRAY_LENGTH) {
    throw new HpairError('TOO_LARGE', `cannot allocate ${length} float64 values (typed arrays hold at most 2^32)`);
  }
}

/**
 * Allocates a zeroed rows×cols complex matrix in shared memory, for callers who fill inputs in place:
 * hpair then reads it without copying.
 */
export function createComplexMatrix(rows: number, cols: number): ComplexMatrix {
  return { rows, cols, data: createSharedFloat64(complexMatrixLength(rows, cols)) };
}

/** The float64 count of a rows×cols complex matrix, after checking the shape (INVALID_ARGUMENT, TOO_LARGE). */
export function complexMatrixLength(rows: number, cols: number): number {
  for (const [name, value] of [['rows', rows], ['cols', cols]] as const) {
    if (!Number.isSafeInteger(value) || value < 0) {
      throw new HpairError('INVALID_ARGUMENT', `${name} must be a non-negative integer, got ${String(value)}`);
    }
  }
  const length = 2 * rows * cols;
  assertFloat64Length(length);
  return length;
}

export function isSharedView(view: ArrayBufferView): boolean {
  return view.buffer instanceof SharedArrayBuffer;
}

/**
 * Returns `view` itself when it already lives in shared memory (no copy), otherwise one copy of it
 * in a new `SharedArrayBuffer`. `copied` tells which happened.
 */
export function toSharedFloat64(view: Float64Array): { view: Float64Array; copied: boolean } {
  if (isSharedView(view)) return { view, copied: false };
  const shared = createSharedFloat64(view.length);
  shared.set(view);
  return { view: shared, copied: true };
}
