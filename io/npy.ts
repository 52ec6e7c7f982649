import { createComplexMatrix, createSharedFloat64, type ComplexMatrix } from '../shared/complex-matrix.js';
import { HpairError } from '../shared/errors.js';
import { decodeComplexElements, decodeRealElements, type ComplexKind, type IntegerKind, type NpyKind } from './npy-elements.js';

/**
 * NumPy `.npy` files (format versions 1.0, 2.0 and 3.0), read strictly: files come from users and
 * services, so every length in the header is checked against the bytes actually present before
 * anything is allocated, and the result is never larger than the file implies.
 *
 * Read: complex128 (`c16`), complex64 (`c8`, widened) and float64 (`f8`, imaginary part 0) as a
 * complex matrix; float64, float32 (widened) and every integer type (int8…int64, uint8…uint64, widened
 * exactly: a 64-bit value must have |v| ≤ 2^53) as a vector. Either byte order, C or Fortran order.
 * Results are in shared memory, ready for a pool without another copy.
 * Written: complex128, little-endian, C order, format 1.0 (2.0 if the header needs it).
 */

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY
/**
 * NumPy itself refuses headers over 10 000 bytes by default, and writes ~128 for these arrays; we allow
 * more, but parsing runs on the caller's thread in time proportional to the header, so not unboundedly.
 */
const MAX_HEADER_BYTES = 1 << 16;

export interface NpyHeader {
  /** Type code without byte order, e.g. `c16`, `f4`, `i8`. */
  readonly kind: NpyKind;
  /** The dtype as the file spells it, e.g. `<c16`: for messages. */
  readonly descr: string;
  readonly littleEndian: boolean;
  readonly fortranOrder: boolean;
  readonly shape: readonly number[];
  /** Byte offset of the data in the file. */
  readonly dataOffset: number;
}

const ITEM_BYTES = { c16: 16, c8: 8, f8: 8, f4: 4, i1: 1, i2: 2, i4: 4, i8: 8, u1: 1, u2: 2, u4: 4, u8: 8 } as const;
const DTYPE_NAMES: Record<NpyHeader['kind'], string> = {
  c16: 'complex128', c8: 'complex64', f8: 'float64', f4: 'float32',
  i1: 'int8', i2: 'int16', i4: 'int32', i8: 'int64', u1: 'uint8', u2: 'uint16', u4: 'uint32', u8: 'uint64',
};

/** The dtypes a reader accepts, and how its refusals name them. */
export interface NpyDtypes {
  readonly kinds: readonly NpyHeader['kind'][];
  readonly names: string;
}
const INTEGER_KINDS: readonly IntegerKind[] = ['i1', 'i2', 'i4', 'i8', 'u1', 'u2', 'u4', 'u8'];
export const COMPLEX_DTYPES: NpyDtypes = { kinds: ['c16', 'c8', 'f8'], names: 'complex128, complex64, float64' };
export const REAL_DTYPES: NpyDtypes = { kinds: ['f8', 'f4', ...INTEGER_KINDS], names: 'float64, float32, integers' };
/** parseNpyHeader's default: the float and complex dtypes (readers that widen integers ask for them). */
export const FLOAT_DTYPES: NpyDtypes = { kinds: ['c16', 'c8', 'f8', 'f4'], names: 'complex128, complex64, float64, float32' };
const ANY_DTYPES: NpyDtypes = { kinds: [...FLOAT_DTYPES.kinds, ...INTEGER_KINDS], names: 'complex128, complex64, float64, float32, integers' };

function bad(message: string): HpairError {
  return new HpairError('BAD_NPY', message);
}

/**
 * Length in bytes of the `.npy` file at the start of `bytes` (header + data), for reading several files
 * sent back to back. Throws BAD_NPY if the header is bad or the data is cut short.
 */
export function npyFileLength(bytes: Uint8Array): number {
  const header = parseNpyHeader(bytes, false, ANY_DTYPES);
  return header.dataOffset + header.shape.reduce((a, b) => a * b, 1) * ITEM_BYTES[header.kind];
}

/** Bytes per element of a dtype the readers accept. */
export function npyItemBytes(kind: NpyHeader['kind']): number {
  return ITEM_BYTES[kind];
}

/**
 * Parses and checks the header; the data length must match the shape exactly (or, unless `exact`, fit).
 * With `exact = 'header'`, `bytes` need only hold the header: the data is not looked at (for readers
 * that receive it later, such as NpyReceiver). Any dtype outside `accepted` is refused with a message
 * that names what is accepted.
 */
export function parseNpyHeader(bytes: Uint8Array, exact: boolean | 'header' = true, accepted: NpyDtypes = FLOAT_DTYPES): NpyHeader {
  if (bytes.length < 10 || MAGIC.some((value, i) => bytes[i] !== value)) throw bad('not a .npy file (no \\x93NUMPY magic)');
  const major = bytes[6];
  if (major < 1 || major > 3) throw bad(`unsupported .npy format version ${major}.${bytes[7]}`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const prefix = major === 1 ? 10 : 12;
  if (bytes.length < prefix) throw bad('truncated .npy header');
  const headerLength = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
  if (headerLength > MAX_HEADER_BYTES) throw bad(`.npy header claims ${headerLength} bytes (at most ${MAX_HEADER_BYTES})`);
  const dataOffset = prefix + headerLength;
  if (dataOffset > bytes.length) throw bad(`.npy header claims ${headerLength} bytes but the file ends at ${bytes.length}`);
  const text = new TextDecoder(major === 3 ? 'utf-8' : 'latin1').decode(bytes.subarray(prefix, dataOffset));
  const fields = parseHeaderDict(text);

  const descr = /^([<>|])(c16|c8|f8|f4|[iu][1248])$/.exec(fields.descr);
  if (descr === null || !accepted.kinds.includes(descr[2] as NpyHeader['kind'])) throw unsupported(fields.descr, accepted.names);
  const kind = descr[2] as NpyHeader['kind'];
  const shape = fields.shape;
  let elements = 1n;
  for (const dim of shape) elements *= BigInt(dim);
  const expected = elements * BigInt(ITEM_BYTES[kind]);
  const present = BigInt(bytes.length - dataOffset);
  if (exact !== 'header' && (exact ? expected !== present : expected > present)) {
    throw bad(`.npy shape (${shape.join(', ')}) of ${fields.descr} needs ${expected} data bytes but the file has ${present}`);
  }
  return { kind, descr: fields.descr, littleEndian: descr[1] !== '>', fortranOrder: fields.fortranOrder, shape, dataOffset };
}

function unsupported(descr: string, accepted: string): HpairError {
  const known = /^[<>|]([a-z]\d+)$/.exec(descr)?.[1];
  const name = known !== undefined && known in DTYPE_NAMES ? `${DTYPE_NAMES[known as NpyHeader['kind']]}; ` : '';
  return bad(`unsupported dtype '${descr}' (${name}accepted: ${accepted})`);
}

/** Reads an N×M complex matrix (c16, c8 or f8) into shared memory. */
export function parseComplexMatrixNpy(bytes: Uint8Array): ComplexMatrix {
  const header = parseNpyHeader(bytes, true, COMPLEX_DTYPES);
  if (header.shape.length !== 2) throw bad(`expected a 2-D array, got shape (${header.shape.join(', ')})`);
  const [rows, cols] = header.shape;
  const out = createComplexMatrix(rows, cols);
  const { kind, littleEndian, dataOffset, fortranOrder } = header;
  if (kind === 'c16' && littleEndian && !fortranOrder && isLittleEndianHost) {
    // The common case: the bytes are already the layout we want; one copy into shared memory.
    new Uint8Array(out.data.buffer).set(bytes.subarray(dataOffset));
    return out;
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset + dataOffset, bytes.byteLength - dataOffset);
  decodeComplexElements(view, 0, rows * cols, 0, { kind: kind as ComplexKind, littleEndian, fortranOrder }, rows, cols, out.data);
  return out;
}

/**
 * Reads a 1-D real vector into shared memory: float64, float32 (widened), or any integer type (widened
 * exactly; a 64-bit integer outside ±2^53 has no exact float64, so the first such value is refused).
 */
export function parseFloat64VectorNpy(bytes: Uint8Array): Float64Array {
  const header = parseNpyHeader(bytes, true, REAL_DTYPES);
  const { kind, littleEndian, dataOffset } = header;
  if (kind === 'c16' || kind === 'c8') throw unsupported(header.descr, REAL_DTYPES.names); // for the type checker: refused above
  if (header.shape.length !== 1) throw bad(`expected a 1-D array, got shape (${header.shape.join(', ')})`);
  const [length] = header.shape;
  const out = createSharedFloat64(length);
  const view = new DataView(bytes.buffer, bytes.byteOffset + dataOffset, bytes.byteLength - dataOffset);
  decodeRealElements(view, 0, length, 0, kind, littleEndian, out);
  return out;
}

/** The header of a little-endian complex128 C-order array of this shape, padded to 64 bytes as NumPy does. */
export function complexNpyHeader(shape: readonly number[]): Uint8Array {
  return npyHeader('<c16', shape);
}

function npyHeader(descr: '<c16' | '<f8', shape: readonly number[]): Uint8Array {
  const dict = `{'descr': '${descr}', 'fortran_order': False, 'shape': (${shape.join(', ')}${shape.length === 1 ? ',' : ''}), }`;
  for (const [major, prefix] of [[1, 10], [2, 12]] as const) {
    const padded = Math.ceil((prefix + dict.length + 1) / 64) * 64;
    const headerLength = padded - prefix;
    if (major === 1 && headerLength > 0xffff) continue;
    const out = new Uint8Array(padded);
    out.set(MAGIC);
    out[6] = major;
    out[7] = 0;
    const view = new DataView(out.buffer);
    if (major === 1) view.setUint16(8, headerLength, true);
    else view.setUint32(8, headerLength, true);
    const text = dict.padEnd(headerLength - 1, ' ') + '\n';
    for (let i = 0; i < text.length; i++) out[prefix + i] = text.charCodeAt(i);
    return out;
  }
  throw bad('shape too long for a .npy header');
}

/** H as `.npy` bytes: header followed by the data (one copy of the data). */
export function encodeComplexMatrixNpy(matrix: ComplexMatrix): Uint8Array {
  const header = complexNpyHeader([matrix.rows, matrix.cols]);
  const out = new Uint8Array(header.length + matrix.data.byteLength);
  out.set(header);
  out.set(complexMatrixBytes(matrix), header.length);
  return out;
}

/** A real vector as little-endian float64 `.npy` bytes. */
export function encodeFloat64VectorNpy(values: Float64Array): Uint8Array {
  if (!isLittleEndianHost) throw new HpairError('IO_ERROR', 'writing .npy needs a little-endian host');
  const header = npyHeader('<f8', [values.length]);
  const out = new Uint8Array(header.length + values.byteLength);
  out.set(header);
  out.set(new Uint8Array(values.buffer, values.byteOffset, values.byteLength), header.length);
  return out;
}

/** The bytes of `matrix.data` as NumPy's `<c16` expects them (a view, no copy, on little-endian hosts). */
export function complexMatrixBytes(matrix: ComplexMatrix): Uint8Array {
  if (!isLittleEndianHost) throw new HpairError('IO_ERROR', 'writing .npy needs a little-endian host');
  return new Uint8Array(matrix.data.buffer, matrix.data.byteOffset, matrix.data.byteLength);
}

const isLittleEndianHost = new Uint8Array(new Float64Array([1]).buffer)[7] === 0x3f;

interface HeaderFields {
  descr: string;
  fortranOrder: boolean;
  shape: number[];
}

/**
 * The header is a Python dict literal. We accept exactly the three keys NumPy writes, each once, with
 * a string, a bool and a tuple of non-negative integers, and nothing else: no eval, no lenient regex.
 */
function parseHeaderDict(text: string): HeaderFields {
  let at = 0;
  const skip = (): void => {
    while (at < text.length && /\s/.test(text[at])) at++;
  };
  const expect = (char: string): void => {
    skip();
    if (text[at] !== char) throw bad(`malformed .npy header: expected '${char}' at offset ${at}`);
    at++;
  };
  const string = (): string => {
    skip();
    const quote = text[at];
    if (quote !== "'" && quote !== '"') throw bad(`malformed .npy header: expected a string at offset ${at}`);
    const end = text.indexOf(quote, at + 1);
    if (end < 0) throw bad('malformed .npy header: unterminated string');
    const value = text.slice(at + 1, end);
    at = end + 1;
    return value;
  };
  const fields: Partial<HeaderFields> = {};
  expect('{');
  for (;;) {
    skip();
    if (text[at] === '}') break;
    const key = string();
    expect(':');
    skip();
    if (key in fields) throw bad(`malformed .npy header: '${key}' appears twice`);
    if (key === 'descr') {
      if (text[at] !== "'" && text[at] !== '"') throw bad('unsupported dtype: structured or object arrays are not read');
      fields.descr = string();
    } else if (key === 'fortran_order') {
      const word = /^(True|False)/.exec(text.slice(at, at + 5));
      if (word === null) throw bad('malformed .npy header: fortran_order must be True or False');
      fields.fortranOrder = word[1] === 'True';
      at += word[1].length;
    } else if (key === 'shape') {
      fields.shape = parseShape();
    } else {
      throw bad(`malformed .npy header: unexpected key '${key}'`);
    }
    skip();
    if (text[at] === ',') at++;
    else if (text[at] !== '}') throw bad(`malformed .npy header: expected ',' or '}' at offset ${at}`);
  }
  at++;
  if (text.slice(at).trim() !== '') throw bad('malformed .npy header: text after the dict');
  if (fields.descr === undefined || fields.fortranOrder === undefined || fields.shape === undefined) {
    throw bad("malformed .npy header: it needs 'descr', 'fortran_order' and 'shape'");
  }
  return fields as HeaderFields;

  function parseShape(): number[] {
    expect('(');
    const dims: number[] = [];
    for (;;) {
      skip();
      if (text[at] === ')') break;
      const digits = /^\d{1,16}L?/.exec(text.slice(at, at + 17));
      if (digits === null) throw bad(`malformed .npy header: bad shape entry at offset ${at}`);
      const dim = Number(digits[0].replace('L', ''));
      if (!Number.isSafeInteger(dim)) throw bad('malformed .npy header: shape entry too large');
      dims.push(dim);
      at += digits[0].length;
      skip();
      if (text[at] === ',') at++;
      else if (text[at] !== ')') throw bad(`malformed .npy header: expected ',' or ')' in shape at offset ${at}`);
    }
    at++;
    return dims;
  }
}
