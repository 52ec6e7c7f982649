import { createComplexMatrix, createSharedFloat64, type ComplexMatrix } from '../shared/complex-matrix.js';
import { HpairError } from '../shared/errors.js';
import { decodeComplexElements, decodeRealElements, type ComplexKind, type RealKind } from './npy-elements.js';
import { COMPLEX_DTYPES, REAL_DTYPES, complexMatrixBytes, complexNpyHeader, npyItemBytes, parseNpyHeader, type NpyHeader } from './npy.js';

export type { NpyHeader };

/**
 * `.npy` files as streams: a receiver that takes a file in pieces as they arrive and copies each piece
 * straight into shared memory (no buffering of the whole file, no second copy), and a writer that sends
 * H in chunks and waits for the stream to drain between them. Both do work proportional to one chunk per
 * call, so a service's event loop never stalls on a large file.
 */

/** What a receiver reads: a complex N×M matrix (c16, c8, f8) or a real vector (floats or integers), as the buffered readers. */
export type NpyTarget = 'complex-matrix' | 'float64-vector';
type Result<T extends NpyTarget> = T extends 'complex-matrix' ? ComplexMatrix : Float64Array;

export interface NpyReceiverOptions {
  /**
   * Called once the header is parsed, before anything is allocated, with the header and the file's total
   * length in bytes (header + data, as declared). Throw to refuse the file: push() rethrows it. This is
   * where a service checks the declared size against what it allows and what the request says it will send.
   */
  beforeAllocate?: (header: NpyHeader, fileBytes: number) => void;
  /**
   * Longest header accepted, in bytes. NumPy reads at most 10 000 unless told otherwise, and a 1-D or 2-D
   * array's header is about 128. Header bytes are the only ones a receiver holds on to, and parsing them is
   * work on the event loop in proportion to their length, so the default stays far below a visible stall.
   * @default 16384
   */
  maxHeaderBytes?: number;
}

const isLittleEndianHost = new Uint8Array(new Float64Array([1]).buffer)[7] === 0x3f;
const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59];

function bad(message: string): HpairError {
  return new HpairError('BAD_NPY', message);
}

/**
 * Receives one `.npy` file in pieces. Feed it bytes with push() as they arrive; once the header is in,
 * it is checked (dtype, dimensionality, `beforeAllocate`), the result is allocated in shared memory, and
 * every later byte goes straight to its place in it: little-endian complex128 (or float64 for a vector) in
 * C order is copied as is, and any other dtype, byte order or Fortran order is converted element by
 * element as it arrives. push() stops at the end of this file and says how many bytes it took, so files
 * sent back to back are read by chaining receivers.
 */
export class NpyReceiver<T extends NpyTarget> {
  readonly target: T;
  #options: NpyReceiverOptions;
  #head = new Uint8Array(0);
  #have = 0;
  #header: NpyHeader | undefined;
  #fileBytes: number | undefined;
  #received = 0;
  #result: Result<T> | undefined;
  #bytes: Uint8Array | undefined; // the result's bytes, when the data is copied as is
  #item = 0;
  #carry = new Uint8Array(16);
  #carried = 0;
  #element = 0;
  #failed: unknown;

  constructor(target: T, options: NpyReceiverOptions = {}) {
    if (target !== 'complex-matrix' && target !== 'float64-vector') {
      throw new HpairError('INVALID_ARGUMENT', `target must be 'complex-matrix' or 'float64-vector', got ${String(target)}`);
    }
    const { maxHeaderBytes = 16384 } = options;
    if (!Number.isSafeInteger(maxHeaderBytes) || maxHeaderBytes < 0) {
      throw new HpairError('INVALID_ARGUMENT', `maxHeaderBytes must be a non-negative integer, got ${String(maxHeaderBytes)}`);
    }
    this.target = target;
    this.#options = { ...options, maxHeaderBytes };
  }

  /** The parsed header, once its bytes have arrived. */
  get header(): NpyHeader | undefined {
    return this.#header;
  }

  /** Header + data bytes the file declares, once the header has arrived. */
  get fileBytes(): number | undefined {
    return this.#fileBytes;
  }

  /** Bytes of this file taken so far. */
  get receivedBytes(): number {
    return this.#header === undefined ? this.#have : this.#received;
  }

  /** True once the whole file has arrived. */
  get done(): boolean {
    return this.#fileBytes !== undefined && this.#received === this.#fileBytes;
  }

  /**
   * Takes bytes of this file from the start of `chunk`, up to the end of the file, and returns how many it
   * took (all of them unless the file ended inside the chunk). Work is proportional to the bytes taken.
   * Throws BAD_NPY for a bad header, TOO_LARGE for a size no typed array can hold, or what
   * `beforeAllocate` throws; after a throw every call throws the same error.
   */
  push(chunk: Uint8Array): number {
    if (this.#failed !== undefined) throw this.#failed;
    try {
      return this.#push(chunk);
    } catch (error) {
      this.#failed = error;
      this.#head = new Uint8Array(0);
      this.#have = 0;
      this.#result = undefined;
      this.#bytes = undefined;
      throw error;
    }
  }

  /** The file's contents in shared memory. Throws BAD_NPY if the file has not fully arrived. */
  result(): Result<T> {
    if (this.#failed !== undefined) throw this.#failed;
    if (!this.done || this.#result === undefined) {
      const expected = this.#fileBytes === undefined ? 'its header is incomplete' : `it declares ${this.#fileBytes} bytes`;
      throw bad(`truncated .npy file: ${this.receivedBytes} bytes arrived but ${expected}`);
    }
    return this.#result;
  }

  #push(chunk: Uint8Array): number {
    let taken = 0;
    if (this.#header === undefined) {
      taken = this.#takeHeader(chunk);
      if (this.#header === undefined) return taken;
    }
    const fileBytes = this.#fileBytes as number;
    const data = chunk.subarray(taken, taken + Math.min(chunk.length - taken, fileBytes - this.#received));
    if (data.length > 0) {
      if (this.#bytes !== undefined) this.#bytes.set(data, this.#received - (this.#header as NpyHeader).dataOffset);
      else this.#convert(data);
      this.#received += data.length;
    }
    return taken + data.length;
  }

  /** Collects header bytes; parses the header once they are all in. Returns the bytes taken from chunk. */
  #takeHeader(chunk: Uint8Array): number {
    let taken = 0;
    for (;;) {
      // The prefix (magic, version, header length) is 10 bytes for version 1.0 and 12 for 2.0 and 3.0;
      // once it is in, we know how long the whole header is.
      const prefix = this.#have >= 8 && this.#head[6] !== 1 ? 12 : 10;
      const complete = this.#have >= prefix;
      const need = complete ? prefix + this.#headerLength() : prefix;
      if (this.#head.length < need) {
        // Grown at most twice (prefix, then whole header): bytes trickling in one at a time cost no more.
        const head = new Uint8Array(need);
        head.set(this.#head.subarray(0, this.#have));
        this.#head = head;
      }
      const take = Math.min(chunk.length - taken, need - this.#have);
      this.#head.set(chunk.subarray(taken, taken + take), this.#have);
      this.#have += take;
      taken += take;
      for (let i = 0; i < Math.min(MAGIC.length, this.#have); i++) {
        if (this.#head[i] !== MAGIC[i]) throw bad('not a .npy file (no \\x93NUMPY magic)');
      }
      if (this.#have < need) return taken;
      if (complete) {
        this.#parseHeader(this.#head.subarray(0, need));
        return taken;
      }
    }
  }

  #headerLength(): number {
    const head = this.#head;
    const major = head[6];
    if (major < 1 || major > 3) throw bad(`unsupported .npy format version ${major}.${head[7]}`);
    const view = new DataView(head.buffer, head.byteOffset, head.byteLength);
    const length = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
    const max = this.#options.maxHeaderBytes as number;
    if (length > max) throw bad(`.npy header claims ${length} bytes (at most ${max})`);
    return length;
  }

  #parseHeader(bytes: Uint8Array): void {
    // The same dtypes as the buffered readers (integer distances included), refused with the same messages.
    const header = parseNpyHeader(bytes, 'header', this.target === 'complex-matrix' ? COMPLEX_DTYPES : REAL_DTYPES);
    const { kind, shape } = header;
    const dims = this.target === 'complex-matrix' ? 2 : 1;
    if (shape.length !== dims) throw bad(`expected a ${dims}-D array, got shape (${shape.join(', ')})`);
    this.#item = npyItemBytes(kind);
    const elements = shape.reduce((a, b) => a * BigInt(b), 1n);
    const fileBytes = BigInt(header.dataOffset) + elements * BigInt(this.#item);
    if (fileBytes > BigInt(Number.MAX_SAFE_INTEGER)) {
      throw new HpairError('TOO_LARGE', `.npy shape (${shape.join(', ')}) declares ${fileBytes} bytes`);
    }
    this.#options.beforeAllocate?.(header, Number(fileBytes));
    const result =
      this.target === 'complex-matrix' ? createComplexMatrix(shape[0], shape[1]) : createSharedFloat64(shape[0]);
    const data = this.target === 'complex-matrix' ? (result as ComplexMatrix).data : (result as Float64Array);
    // The common case needs no conversion: the bytes are already the layout we want.
    const asIs = this.target === 'complex-matrix' ? kind === 'c16' && !header.fortranOrder : kind === 'f8';
    if (asIs && isLittleEndianHost && header.littleEndian) this.#bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    this.#result = result as Result<T>;
    this.#header = header;
    this.#fileBytes = Number(fileBytes);
    this.#received = header.dataOffset;
    this.#head = new Uint8Array(0);
    this.#have = 0;
  }

  /** Converts whole elements as they arrive; a partial element waits in #carry for the next chunk. */
  #convert(data: Uint8Array): void {
    const item = this.#item;
    let at = 0;
    if (this.#carried > 0) {
      const take = Math.min(item - this.#carried, data.length);
      this.#carry.set(data.subarray(0, take), this.#carried);
      this.#carried += take;
      at = take;
      if (this.#carried < item) return;
      this.#store(new DataView(this.#carry.buffer, 0, item), 0, 1);
      this.#carried = 0;
    }
    const whole = Math.floor((data.length - at) / item);
    if (whole > 0) this.#store(new DataView(data.buffer, data.byteOffset + at, whole * item), 0, whole);
    at += whole * item;
    if (at < data.length) {
      this.#carry.set(data.subarray(at), 0);
      this.#carried = data.length - at;
    }
  }

  /** Stores `count` elements read from `view` at byte `from`, continuing at element #element of the file. */
  #store(view: DataView, from: number, count: number): void {
    const header = this.#header as NpyHeader;
    if (this.target === 'float64-vector') {
      decodeRealElements(view, from, count, this.#element, header.kind as RealKind, header.littleEndian, this.#result as Float64Array);
    } else {
      const { rows, cols, data } = this.#result as ComplexMatrix;
      decodeComplexElements(view, from, count, this.#element, { ...header, kind: header.kind as ComplexKind }, rows, cols, data);
    }
    this.#element += count;
  }
}

/** Length in bytes of `encodeComplexMatrixNpy(matrix)` (header + data), without encoding it. */
export function complexMatrixNpyLength(matrix: ComplexMatrix): number {
  return complexNpyHeader([matrix.rows, matrix.cols]).length + 16 * matrix.rows * matrix.cols;
}

export interface WriteNpyOptions {
  /**
   * Bytes handed to the stream per write() call. Each is a view of the matrix's own memory, not a copy.
   * @default 262144
   */
  chunkBytes?: number;
  /**
   * Longest wait for the stream to drain once it has asked to (write() returned false); past it the
   * returned promise rejects with TIMEOUT and the caller decides what to do with the stream (a service
   * destroys the socket). Infinity waits for ever.
   * @default Infinity
   */
  drainTimeoutMs?: number;
  /** Aborting stops the writing; the promise rejects with ABORTED. */
  signal?: AbortSignal;
}

/**
 * Writes `matrix` as `.npy` (little-endian complex128, C order, as encodeComplexMatrixNpy) to a stream,
 * without copying it: the header, then views of the matrix's memory in chunks, waiting for 'drain' whenever
 * write() returns false. Resolves when the last chunk has been accepted by the stream (it does not end it).
 * Rejects with IO_ERROR if the stream closes or fails first, TIMEOUT if it does not drain in time, ABORTED
 * if `signal` aborts. The caller must keep the matrix unchanged until the stream has flushed.
 */
export async function writeComplexMatrixNpy(stream: NodeJS.WritableStream, matrix: ComplexMatrix, options: WriteNpyOptions = {}): Promise<void> {
  const { chunkBytes = 262144, drainTimeoutMs = Infinity, signal } = options;
  if (!Number.isSafeInteger(chunkBytes) || chunkBytes < 1) {
    throw new HpairError('INVALID_ARGUMENT', `chunkBytes must be a positive integer, got ${String(chunkBytes)}`);
  }
  if (!(drainTimeoutMs === Infinity || (typeof drainTimeoutMs === 'number' && drainTimeoutMs >= 0 && drainTimeoutMs <= 2 ** 31 - 1))) {
    throw new HpairError('INVALID_ARGUMENT', `drainTimeoutMs must be between 0 and 2^31 − 1, or Infinity; got ${String(drainTimeoutMs)}`);
  }
  const header = complexNpyHeader([matrix.rows, matrix.cols]);
  const bytes = complexMatrixBytes(matrix);
  const state = stream as unknown as { destroyed?: boolean; writableEnded?: boolean; writableNeedDrain?: boolean };
  const check = (): void => {
    if (signal?.aborted === true) throw new HpairError('ABORTED', 'writing the .npy was aborted', { cause: signal.reason });
    if (state.destroyed === true || state.writableEnded === true) throw new HpairError('IO_ERROR', 'the stream closed before the .npy was written');
  };
  check();
  let full = !stream.write(header);
  for (let at = 0; at < bytes.length; at += chunkBytes) {
    if (full || state.writableNeedDrain === true) await drained(stream, drainTimeoutMs, signal);
    check();
    full = !stream.write(bytes.subarray(at, Math.min(bytes.length, at + chunkBytes)));
  }
  check();
}

/** Resolves on 'drain'; rejects on 'close'/'error', after `timeoutMs`, or when `signal` aborts. Leaves no listener behind. */
function drained(stream: NodeJS.WritableStream, timeoutMs: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const timer = timeoutMs === Infinity ? undefined : setTimeout(() => settle(new HpairError('TIMEOUT', `the stream did not drain within ${timeoutMs} ms`)), timeoutMs);
    const onDrain = (): void => settle();
    const onClose = (): void => settle(new HpairError('IO_ERROR', 'the stream closed before the .npy was written'));
    const onError = (error: unknown): void => settle(new HpairError('IO_ERROR', `the stream failed: ${(error as Error)?.message ?? String(error)}`, { cause: error }));
    const onAbort = (): void => settle(new HpairError('ABORTED', 'writing the .npy was aborted', { cause: signal?.reason }));
    function settle(error?: HpairError): void {
      clearTimeout(timer);
      stream.off('drain', onDrain);
      stream.off('close', onClose);
      stream.off('error', onError);
      signal?.removeEventListener('abort', onAbort);
      if (error === undefined) resolve();
      else reject(error);
    }
    stream.on('drain', onDrain);
    stream.on('close', onClose);
    stream.on('error', onError);
    signal?.addEventListener('abort', onAbort);
  });
}
