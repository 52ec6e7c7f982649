import { randomBytes } from 'node:crypto';
import { openSync, unlinkSync } from 'node:fs';
import { rename, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { closeFd, fchmodFd, fsyncFd, writeAll } from './write-all.js';

/** Temporary files being written now: a signal handler removes them before the process exits. */
const liveTemps = new Set<string>();

export interface AtomicWriteOptions {
  /** Permission bits for the new file (an existing file's). @default 0o666 less the process's umask */
  mode?: number;
  /**
   * Called once the new content is durable in the temporary file, just before the rename publishes it; a
   * rejection abandons the write (the old file stays as it was).
   */
  beforeRename?: () => Promise<void>;
}

/**
 * Writes `chunks` to `path` through a temporary file in the same directory and a rename, so a reader
 * sees the old file or the whole new one, and any failure leaves an existing file byte-for-byte as it was.
 * `mode` (an existing file's permission bits) carries over to the new file; without it, the new file gets
 * 0o666 less the process's umask, as any file a program creates (and as out of core's output does).
 */
export async function writeFileAtomic(path: string, chunks: readonly Uint8Array[], { mode, beforeRename }: AtomicWriteOptions = {}): Promise<void> {
  const temp = join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  liveTemps.add(temp);
  try {
    // Created synchronously (one quick syscall) so that no creation is in flight on another thread when a
    // signal handler runs: every temp file that exists is then in liveTemps.
    const fd = openSync(temp, 'wx', 0o666);
    try {
      if (mode !== undefined) await fchmodFd(fd, mode);
      for (const chunk of chunks) await writeAll(fd, chunk);
      await fsyncFd(fd);
    } finally {
      await closeFd(fd);
    }
    await beforeRename?.();
    await rename(temp, path);
  } catch (error) {
    await unlink(temp).catch(() => undefined);
    throw error;
  } finally {
    liveTemps.delete(temp);
  }
}

/** Removes every temporary file being written (for signal handlers: synchronous). Returns how many it removed. */
export function removeLiveTemps(): number {
  let removed = 0;
  for (const temp of liveTemps) {
    try {
      unlinkSync(temp);
      removed++;
    } catch {
      // already renamed into place, or never created
    }
  }
  liveTemps.clear();
  return removed;
}
