import { close, fchmod, fsync, write } from 'node:fs';
import { promisify } from 'node:util';

/** Descriptor-level writes (the temp file is opened synchronously, so there is no FileHandle to use). */
const writeAsync = promisify(write);
export const closeFd = promisify(close);
export const fsyncFd = promisify(fsync);
export const fchmodFd = promisify(fchmod);

/** Writes all of `chunk` at the descriptor's current position, in pieces of at most 1 GiB. */
export async function writeAll(fd: number, chunk: Uint8Array): Promise<void> {
  let written = 0;
  while (written < chunk.length) {
    const { bytesWritten } = await writeAsync(fd, chunk, written, Math.min(chunk.length - written, 1 << 30), null);
    written += bytesWritten;
  }
}
