import { constants, writeSync, type Stats } from 'node:fs';
import { lstat, open, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { ComplexMatrix } from '../shared/complex-matrix.js';
import { HpairError } from '../shared/errors.js';
import { complexNpyHeader } from './npy.js';

/**
 * H as a `.npy` file on disk that is filled in block by block: the header of an n×n complex128 (little-endian,
 * C order) array, then a sparse file of the full size (ftruncate: no data block is allocated until written).
 * Blocks are written with positioned writes at their offsets, each with its mirror (the conjugate transpose),
 * so any order of blocks, and any number of writes of the same block, leave the same bytes.
 * `numpy.load(path, mmap_mode='r')` reads the file once every block is in (holes read as zeros before).
 */

/** A rectangle of H: rows [rows[0], rows[1]) × columns [cols[0], cols[1]). */
export interface BlockRect {
  readonly rows: readonly [number, number];
  readonly cols: readonly [number, number];
}

export interface NpyOutput {
  readonly path: string;
  /** H is n×n. */
  readonly n: number;
  /** Where H's data starts (the header's length). */
  readonly dataOffset: number;
  /** Header + 16·n² bytes. */
  readonly fileBytes: number;
  /** Device and inode of the file written: the path must still name this file when it is renamed into place. */
  readonly identity: { readonly dev: number; readonly ino: number };
  /**
   * Writes `h` (the block's (i1−i0)×(j1−j0) entries) at rows [i0, i1) × columns [j0, j1), and, unless the
   * block is its own mirror (rows and columns the same range), its conjugate transpose at rows [j0, j1) ×
   * columns [i0, i1). Resolves once every byte has been handed to the operating system (see sync()).
   * Rejects with IO_ERROR (the errno in the message and `cause`: ENOSPC for a full disk).
   */
  writeBlock(block: BlockRect, h: ComplexMatrix): Promise<void>;
  /**
   * Writes `h` at rows [i0, i1) × columns [j0, j1) (one write per row), and the conjugate transpose of its
   * columns [m0, m1) (a sub-range of [j0, j1), below the diagonal) at rows [m0, m1) × columns [i0, i1):
   * several blocks of one row of blocks in one go. writeBlock(block, h) is
   * writeRectangle(block, h, its own columns, or none for a diagonal block).
   */
  writeRectangle(rect: BlockRect, h: ComplexMatrix, mirror: readonly [number, number]): Promise<void>;
  /** Makes every byte written so far durable (fdatasync). */
  sync(): Promise<void>;
  close(): Promise<void>;
}

export interface NpyOutputOptions {
  /** How the file is named in messages. @default 'output' */
  name?: string;
  /**
   * Permission bits for the file (e.g. those of the file it will replace), set before any data is written.
   * @default 0o666 less the process's umask, for a new file; unchanged, for an existing one
   */
  mode?: number;
}

/**
 * The flags every output file is opened with: never through a symlink (O_NOFOLLOW: the final component may not
 * be one, so a link planted at the name cannot redirect the writes), and never waiting on a FIFO (O_NONBLOCK;
 * no effect on a regular file). Whatever the name holds is then checked to be a regular file before use.
 */
const NO_FOLLOW = constants.O_NOFOLLOW | constants.O_NONBLOCK;

/** What a path holds, in a few words, for a refusal. */
export function kindOf(stats: Stats): string {
  if (stats.isSymbolicLink()) return 'a symbolic link';
  if (stats.isFIFO()) return 'a FIFO';
  if (stats.isCharacterDevice() || stats.isBlockDevice()) return 'a device';
  if (stats.isSocket()) return 'a socket';
  if (stats.isDirectory()) return 'a directory';
  return 'not a regular file';
}

function notRegular(what: string, kind: string): HpairError {
  return new HpairError('IO_ERROR', `${what} is ${kind}; hpair never writes through or replaces a file it did not create that is not a regular file; remove it and run again`);
}

/**
 * Refuses (IO_ERROR, nothing touched) when `path` exists and is not a regular file: a symbolic link (dangling
 * or not), a FIFO, a device, a socket or a directory. A missing path passes. `what` names it in the message.
 */
export async function refuseSpecialFile(path: string, what: string): Promise<void> {
  let stats;
  try {
    stats = await lstat(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw ioFailure('check', what, error);
  }
  if (!stats.isFile()) throw notRegular(what, kindOf(stats));
}

/** An open that O_NOFOLLOW refused names the link (Linux says ELOOP, some BSDs EMLINK or EFTYPE). */
function openFailure(verb: string, what: string, error: unknown): HpairError {
  const code = (error as NodeJS.ErrnoException)?.code;
  if (code === 'ELOOP' || code === 'EMLINK' || code === 'EFTYPE') return notRegular(what, 'a symbolic link');
  return ioFailure(verb, what, error);
}

const isLittleEndianHost = new Uint8Array(new Float64Array([1]).buffer)[7] === 0x3f;
/** Bytes written between two turns of the event loop (writes are synchronous system calls). */
const WRITE_SLICE = 8 << 20;
/** The mirror is transposed through a staging strip of at most this many bytes. */
export const MIRROR_STAGE_BYTES = 1 << 20;

function checkN(n: number): void {
  if (!Number.isSafeInteger(n) || n < 0) throw new HpairError('INVALID_ARGUMENT', `n must be a non-negative integer, got ${String(n)}`);
  if (!isLittleEndianHost) throw new HpairError('IO_ERROR', 'writing .npy needs a little-endian host');
}

export function ioFailure(verb: string, what: string, error: unknown): HpairError {
  if (error instanceof HpairError) return error;
  const code = (error as NodeJS.ErrnoException)?.code;
  const reasons: Record<string, string> = {
    ENOSPC: 'no space left on device (ENOSPC)',
    EDQUOT: 'disk quota exceeded (EDQUOT)',
    EACCES: 'permission denied (EACCES)',
    EROFS: 'read-only file system (EROFS)',
    ENOENT: 'no such file or directory (ENOENT)',
    EISDIR: 'it is a directory (EISDIR)',
    EIO: 'input/output error (EIO)',
  };
  const reason = (code !== undefined ? reasons[code] : undefined) ?? code ?? (error as Error)?.message ?? String(error);
  return new HpairError('IO_ERROR', `cannot ${verb} ${what}: ${reason}`, { cause: error });
}

/** fsync of a directory, so that a file created or renamed in it survives a crash. Best effort where unsupported. */
export async function syncDirectory(path: string): Promise<void> {
  let handle: FileHandle | undefined;
  try {
    handle = await open(path, 'r');
    await handle.sync();
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code !== 'EISDIR' && code !== 'EINVAL' && code !== 'EPERM' && code !== 'EBADF') throw error;
  } finally {
    await handle?.close().catch(() => undefined);
  }
}

/**
 * Creates `path` as the `.npy` of an n×n complex128 H: the header, then a sparse file of the full size. The
 * name must be free (O_EXCL: an existing file, or a symlink planted there, is never opened, followed or
 * truncated; IO_ERROR). The file and its directory entry are made durable before this resolves.
 */
export async function createNpyOutput(path: string, n: number, options: NpyOutputOptions = {}): Promise<NpyOutput> {
  checkN(n);
  const what = `${options.name ?? 'output'} ${path}`;
  const header = complexNpyHeader([n, n]);
  const fileBytes = header.length + 16 * n * n;
  let file: FileHandle;
  try {
    file = await open(path, constants.O_RDWR | constants.O_CREAT | constants.O_EXCL | NO_FOLLOW, 0o666);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') {
      throw new HpairError('IO_ERROR', `cannot create ${what}: it exists (hpair creates it afresh and never writes through what is there)`, { cause: error });
    }
    throw openFailure('create', what, error);
  }
  try {
    if (options.mode !== undefined) await file.chmod(options.mode);
    await file.write(header, 0, header.length, 0);
    await file.truncate(fileBytes);
    await file.sync();
    await syncDirectory(dirname(path));
  } catch (error) {
    await file.close().catch(() => undefined);
    throw ioFailure('create', what, error);
  }
  return outputOver(file, path, what, n, header.length, fileBytes, await identityOf(file));
}

/**
 * Opens an output createNpyOutput made, to go on filling it. Refuses (BAD_NPY) a file whose header is not
 * exactly that of an n×n complex128 H or whose size is not the full size.
 */
export async function openNpyOutput(path: string, n: number, options: NpyOutputOptions = {}): Promise<NpyOutput> {
  checkN(n);
  const what = `${options.name ?? 'output'} ${path}`;
  const header = complexNpyHeader([n, n]);
  const fileBytes = header.length + 16 * n * n;
  let file: FileHandle;
  try {
    file = await open(path, constants.O_RDWR | NO_FOLLOW);
  } catch (error) {
    throw openFailure('open', what, error);
  }
  try {
    const stats = await file.stat();
    if (!stats.isFile()) throw notRegular(what, kindOf(stats));
    if (options.mode !== undefined && (stats.mode & 0o7777) !== options.mode) await file.chmod(options.mode);
    const present = new Uint8Array(header.length);
    const { bytesRead } = await file.read(present, 0, header.length, 0);
    if (bytesRead !== header.length || present.some((byte, i) => byte !== header[i])) {
      throw new HpairError('BAD_NPY', `${what} is not the partial output of a ${n}×${n} H (its header differs)`);
    }
    if (stats.size !== fileBytes) throw new HpairError('BAD_NPY', `${what} has ${stats.size} bytes but a ${n}×${n} H needs ${fileBytes}`);
  } catch (error) {
    await file.close().catch(() => undefined);
    throw ioFailure('open', what, error);
  }
  return outputOver(file, path, what, n, header.length, fileBytes, await identityOf(file));
}

/** The device and inode of an open file: what a rename of its path must still find there. */
async function identityOf(file: FileHandle): Promise<{ dev: number; ino: number }> {
  const stats = await file.stat();
  return { dev: stats.dev, ino: stats.ino };
}

function outputOver(file: FileHandle, path: string, what: string, n: number, dataOffset: number, fileBytes: number, identity: { dev: number; ino: number }): NpyOutput {
  let stage: Float64Array | undefined;
  let closed = false;
  let writing = Promise.resolve();

  /** Positioned writes of whole rows, yielding to the event loop every WRITE_SLICE bytes. */
  const writeRows = async (rowCount: number, rowBytes: number, bytesOf: (row: number) => Uint8Array, offsetOf: (row: number) => number): Promise<void> => {
    let sinceYield = 0;
    for (let r = 0; r < rowCount; r++) {
      const bytes = bytesOf(r);
      let done = 0;
      while (done < rowBytes) done += writeSync(file.fd, bytes, done, rowBytes - done, offsetOf(r) + done);
      sinceYield += rowBytes;
      if (sinceYield >= WRITE_SLICE) {
        sinceYield = 0;
        await new Promise((resolve) => setImmediate(resolve));
      }
    }
  };

  const write = async (rect: BlockRect, h: ComplexMatrix, [m0, m1]: readonly [number, number]): Promise<void> => {
    const [i0, i1] = rect.rows;
    const [j0, j1] = rect.cols;
    const bi = i1 - i0;
    const bj = j1 - j0;
    if (bi === 0 || bj === 0) return;
    const bytes = new Uint8Array(h.data.buffer, h.data.byteOffset, 16 * bi * bj);
    await writeRows(bi, 16 * bj, (r) => bytes.subarray(16 * r * bj, 16 * (r + 1) * bj), (r) => dataOffset + 16 * ((i0 + r) * n + j0));
    if (m1 <= m0) return;
    // The mirror: row s of H holds conj(h[·, s − j0]) at columns [i0, i1). Transposed a strip of rows at a time.
    const count = m1 - m0;
    const strip = Math.max(1, Math.min(count, Math.floor(MIRROR_STAGE_BYTES / (16 * bi))));
    if (stage === undefined || stage.length < 2 * strip * bi) stage = new Float64Array(2 * strip * bi);
    const staged = new Uint8Array(stage.buffer);
    const data = h.data;
    for (let s0 = m0; s0 < m1; s0 += strip) {
      const s1 = Math.min(m1, s0 + strip);
      for (let s = s0; s < s1; s++) {
        const to = 2 * (s - s0) * bi;
        for (let r = 0; r < bi; r++) {
          const from = 2 * (r * bj + (s - j0));
          stage[to + 2 * r] = data[from];
          stage[to + 2 * r + 1] = -data[from + 1];
        }
      }
      await writeRows(s1 - s0, 16 * bi, (r) => staged.subarray(16 * r * bi, 16 * (r + 1) * bi), (r) => dataOffset + 16 * ((s0 + r) * n + i0));
    }
  };

  const queue = (rect: BlockRect, h: ComplexMatrix, mirror: readonly [number, number] | undefined): Promise<void> => {
    if (closed) return Promise.reject(new HpairError('INVALID_ARGUMENT', `${what} is closed`));
    const ranges = [rect?.rows, rect?.cols];
    if (!ranges.every((range) => Array.isArray(range) && range.length === 2 && Number.isSafeInteger(range[0]) && Number.isSafeInteger(range[1]) && 0 <= range[0] && range[0] <= range[1] && range[1] <= n)) {
      return Promise.reject(new HpairError('INVALID_ARGUMENT', `the block must be { rows: [i0, i1], cols: [j0, j1] } within [0, ${n}]`));
    }
    const bi = rect.rows[1] - rect.rows[0];
    const bj = rect.cols[1] - rect.cols[0];
    if (h?.rows !== bi || h?.cols !== bj || !(h.data instanceof Float64Array) || h.data.length < 2 * bi * bj) {
      return Promise.reject(new HpairError('SHAPE_MISMATCH', `the block is ${bi}×${bj} but h is ${String(h?.rows)}×${String(h?.cols)}`));
    }
    const diagonal = rect.rows[0] === rect.cols[0] && rect.rows[1] === rect.cols[1];
    const m = mirror ?? (diagonal ? [0, 0] : rect.cols); // a diagonal block is its own mirror
    if (!(Array.isArray(m) && m.length === 2 && Number.isSafeInteger(m[0]) && Number.isSafeInteger(m[1]) && (m[1] <= m[0] || (rect.cols[0] <= m[0] && m[1] <= rect.cols[1])))) {
      return Promise.reject(new HpairError('INVALID_ARGUMENT', `the mirrored columns must lie within [${rect.cols[0]}, ${rect.cols[1]}]`));
    }
    // Writes to one file run one after another (they share the staging strip).
    const done = writing.then(() => write(rect, h, m)).catch((error: unknown) => {
      throw ioFailure('write', what, error);
    });
    writing = done.catch(() => undefined);
    return done;
  };

  return {
    path,
    n,
    dataOffset,
    fileBytes,
    identity,
    writeBlock(block, h) {
      return queue(block, h, undefined);
    },
    writeRectangle(rect, h, mirror) {
      return queue(rect, h, mirror);
    },
    async sync() {
      await writing;
      try {
        await file.datasync();
      } catch (error) {
        throw ioFailure('sync', what, error);
      }
    },
    async close() {
      if (closed) return;
      closed = true;
      await writing;
      stage = undefined;
      await file.close();
    },
  };
}
