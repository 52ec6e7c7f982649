import { open, type FileHandle } from 'node:fs/promises';
import { createSharedFloat64, MAX_TYPED_ARRAY_LENGTH } from '../shared/complex-matrix.js';
import { HpairError } from '../shared/errors.js';
import { npyItemBytes, parseNpyHeader, type NpyHeader } from './npy.js';

/**
 * `.npy` files on disk read by positioned reads, for inputs larger than memory: the header is parsed and
 * checked against the file's size when the file is opened, and rows are then read on demand, a bounded
 * chunk at a time, straight into the caller's shared memory. Every dtype, byte order and memory order the
 * buffered reader (npy.ts) accepts is accepted here and converted per chunk; the whole file is never held
 * in one buffer.
 */

/** What a complex matrix's `.npy` may hold (as the buffered reader): complex128, complex64 or float64. */
export type NpyComplexDtype = 'complex128' | 'complex64' | 'float64';

export interface NpyInput {
  /** The path as given. */
  readonly path: string;
  readonly rows: number;
  readonly cols: number;
  /** The dtype as stored; rows are always read as complex128 (interleaved float64). */
  readonly dtype: NpyComplexDtype;
  readonly littleEndian: boolean;
  readonly fortranOrder: boolean;
  /** Byte offset of the data. */
  readonly dataOffset: number;
  /** The file's length in bytes (header + data). */
  readonly fileBytes: number;
  /** Modification time of the file when it was opened (ms since the epoch). */
  readonly mtimeMs: number;
  /**
   * Reads rows [r0, r1) as interleaved complex128 into `out`, row-major, the first of them as row `at` of
   * `out` (values 2·at·cols onwards). Reads at most `chunkBytes` at a time; data already in the target layout
   * (little-endian complex128, C order) goes straight into `out` with no staging buffer.
   */
  readRows(r0: number, r1: number, out: Float64Array, at: number): Promise<void>;
  close(): Promise<void>;
}

export interface NpyFileOptions {
  /** How the file is named in messages, e.g. `--expp` (the CLI) or `expp`. @default 'input' */
  name?: string;
  /**
   * Largest read and staging buffer, in bytes (rounded down to whole elements).
   * @default 4194304
   */
  chunkBytes?: number;
}

const DEFAULT_CHUNK = 4 << 20;
/** Largest header read, as the buffered reader allows. */
const MAX_HEADER_BYTES = 1 << 20;
const isLittleEndianHost = new Uint8Array(new Float64Array([1]).buffer)[7] === 0x3f;
/** Reads in flight at once (libuv runs 4 by default). */
const PARALLEL_READS = 4;
/**
 * What a read costs beyond its bytes, in bytes (a system call and a trip through libuv take about as long as
 * reading this much from the page cache): Fortran-order columns longer than a run plus this are read run by run.
 */
const SEPARATE_READ_BYTES = 32768;

const DTYPES: Partial<Record<NpyHeader['kind'], string>> = { c16: 'complex128', c8: 'complex64', f8: 'float64', f4: 'float32' };

/** A file opened for positioned reads, its header parsed and its length checked. */
interface OpenedNpy {
  readonly file: FileHandle;
  readonly header: NpyHeader;
  readonly fileBytes: number;
  readonly mtimeMs: number;
}

function label(name: string, path: string): string {
  return `${name} ${path}`;
}

function ioError(what: string, error: unknown): HpairError {
  const code = (error as NodeJS.ErrnoException)?.code;
  const reason = code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'it is a directory' : code === 'EACCES' ? 'permission denied' : (code ?? (error as Error)?.message ?? String(error));
  return new HpairError('IO_ERROR', `cannot read ${what}: ${reason}`, { cause: error });
}

async function readFully(file: FileHandle, target: Uint8Array, position: number, what: string): Promise<void> {
  let done = 0;
  while (done < target.length) {
    let bytesRead: number;
    try {
      ({ bytesRead } = await file.read(target, done, Math.min(target.length - done, 1 << 30), position + done));
    } catch (error) {
      throw ioError(what, error);
    }
    if (bytesRead === 0) throw new HpairError('BAD_NPY', `${what} ended early: it was shorter than its header declares (was it changed while being read?)`);
    done += bytesRead;
  }
}

/** Opens `path`, reads and checks its header, and checks the data length against the file's size (exactly). */
async function openNpy(path: string, name: string): Promise<OpenedNpy> {
  const what = label(name, path);
  if (typeof path !== 'string' || path === '') throw new HpairError('INVALID_ARGUMENT', `${name} must be a file path, got ${JSON.stringify(path)}`);
  let file: FileHandle;
  try {
    file = await open(path, 'r');
  } catch (error) {
    throw ioError(what, error);
  }
  try {
    let stats;
    try {
      stats = await file.stat();
    } catch (error) {
      throw ioError(what, error);
    }
    if (!stats.isFile()) throw new HpairError('IO_ERROR', `cannot read ${what}: ${stats.isDirectory() ? 'it is a directory' : 'not a regular file'}`);
    const size = stats.size;
    const prefix = new Uint8Array(Math.min(12, size));
    await readFully(file, prefix, 0, what);
    if (size < 10 || [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59].some((value, i) => prefix[i] !== value)) {
      throw new HpairError('BAD_NPY', `${what} is not a .npy file (no \\x93NUMPY magic)`);
    }
    const major = prefix[6];
    const prefixBytes = major === 1 ? 10 : 12;
    if (prefix.length < prefixBytes) throw new HpairError('BAD_NPY', `${what}: truncated .npy header`);
    const view = new DataView(prefix.buffer);
    const headerLength = major === 1 ? view.getUint16(8, true) : major <= 3 ? view.getUint32(8, true) : 0;
    if (headerLength > MAX_HEADER_BYTES) throw new HpairError('BAD_NPY', `${what}: .npy header claims ${headerLength} bytes (at most ${MAX_HEADER_BYTES})`);
    const headerBytes = new Uint8Array(Math.min(size, prefixBytes + headerLength));
    await readFully(file, headerBytes, 0, what);
    let header: NpyHeader;
    try {
      header = parseNpyHeader(headerBytes, 'header');
    } catch (error) {
      if (error instanceof HpairError) throw new HpairError(error.code, `${what}: ${error.message}`, { cause: error });
      throw error;
    }
    const elements = header.shape.reduce((a, b) => a * BigInt(b), 1n);
    const expected = BigInt(header.dataOffset) + elements * BigInt(npyItemBytes(header.kind));
    if (expected !== BigInt(size)) {
      const shape = `(${header.shape.join(', ')}) of ${DTYPES[header.kind]}`;
      throw new HpairError('BAD_NPY', `${what}: its header declares ${shape}, ${expected} bytes with the header, but the file has ${size}`);
    }
    return { file, header, fileBytes: size, mtimeMs: stats.mtimeMs };
  } catch (error) {
    await file.close().catch(() => undefined);
    throw error;
  }
}

function chunkOption(options: NpyFileOptions): number {
  const { chunkBytes = DEFAULT_CHUNK } = options;
  if (!Number.isSafeInteger(chunkBytes) || chunkBytes < 16) throw new HpairError('INVALID_ARGUMENT', `chunkBytes must be an integer ≥ 16, got ${String(chunkBytes)}`);
  return chunkBytes;
}

/**
 * Opens a 2-D `.npy` of complex128, complex64 or float64 (imaginary part 0), either byte order, C or Fortran
 * order, for reading rows by positioned reads. Refuses anything else with BAD_NPY (IO_ERROR when the file
 * cannot be read at all), naming the file.
 */
export async function openNpyInput(path: string, options: NpyFileOptions = {}): Promise<NpyInput> {
  const name = options.name ?? 'input';
  const chunkBytes = chunkOption(options);
  const { file, header, fileBytes, mtimeMs } = await openNpy(path, name);
  const what = label(name, path);
  const { kind, littleEndian, fortranOrder, dataOffset, shape } = header;
  if (shape.length !== 2 || kind === 'f4') {
    await file.close();
    throw new HpairError(
      'BAD_NPY',
      shape.length !== 2
        ? `${what}: expected a 2-D array, got shape (${shape.join(', ')})`
        : `${what}: expected complex128, complex64 or float64 for a complex matrix, got float32`,
    );
  }
  const [rows, cols] = shape;
  const item = npyItemBytes(kind);
  const asIs = kind === 'c16' && littleEndian && isLittleEndianHost && !fortranOrder;
  // Staging for conversions: whole elements, allocated on first use and reused.
  const stageBytes = Math.max(item, Math.floor(chunkBytes / item) * item);
  let stage: Uint8Array | undefined;
  let closed = false;

  /** Converts `count` elements of `bytes` (file elements) to complex128 at out[to], out[to + step], … (in values). */
  const convert = (bytes: Uint8Array, count: number, out: Float64Array, to: number, step: number): void => {
    const view = new DataView(bytes.buffer, bytes.byteOffset, count * item);
    if (kind === 'c16') {
      for (let k = 0; k < count; k++, to += step) {
        out[to] = view.getFloat64(16 * k, littleEndian);
        out[to + 1] = view.getFloat64(16 * k + 8, littleEndian);
      }
    } else if (kind === 'c8') {
      for (let k = 0; k < count; k++, to += step) {
        out[to] = view.getFloat32(8 * k, littleEndian);
        out[to + 1] = view.getFloat32(8 * k + 4, littleEndian);
      }
    } else {
      for (let k = 0; k < count; k++, to += step) {
        out[to] = view.getFloat64(8 * k, littleEndian);
        out[to + 1] = 0;
      }
    }
  };

  const readRows = async (r0: number, r1: number, out: Float64Array, at: number): Promise<void> => {
    if (closed) throw new HpairError('INVALID_ARGUMENT', `${what} is closed`);
    if (!Number.isSafeInteger(r0) || !Number.isSafeInteger(r1) || r0 < 0 || r1 < r0 || r1 > rows) {
      throw new HpairError('INVALID_ARGUMENT', `rows [${r0}, ${r1}) are not within the ${rows} rows of ${what}`);
    }
    if (!(out instanceof Float64Array) || !Number.isSafeInteger(at) || at < 0 || 2 * (at + r1 - r0) * cols > out.length) {
      throw new HpairError('INVALID_ARGUMENT', `out must be a Float64Array with room for rows ${at}…${at + r1 - r0 - 1} of ${cols} complex values`);
    }
    const count = r1 - r0;
    if (count === 0 || cols === 0) return;
    if (asIs) {
      // Already the layout we want: read straight into out, at most chunkBytes per read.
      // A few reads at once: the copies out of the page cache then run on several of libuv's threads.
      const target = new Uint8Array(out.buffer, out.byteOffset + 16 * at * cols, 16 * count * cols);
      let next = 0;
      const reader = async (): Promise<void> => {
        while (next < target.length) {
          const done = next;
          next += chunkBytes;
          await readFully(file, target.subarray(done, Math.min(target.length, done + chunkBytes)), dataOffset + 16 * r0 * cols + done, what);
        }
      };
      await Promise.all(Array.from({ length: Math.min(PARALLEL_READS, Math.ceil(target.length / chunkBytes)) }, reader));
      return;
    }
    stage ??= new Uint8Array(stageBytes);
    const perStage = stageBytes / item;
    if (!fortranOrder) {
      // Elements r0·cols … r1·cols − 1 are contiguous: read them a stage at a time, in file order.
      const first = r0 * cols;
      const total = count * cols;
      for (let done = 0; done < total; done += perStage) {
        const n = Math.min(perStage, total - done);
        const bytes = stage.subarray(0, n * item);
        await readFully(file, bytes, dataOffset + (first + done) * item, what);
        convert(bytes, n, out, 2 * (at * cols + done), 2);
      }
      return;
    }
    // Fortran order: element (r, c) is at c·rows + r, so each column holds our rows as one run of `count`
    // elements, a column's length apart. When a column is short, runs of neighbouring columns are read together
    // (the span between them included); when it is long, each run is read by itself, a few reads at a time.
    const runBytes = count * item;
    if (runBytes + SEPARATE_READ_BYTES < rows * item) {
      const runsPerStage = Math.max(1, Math.floor(stageBytes / runBytes));
      if (runsPerStage > 1 || runBytes <= stageBytes) {
        for (let c0 = 0; c0 < cols; c0 += runsPerStage) {
          const c1 = Math.min(cols, c0 + runsPerStage);
          let next = c0;
          const reader = async (): Promise<void> => {
            while (next < c1) {
              const c = next++;
              await readFully(file, (stage as Uint8Array).subarray((c - c0) * runBytes, (c - c0 + 1) * runBytes), dataOffset + (c * rows + r0) * item, what);
            }
          };
          await Promise.all(Array.from({ length: Math.min(PARALLEL_READS, c1 - c0) }, reader));
          for (let c = c0; c < c1; c++) convert((stage as Uint8Array).subarray((c - c0) * runBytes), count, out, 2 * (at * cols + c), 2 * cols);
        }
        return;
      }
    }
    const span = (columns: number): number => (columns - 1) * rows + count;
    const group = Math.min(cols, Math.max(1, Math.floor((perStage - count) / Math.max(1, rows)) + 1));
    for (let c0 = 0; c0 < cols; c0 += group) {
      const c1 = Math.min(cols, c0 + group);
      if (span(c1 - c0) <= perStage) {
        const bytes = stage.subarray(0, span(c1 - c0) * item);
        await readFully(file, bytes, dataOffset + (c0 * rows + r0) * item, what);
        for (let c = c0; c < c1; c++) {
          convert(bytes.subarray((c - c0) * rows * item), count, out, 2 * (at * cols + c), 2 * cols);
        }
      } else {
        // One column's run is longer than a stage: read it in pieces.
        for (let done = 0; done < count; done += perStage) {
          const n = Math.min(perStage, count - done);
          const bytes = stage.subarray(0, n * item);
          await readFully(file, bytes, dataOffset + (c0 * rows + r0 + done) * item, what);
          convert(bytes, n, out, 2 * ((at + done) * cols + c0), 2 * cols);
        }
      }
    }
  };

  return {
    path,
    rows,
    cols,
    dtype: DTYPES[kind] as NpyComplexDtype,
    littleEndian,
    fortranOrder,
    dataOffset,
    fileBytes,
    mtimeMs,
    readRows,
    async close() {
      if (closed) return;
      closed = true;
      stage = undefined;
      await file.close();
    },
  };
}

export interface NpyVectorOptions {
  /** How the file is named in messages. @default 'input' */
  name?: string;
  /** Refuse (SHAPE_MISMATCH) a vector of another length before reading its data. */
  expectedLength?: number;
  /** What `expectedLength` is, for the message, e.g. "expp has M = 300 columns". */
  expectedBecause?: string;
}

/**
 * Reads a 1-D float64 or float32 (widened) `.npy` vector, either byte order, into shared memory. The header
 * and the length are checked before the data is read.
 */
export async function readNpyVector(path: string, options: NpyVectorOptions = {}): Promise<Float64Array> {
  const name = options.name ?? 'input';
  const { file, header } = await openNpy(path, name);
  const what = label(name, path);
  try {
    const { kind, littleEndian, dataOffset, shape } = header;
    if (shape.length !== 1) throw new HpairError('BAD_NPY', `${what}: expected a 1-D array, got shape (${shape.join(', ')})`);
    if (kind !== 'f8' && kind !== 'f4') throw new HpairError('BAD_NPY', `${what}: expected float64 or float32 for a real vector, got ${DTYPES[kind]}`);
    const [length] = shape;
    if (options.expectedLength !== undefined && length !== options.expectedLength) {
      const because = options.expectedBecause === undefined ? `${options.expectedLength} values are expected` : options.expectedBecause;
      throw new HpairError('SHAPE_MISMATCH', `${what} has length ${length} but ${because}`);
    }
    if (length > MAX_TYPED_ARRAY_LENGTH) throw new HpairError('TOO_LARGE', `${what} holds ${length} values; typed arrays hold at most 2^32`);
    const item = npyItemBytes(kind);
    const out = createSharedFloat64(length);
    const stage = new Uint8Array(Math.min(length * item, DEFAULT_CHUNK));
    for (let done = 0; done < length; ) {
      const n = Math.min(stage.length / item, length - done);
      const bytes = stage.subarray(0, n * item);
      await readFully(file, bytes, dataOffset + done * item, what);
      const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
      for (let k = 0; k < n; k++) out[done + k] = item === 8 ? view.getFloat64(8 * k, littleEndian) : view.getFloat32(4 * k, littleEndian);
      done += n;
    }
    return out;
  } finally {
    await file.close();
  }
}
