import { HpairError } from '../shared/errors.js';

/**
 * The one decoder of `.npy` elements, shared by every reader (whole files, streamed pieces, positioned row
 * reads): any accepted dtype and byte order to float64, each value exactly (float32 and integers of up to
 * 32 bits are exact float64s; a 64-bit integer must have |v| ≤ 2^53 or it is refused).
 */

/** Integer dtypes a real vector may have. */
export type IntegerKind = 'i1' | 'i2' | 'i4' | 'i8' | 'u1' | 'u2' | 'u4' | 'u8';
/** Every dtype the readers know, without byte order: `c16`, `f4`, `i8`, … */
export type NpyKind = 'c16' | 'c8' | 'f8' | 'f4' | IntegerKind;
export type ComplexKind = 'c16' | 'c8' | 'f8';
export type RealKind = Exclude<NpyKind, 'c16' | 'c8'>;

/** What decoding needs of a header. */
export interface ElementLayout {
  readonly kind: NpyKind;
  readonly littleEndian: boolean;
  readonly fortranOrder: boolean;
}

const NAMES: Record<RealKind, string> = {
  f8: 'float64', f4: 'float32', i1: 'int8', i2: 'int16', i4: 'int32', i8: 'int64', u1: 'uint8', u2: 'uint16', u4: 'uint32', u8: 'uint64',
};
const LIMIT = 2n ** 53n;

/**
 * Decodes `count` elements of a complex matrix (c16, c8, or f8 with imaginary part 0) from `view` at byte
 * `from`; they are the file's elements `first`, `first` + 1, … of a rows×cols array in C or Fortran order,
 * written interleaved into `out` at their row-major places.
 */
export function decodeComplexElements(
  view: DataView, from: number, count: number, first: number,
  header: ElementLayout, rows: number, cols: number, out: Float64Array,
): void {
  const { kind, littleEndian: little, fortranOrder: fortran } = header;
  const item = kind === 'c16' ? 16 : 8;
  for (let k = 0, p = first; k < count; k++, p++) {
    // Element p of the file: (p / cols, p % cols) in C order, (p % rows, p / rows) in Fortran order.
    let to = 2 * p;
    if (fortran) {
      const r = p % rows;
      to = 2 * (r * cols + (p - r) / rows);
    }
    const at = from + item * k;
    if (kind === 'c16') {
      out[to] = view.getFloat64(at, little);
      out[to + 1] = view.getFloat64(at + 8, little);
    } else if (kind === 'c8') {
      out[to] = view.getFloat32(at, little);
      out[to + 1] = view.getFloat32(at + 4, little);
    } else {
      out[to] = view.getFloat64(at, little);
      out[to + 1] = 0;
    }
  }
}

/** Decodes `count` real elements (floats or integers) from `view` at byte `from` into out[first…]. */
export function decodeRealElements(view: DataView, from: number, count: number, first: number, kind: RealKind, little: boolean, out: Float64Array): void {
  if (kind === 'i8' || kind === 'u8') {
    for (let k = 0; k < count; k++) {
      const value = kind === 'i8' ? view.getBigInt64(from + 8 * k, little) : view.getBigUint64(from + 8 * k, little);
      if (value > LIMIT || value < -LIMIT) {
        throw new HpairError('BAD_NPY', `element ${first + k} of the ${NAMES[kind]} array is ${value}, which has no exact float64 (integers must have |v| ≤ 2^53)`);
      }
      out[first + k] = Number(value);
    }
    return;
  }
  const read = READ[kind];
  for (let k = 0; k < count; k++) out[first + k] = read(view, from, k, little);
}

/** Element k after byte `from` of a float or an integer array of at most 32 bits. */
const READ: Record<Exclude<RealKind, 'i8' | 'u8'>, (view: DataView, from: number, k: number, le: boolean) => number> = {
  f8: (view, from, k, le) => view.getFloat64(from + 8 * k, le),
  f4: (view, from, k, le) => view.getFloat32(from + 4 * k, le),
  i1: (view, from, k) => view.getInt8(from + k),
  u1: (view, from, k) => view.getUint8(from + k),
  i2: (view, from, k, le) => view.getInt16(from + 2 * k, le),
  u2: (view, from, k, le) => view.getUint16(from + 2 * k, le),
  i4: (view, from, k, le) => view.getInt32(from + 4 * k, le),
  u4: (view, from, k, le) => view.getUint32(from + 4 * k, le),
};
