import { MAX_TYPED_ARRAY_LENGTH } from './complex-matrix.js';
import { HpairError } from './errors.js';

/**
 * The forms in which a caller may hand hpair its arrays, and how each is read. The one form read in place
 * (zero copies) is an interleaved, row-major Float64Array over a SharedArrayBuffer; every other form is
 * checked here in O(1) (shapes, lengths, stride bounds) and copied into shared memory when its job starts.
 */

/** Plain values: a typed array of either float width, or an array of numbers. */
export type RealArray = Float64Array | Float32Array | readonly number[];

/**
 * A strided view in the style of stdlib's ndarray: element (i, j) is at `offset + i·strides[0] + j·strides[1]`
 * (any strides, negative ones too). For a complex matrix `data` is interleaved (re, im) and offset and
 * strides count complex elements; for a real vector they count values.
 */
export interface StridedArray {
  readonly data: RealArray;
  readonly shape: readonly number[];
  readonly strides: readonly number[];
  /** @default 0 */
  readonly offset?: number;
}

/** rows×cols complex values interleaved row-major: `data[2(r·cols + c)]` is the real part of (r, c). */
export interface InterleavedComplexMatrix {
  readonly rows: number;
  readonly cols: number;
  readonly data: RealArray;
}

/** rows×cols complex values as two row-major planes: real parts `re`, imaginary parts `im`. */
export interface SplitComplexMatrix {
  readonly rows: number;
  readonly cols: number;
  readonly re: RealArray;
  readonly im: RealArray;
}

/** What `expp` may be. */
export type ComplexMatrixInput = InterleavedComplexMatrix | SplitComplexMatrix | StridedArray;
/** What `distance` may be. */
export type RealVectorInput = RealArray | StridedArray;

/** A checked complex matrix input: its shape, and how to read its rows. */
export interface ComplexSource {
  readonly rows: number;
  readonly cols: number;
  /** The input itself when it can be read in place (interleaved row-major float64 over shared memory). */
  readonly inPlace: Float64Array | undefined;
  /** Writes rows [r0, r1) interleaved into `out`, row-major, the first of them as row `at` of `out` (default r0). */
  readRows(out: Float64Array, r0: number, r1: number, at?: number): void;
}

const isFloatArray = (value: unknown): value is Float64Array | Float32Array =>
  ArrayBuffer.isView(value) && (value instanceof Float64Array || value instanceof Float32Array);
const isRealArray = (value: unknown): value is RealArray => isFloatArray(value) || Array.isArray(value);
const isShared = (view: ArrayBufferView): boolean => view.buffer instanceof SharedArrayBuffer;

/** Checks a complex matrix input of any accepted form. O(1): the values are read later, by readRows. */
export function complexSource(input: ComplexMatrixInput, name: string): ComplexSource {
  if (typeof input !== 'object' || input === null) throw formError(name);
  if ('strides' in input || 'shape' in input) return stridedComplex(input as StridedArray, name);
  const { rows, cols } = input as { rows: unknown; cols: unknown };
  if (!Number.isSafeInteger(rows) || (rows as number) < 0 || !Number.isSafeInteger(cols) || (cols as number) < 0) {
    throw new HpairError('INVALID_ARGUMENT', `${name}.rows and ${name}.cols must be non-negative integers, got ${String(rows)}×${String(cols)}`);
  }
  const r = rows as number;
  const c = cols as number;
  if (2 * r * c > MAX_TYPED_ARRAY_LENGTH) throw new HpairError('TOO_LARGE', `${name} is ${r}×${c}: more values than one typed array holds (2^32)`);
  if ('re' in input || 'im' in input) {
    const { re, im } = input as SplitComplexMatrix;
    for (const [part, plane] of [['re', re], ['im', im]] as const) {
      if (!isRealArray(plane)) throw new HpairError('INVALID_ARGUMENT', `${name}.${part} must be a Float64Array, Float32Array or array of numbers`);
      if (plane.length !== r * c) throw new HpairError('SHAPE_MISMATCH', `${name}.${part} has ${plane.length} values but a ${r}×${c} matrix needs ${r * c}`);
    }
    return {
      rows: r,
      cols: c,
      inPlace: undefined,
      readRows(out, r0, r1, at = r0) {
        const shift = (at - r0) * c;
        for (let k = r0 * c; k < r1 * c; k++) {
          out[2 * (k + shift)] = re[k];
          out[2 * (k + shift) + 1] = im[k];
        }
      },
    };
  }
  const { data } = input as InterleavedComplexMatrix;
  if (!isRealArray(data)) throw formError(name);
  if (data.length !== 2 * r * c) {
    throw new HpairError('SHAPE_MISMATCH', `${name}.data has ${data.length} values but a ${r}×${c} complex matrix needs ${2 * r * c} (interleaved re, im)`);
  }
  return denseComplex(data, r, c);
}

function denseComplex(data: RealArray, rows: number, cols: number): ComplexSource {
  return {
    rows,
    cols,
    inPlace: data instanceof Float64Array && isShared(data) ? data : undefined,
    readRows(out, r0, r1, at = r0) {
      const start = 2 * r0 * cols;
      const end = 2 * r1 * cols;
      const to = 2 * at * cols;
      if (isFloatArray(data)) out.set(data.subarray(start, end), to);
      else for (let k = start; k < end; k++) out[to + k - start] = data[k];
    },
  };
}

function stridedComplex(input: StridedArray, name: string): ComplexSource {
  const { data, shape, strides } = input;
  const offset = input.offset ?? 0;
  if (!isRealArray(data)) throw new HpairError('INVALID_ARGUMENT', `${name}.data must be a Float64Array, Float32Array or array of numbers (interleaved re, im)`);
  if (data.length % 2 !== 0) throw new HpairError('SHAPE_MISMATCH', `${name}.data has an odd length ${data.length}; complex values are interleaved (re, im)`);
  const [rows, cols] = checkStrided(shape, strides, offset, 2, data.length / 2, name);
  if (2 * rows * cols > MAX_TYPED_ARRAY_LENGTH) throw new HpairError('TOO_LARGE', `${name} is ${rows}×${cols}: more values than one typed array holds (2^32)`);
  // Dense row-major is the interleaved form: read in place when it is shared float64.
  if ((strides[1] === 1 || cols <= 1) && (strides[0] === cols || rows <= 1)) {
    const view = isFloatArray(data) ? data.subarray(2 * offset, 2 * (offset + rows * cols)) : data.slice(2 * offset, 2 * (offset + rows * cols));
    return denseComplex(view, rows, cols);
  }
  const [s0, s1] = strides;
  return {
    rows,
    cols,
    inPlace: undefined,
    readRows(out, r0, r1, at = r0) {
      for (let r = r0; r < r1; r++) {
        for (let c = 0; c < cols; c++) {
          const from = 2 * (offset + r * s0 + c * s1);
          const to = 2 * ((r - r0 + at) * cols + c);
          out[to] = data[from];
          out[to + 1] = data[from + 1];
        }
      }
    },
  };
}

/** A real vector input of any accepted form, as one Float64Array (the input itself when it is one). O(length). */
export function realVector(input: RealVectorInput, name: string): Float64Array {
  if (input instanceof Float64Array && ArrayBuffer.isView(input)) return input;
  if (isRealArray(input)) return Float64Array.from(input);
  if (typeof input === 'object' && input !== null && ('strides' in input || 'shape' in input)) {
    const { data, shape, strides } = input;
    const offset = input.offset ?? 0;
    if (!isRealArray(data)) throw new HpairError('INVALID_ARGUMENT', `${name}.data must be a Float64Array, Float32Array or array of numbers`);
    const [length] = checkStrided(shape, strides, offset, 1, data.length, name);
    const out = new Float64Array(length);
    for (let k = 0; k < length; k++) out[k] = data[offset + k * strides[0]];
    return out;
  }
  throw new HpairError('INVALID_ARGUMENT', `${name} must be a Float64Array, Float32Array, array of numbers or strided { data, shape, strides, offset }`);
}

/** Checks a strided view's shape, strides and offset against its data: every element it names exists. */
function checkStrided(shape: readonly number[], strides: readonly number[], offset: number, dims: 1 | 2, elements: number, name: string): number[] {
  if (!Array.isArray(shape) || shape.length !== dims || !shape.every((n) => Number.isSafeInteger(n) && n >= 0)) {
    throw new HpairError('INVALID_ARGUMENT', `${name}.shape must be ${dims === 2 ? '[rows, cols]' : '[length]'} of non-negative integers`);
  }
  if (!Array.isArray(strides) || strides.length !== dims || !strides.every((s) => Number.isSafeInteger(s))) {
    throw new HpairError('INVALID_ARGUMENT', `${name}.strides must be ${dims} integers`);
  }
  if (!Number.isSafeInteger(offset) || offset < 0) throw new HpairError('INVALID_ARGUMENT', `${name}.offset must be a non-negative integer`);
  if (shape.every((n) => n > 0)) {
    // The extremes of offset + Σ i_k·s_k lie at the corners: check the lowest and highest.
    let low = offset;
    let high = offset;
    shape.forEach((n, k) => {
      const reach = (n - 1) * strides[k];
      if (reach < 0) low += reach;
      else high += reach;
    });
    if (low < 0 || high >= elements) {
      throw new HpairError('SHAPE_MISMATCH', `${name}'s strides reach element ${low < 0 ? low : high} but data holds ${elements}`);
    }
  }
  return [...shape];
}

function formError(name: string): HpairError {
  return new HpairError(
    'INVALID_ARGUMENT',
    `${name} must be a complex matrix: { rows, cols, data } (interleaved), { rows, cols, re, im }, or strided { data, shape, strides, offset }, with Float64Array, Float32Array or number[] values`,
  );
}
