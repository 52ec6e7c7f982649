import { MAX_TYPED_ARRAY_LENGTH } from './complex-matrix.js';
import { HpairError, describeError } from './errors.js';

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

const resizable = Reflect.getOwnPropertyDescriptor(ArrayBuffer.prototype, 'resizable')?.get;
const growable = Reflect.getOwnPropertyDescriptor(SharedArrayBuffer.prototype, 'growable')?.get;
/** A buffer whose length may change after the call: a resizable ArrayBuffer or a growable SharedArrayBuffer. */
function canResize(buffer: ArrayBufferLike): boolean {
  const getter = buffer instanceof SharedArrayBuffer ? growable : resizable;
  return getter !== undefined && Reflect.apply(getter, buffer, []) === true;
}

/**
 * A float view with its length fixed at the call. A view that tracks a resizable or growable buffer's
 * length would otherwise change length between the call and the copy (a job starts later, and its copy
 * yields to the event loop between pieces); a fixed view keeps the call's length, and reads as empty if
 * the buffer shrinks below it, which the copy then refuses (see checkedLength).
 */
function fixedLength<T extends Float64Array | Float32Array>(view: T): T {
  if (!canResize(view.buffer)) return view;
  return (view instanceof Float64Array ? new Float64Array(view.buffer, view.byteOffset, view.length) : new Float32Array(view.buffer, view.byteOffset, view.length)) as T;
}

/**
 * Before every piece of a copy: the values are still all there. A resizable ArrayBuffer shrunk, or any
 * non-shared buffer detached (transferred), since the call, or an array that lost elements, would copy
 * fewer values than the job needs, and the rest of its scratch would still hold an earlier job's data.
 */
function checkedLength(values: RealArray, expected: number, what: string): void {
  if (values.length !== expected) {
    throw new HpairError(
      'INVALID_ARGUMENT',
      `${what} holds ${values.length} values now but held ${expected} when the job was submitted: an input must not be resized, detached or shortened until its job settles`,
    );
  }
}

/** A value of a number[]: only a number is one (a string, null, BigInt or object is not converted). */
function numberAt(values: readonly number[], index: number, what: string, shift = 0): number {
  const value: unknown = values[index];
  if (typeof value !== 'number') throw new HpairError('INVALID_ARGUMENT', `${what}[${index + shift}] is ${describeValue(value)}, not a number`);
  return value;
}

function describeValue(value: unknown): string {
  if (value === null || value === undefined) return String(value);
  if (typeof value === 'string') return `the string '${value.length > 20 ? `${value.slice(0, 20)}…` : value}'`;
  if (typeof value === 'bigint') return 'a BigInt';
  return `a ${typeof value}`;
}

/**
 * readRows as the job's copy calls it, later and away from the caller's stack: anything but an HpairError it
 * throws (a Proxy trap, a throwing getter on an array element) becomes INVALID_ARGUMENT naming the input.
 */
function guarded(source: ComplexSource, name: string): ComplexSource {
  const read = source.readRows;
  return {
    ...source,
    readRows(out, r0, r1, at) {
      try {
        read(out, r0, r1, at);
      } catch (error) {
        if (error instanceof HpairError) throw error;
        throw new HpairError('INVALID_ARGUMENT', `${name} could not be read (${describeError(error)})`, { cause: error });
      }
    },
  };
}

/** Checks a complex matrix input of any accepted form. O(1): the values are read later, by readRows. */
export function complexSource(input: ComplexMatrixInput, name: string): ComplexSource {
  return guarded(readComplexSource(input, name), name);
}

function readComplexSource(input: ComplexMatrixInput, name: string): ComplexSource {
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
    const planes = input as SplitComplexMatrix;
    const re = isFloatArray(planes.re) ? fixedLength(planes.re) : planes.re;
    const im = isFloatArray(planes.im) ? fixedLength(planes.im) : planes.im;
    for (const [part, plane] of [['re', re], ['im', im]] as const) {
      if (!isRealArray(plane)) throw new HpairError('INVALID_ARGUMENT', `${name}.${part} must be a Float64Array, Float32Array or array of numbers`);
      if (plane.length !== r * c) throw new HpairError('SHAPE_MISMATCH', `${name}.${part} has ${plane.length} values but a ${r}×${c} matrix needs ${r * c}`);
    }
    return {
      rows: r,
      cols: c,
      inPlace: undefined,
      readRows(out, r0, r1, at = r0) {
        checkedLength(re, r * c, `${name}.re`);
        checkedLength(im, r * c, `${name}.im`);
        const shift = (at - r0) * c;
        const reTyped = isFloatArray(re);
        const imTyped = isFloatArray(im);
        for (let k = r0 * c; k < r1 * c; k++) {
          out[2 * (k + shift)] = reTyped ? re[k] : numberAt(re, k, `${name}.re`);
          out[2 * (k + shift) + 1] = imTyped ? im[k] : numberAt(im, k, `${name}.im`);
        }
      },
    };
  }
  const given = (input as InterleavedComplexMatrix).data;
  const data = isFloatArray(given) ? fixedLength(given) : given;
  if (!isRealArray(data)) throw formError(name);
  if (data.length !== 2 * r * c) {
    throw new HpairError('SHAPE_MISMATCH', `${name}.data has ${data.length} values but a ${r}×${c} complex matrix needs ${2 * r * c} (interleaved re, im)`);
  }
  return denseComplex(data, r, c, `${name}.data`, 0);
}

/** `data` holds the matrix from value `first` on (a strided input's offset), named `what` in messages. */
function denseComplex(data: RealArray, rows: number, cols: number, what: string, first: number): ComplexSource {
  const length = data.length;
  return {
    rows,
    cols,
    inPlace: data instanceof Float64Array && isShared(data) ? data : undefined,
    readRows(out, r0, r1, at = r0) {
      checkedLength(data, length, what);
      const start = 2 * r0 * cols;
      const end = 2 * r1 * cols;
      const to = 2 * at * cols;
      if (isFloatArray(data)) out.set(data.subarray(start, end), to);
      else for (let k = start; k < end; k++) out[to + k - start] = numberAt(data, k, what, first);
    },
  };
}

function stridedComplex(input: StridedArray, name: string): ComplexSource {
  const given = input.data;
  const data = isFloatArray(given) ? fixedLength(given) : given;
  const offset = input.offset ?? 0;
  if (!isRealArray(data)) throw new HpairError('INVALID_ARGUMENT', `${name}.data must be a Float64Array, Float32Array or array of numbers (interleaved re, im)`);
  const length = data.length;
  if (length % 2 !== 0) throw new HpairError('SHAPE_MISMATCH', `${name}.data has an odd length ${length}; complex values are interleaved (re, im)`);
  const { shape: [rows, cols], strides: [s0, s1] } = checkStrided(input.shape, input.strides, offset, 2, length / 2, name);
  if (2 * rows * cols > MAX_TYPED_ARRAY_LENGTH) throw new HpairError('TOO_LARGE', `${name} is ${rows}×${cols}: more values than one typed array holds (2^32)`);
  // Dense row-major is the interleaved form: read in place when it is shared float64.
  if ((s1 === 1 || cols <= 1) && (s0 === cols || rows <= 1)) {
    const view = isFloatArray(data) ? data.subarray(2 * offset, 2 * (offset + rows * cols)) : data.slice(2 * offset, 2 * (offset + rows * cols));
    return denseComplex(view, rows, cols, `${name}.data`, 2 * offset);
  }
  const typed = isFloatArray(data);
  const what = `${name}.data`;
  return {
    rows,
    cols,
    inPlace: undefined,
    readRows(out, r0, r1, at = r0) {
      checkedLength(data, length, what);
      for (let r = r0; r < r1; r++) {
        for (let c = 0; c < cols; c++) {
          const from = 2 * (offset + r * s0 + c * s1);
          const to = 2 * ((r - r0 + at) * cols + c);
          out[to] = typed ? data[from] : numberAt(data, from, what);
          out[to + 1] = typed ? data[from + 1] : numberAt(data, from + 1, what);
        }
      }
    },
  };
}

/**
 * A real vector input of any accepted form, as one Float64Array: the input itself when it is a Float64Array
 * over a SharedArrayBuffer (nothing can shrink or detach one; a growable one is viewed at its length now),
 * otherwise a copy made now, O(length), so what the job reads later is what the caller passed.
 */
export function realVector(input: RealVectorInput, name: string): Float64Array {
  if (input instanceof Float64Array && ArrayBuffer.isView(input)) return isShared(input) ? fixedLength(input) : new Float64Array(input);
  if (isFloatArray(input)) return new Float64Array(input);
  if (Array.isArray(input)) {
    const values = input as readonly number[];
    const out = new Float64Array(values.length);
    for (let k = 0; k < out.length; k++) out[k] = numberAt(values, k, name);
    return out;
  }
  if (typeof input === 'object' && input !== null && ('strides' in input || 'shape' in input)) {
    const strided = input as StridedArray;
    const { data } = strided;
    const offset = strided.offset ?? 0;
    if (!isRealArray(data)) throw new HpairError('INVALID_ARGUMENT', `${name}.data must be a Float64Array, Float32Array or array of numbers`);
    const {
      shape: [length],
      strides: [stride],
    } = checkStrided(strided.shape, strided.strides, offset, 1, data.length, name);
    const out = new Float64Array(length);
    const typed = isFloatArray(data);
    for (let k = 0; k < length; k++) {
      const at = offset + k * stride;
      out[k] = typed ? data[at] : numberAt(data as readonly number[], at, `${name}.data`);
    }
    return out;
  }
  throw new HpairError('INVALID_ARGUMENT', `${name} must be a Float64Array, Float32Array, array of numbers or strided { data, shape, strides, offset }`);
}

/**
 * Checks a strided view's shape, strides and offset against its data: every element it names exists. Returns
 * copies of shape and strides, read once, so the copy later uses exactly what was checked.
 */
function checkStrided(
  shapeIn: readonly number[],
  stridesIn: readonly number[],
  offset: number,
  dims: 1 | 2,
  elements: number,
  name: string,
): { shape: number[]; strides: number[] } {
  if (!Array.isArray(shapeIn) || shapeIn.length !== dims) throw new HpairError('INVALID_ARGUMENT', `${name}.shape must be ${dims === 2 ? '[rows, cols]' : '[length]'} of non-negative integers`);
  if (!Array.isArray(stridesIn) || stridesIn.length !== dims) throw new HpairError('INVALID_ARGUMENT', `${name}.strides must be ${dims} integers`);
  const shape: number[] = [];
  const strides: number[] = [];
  for (let k = 0; k < dims; k++) {
    shape.push(shapeIn[k]);
    strides.push(stridesIn[k]);
  }
  if (!shape.every((n) => Number.isSafeInteger(n) && n >= 0)) {
    throw new HpairError('INVALID_ARGUMENT', `${name}.shape must be ${dims === 2 ? '[rows, cols]' : '[length]'} of non-negative integers`);
  }
  if (!strides.every((s) => Number.isSafeInteger(s))) throw new HpairError('INVALID_ARGUMENT', `${name}.strides must be ${dims} integers`);
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
  return { shape, strides };
}

function formError(name: string): HpairError {
  return new HpairError(
    'INVALID_ARGUMENT',
    `${name} must be a complex matrix: { rows, cols, data } (interleaved), { rows, cols, re, im }, or strided { data, shape, strides, offset }, with Float64Array, Float32Array or number[] values`,
  );
}
