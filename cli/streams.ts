import { constants as bufferConstants } from 'node:buffer';
import { close, constants, fstat, fstatSync, open, read, type Stats } from 'node:fs';
import { Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { HpairError } from '../shared/errors.js';

/**
 * Reading inputs and writing into FIFOs without blocking the event loop or parking a libuv thread.
 *
 * A FIFO is opened with O_NONBLOCK, so open() returns at once whether or not the other end is there.
 * Reading: while no writer has connected, read() returns 0; once one has, it returns data or EAGAIN.
 * So we poll with cheap non-blocking reads until a writer shows up (or the bound passes), then hand the
 * descriptor to a libuv pipe handle (net.Socket), which reads it through epoll until the writer closes.
 * Writing: open(O_WRONLY | O_NONBLOCK) fails with ENXIO until a reader has opened the FIFO; then the
 * same kind of handle writes with backpressure. A blocking open() or read() would instead park one of
 * libuv's four threadpool threads until the other end came, possibly for ever, and exit would wait on it.
 */

const openAsync = promisify(open);
const fstatAsync = promisify(fstat);
const closeAsync = promisify(close);
const readAsync = promisify(read);

/** How often a FIFO is polled while nobody is at its other end. */
const POLL_MS = 25;
/** Regular files are read in pieces of this size (one read() call moves at most 2 GiB on Linux). */
const READ_PIECE = 1 << 30;

export class FifoTimeout extends Error {}

const STDIN_NAMES = new Set(['/dev/stdin', '/dev/fd/0', '/proc/self/fd/0']);

/** Opens `path` for reading and returns its bytes: a regular file whole, a FIFO or pipe until its writer closes. */
export async function readInputFile(path: string, timeoutMs: number, signal: AbortSignal): Promise<Uint8Array> {
  // A socket cannot be reopened by name (ENXIO): standard input that is one (as a Node parent's
  // child_process stdio is) is read through the descriptor the process already has.
  if (STDIN_NAMES.has(path) && fstatSync(0).isSocket()) return readStream(process.stdin, Buffer.alloc(0), signal);
  const fd = await openAsync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  let owned = true; // until a Socket takes the descriptor over
  try {
    const stats = await fstatAsync(fd);
    if (stats.isFIFO()) {
      const first = await awaitWriter(fd, timeoutMs, signal);
      owned = false;
      return await readStream(new Socket({ fd, readable: true, writable: false }), first, signal);
    }
    if (!stats.isFile()) throw new HpairError('IO_ERROR', `it is ${describeType(stats)}; hpair reads regular files and FIFOs`);
    return await readRegular(fd, stats.size);
  } finally {
    if (owned) await closeAsync(fd).catch(() => undefined);
  }
}

export function describeType(stats: Stats): string {
  if (stats.isDirectory()) return 'a directory';
  if (stats.isCharacterDevice()) return 'a character device';
  if (stats.isBlockDevice()) return 'a block device';
  if (stats.isSocket()) return 'a socket';
  if (stats.isFIFO()) return 'a FIFO';
  return 'a regular file';
}

async function readRegular(fd: number, size: number): Promise<Uint8Array> {
  if (size > bufferConstants.MAX_LENGTH) {
    throw new HpairError('TOO_LARGE', `the file holds ${size} bytes; a buffer holds at most ${bufferConstants.MAX_LENGTH}`);
  }
  const out = Buffer.allocUnsafe(size);
  let filled = 0;
  while (filled < size) {
    const { bytesRead } = await readAsync(fd, out, filled, Math.min(size - filled, READ_PIECE), filled);
    if (bytesRead === 0) break; // the file shrank while we read it: what is there is what we have
    filled += bytesRead;
  }
  return out.subarray(0, filled);
}

/** Polls a non-blocking FIFO until a writer connects; returns the first bytes read (maybe none). */
async function awaitWriter(fd: number, timeoutMs: number, signal: AbortSignal): Promise<Buffer> {
  const deadline = performance.now() + timeoutMs;
  const buffer = Buffer.allocUnsafe(1 << 16);
  for (;;) {
    signal.throwIfAborted();
    try {
      const { bytesRead } = await readAsync(fd, buffer, 0, buffer.length, null);
      if (bytesRead > 0) return buffer.subarray(0, bytesRead);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'EAGAIN') return buffer.subarray(0, 0); // connected, nothing written yet
      throw error;
    }
    if (performance.now() >= deadline) throw new FifoTimeout(`no writer opened it within ${timeoutMs / 1000} s`);
    await sleep(POLL_MS, undefined, { signal });
  }
}

/** Reads a connected pipe through a libuv pipe handle (epoll, no threadpool) until its writer closes. */
function readStream(socket: Socket, first: Buffer, signal: AbortSignal): Promise<Uint8Array> {
  const chunks: Buffer[] = first.length > 0 ? [Buffer.from(first)] : [];
  let total = first.length;
  return new Promise<Uint8Array>((resolve, reject) => {
    const abort = (): void => {
      socket.destroy();
      reject(signal.reason);
    };
    signal.addEventListener('abort', abort, { once: true });
    socket.on('data', (chunk: Buffer) => {
      total += chunk.length;
      if (total > bufferConstants.MAX_LENGTH) {
        socket.destroy();
        reject(new HpairError('TOO_LARGE', `more than ${bufferConstants.MAX_LENGTH} bytes arrived; a buffer holds at most that`));
        return;
      }
      chunks.push(chunk);
    });
    socket.on('error', reject);
    socket.on('end', () => resolve(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, total)));
    socket.on('close', () => signal.removeEventListener('abort', abort));
  });
}

/**
 * Opens a FIFO (or a pipe named through /dev/fd or /proc) for writing once a reader is there, polling
 * while open() says ENXIO, and writes `chunks` into it. A pipe whose reader has gone fails with EPIPE.
 */
export async function writeFifo(path: string, chunks: readonly Uint8Array[], timeoutMs: number): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  let fd: number;
  for (;;) {
    try {
      fd = await openAsync(path, constants.O_WRONLY | constants.O_NONBLOCK);
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENXIO') throw error;
      if (performance.now() >= deadline) throw new FifoTimeout(`no reader opened it within ${timeoutMs / 1000} s`);
      await sleep(POLL_MS);
    }
  }
  await writePipe(new Socket({ fd, readable: false, writable: true }), chunks);
}

/** Writes every chunk through a pipe handle, waiting on backpressure, then closes it. */
export function writePipe(socket: Socket, chunks: readonly Uint8Array[]): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    socket.on('error', (error) => {
      socket.destroy();
      reject(error);
    });
    let next = 0;
    const pump = (): void => {
      while (next < chunks.length) {
        if (!socket.write(chunks[next++])) {
          socket.once('drain', pump);
          return;
        }
      }
      socket.end(() => resolve());
    };
    pump();
  });
}
