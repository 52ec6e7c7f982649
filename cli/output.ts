import { constants, fstatSync, readlinkSync, statSync, type Stats } from 'node:fs';
import { access, lstat, open, readlink, realpath, stat, unlink } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { isatty } from 'node:tty';
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import { manifestPath, MANIFEST_FORMAT } from '../blocks/integrity.js';
import { kindOf } from '../io/npy-output.js';
import { writeFileAtomic } from './atomic-write.js';
import { writeAll } from './write-all.js';
import { about, CliFailure, errnoText } from './errors.js';
import { describeType, FifoTimeout, writeFifo } from './streams.js';

/**
 * Where `--out` goes, decided before any work so that a bad path fails at once:
 * - `-` (or /dev/stdout, /dev/fd/1): standard output, written as it is (a pipe, a file, /dev/null);
 * - a FIFO: opened once a reader is there and written straight into;
 * - a character device (/dev/null): opened and written straight into;
 * - a regular file or a new name, directly or through symlinks: written to a temporary file beside the
 *   real target and renamed over it, so the link stays a link and a failure leaves the old file as it was.
 */
export type OutTarget =
  | { readonly kind: 'stdout'; readonly shown: string }
  | { readonly kind: 'fifo' | 'device'; readonly shown: string; readonly path: string; readonly stats: Stats }
  | { readonly kind: 'file'; readonly shown: string; readonly path: string; readonly stats?: Stats };

const STDOUT_NAMES = new Set(['-', '/dev/stdout', '/dev/fd/1', '/proc/self/fd/1']);
/** Symlink hops followed for a link whose target does not exist yet (Linux's own limit is 40). */
const MAX_LINK_HOPS = 40;

export function isStdout(out: string): boolean {
  return STDOUT_NAMES.has(out);
}

export async function resolveOut(out: string): Promise<OutTarget> {
  const fail = (message: string, cause?: unknown): CliFailure => new CliFailure('IO_ERROR', message, 2, 'out', out, { cause });
  if (isStdout(out)) {
    if (isatty(1)) throw new CliFailure('INVALID_ARGUMENT', 'standard output is a terminal; redirect it to a file or a pipe', 2, 'out', out);
    return { kind: 'stdout', shown: out };
  }
  let stats: Stats | undefined;
  try {
    stats = await stat(out); // follows every link, /proc's and /dev/fd's included
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code !== 'ENOENT' && code !== 'ENOTDIR') throw fail(`cannot use it: ${errnoText(error)}`, error);
  }
  if (stats === undefined) return newFile(out, await finalLinkTarget(out).catch((error: unknown) => Promise.reject(fail(errnoText(error), error))));
  if (stats.isFIFO() || stats.isCharacterDevice()) {
    await access(out, constants.W_OK).catch((error: unknown) => Promise.reject(fail(`cannot write to it: ${errnoText(error)}`, error)));
    if (stats.isCharacterDevice() && (await isTerminal(out))) {
      throw new CliFailure('INVALID_ARGUMENT', 'it is a terminal; hpair writes binary .npy data', 2, 'out', out);
    }
    return { kind: stats.isFIFO() ? 'fifo' : 'device', shown: out, path: out, stats };
  }
  if (!stats.isFile()) throw fail(`it is ${describeType(stats)}; hpair writes regular files, FIFOs and character devices`);
  const real = await realpath(out).catch((error: unknown) => Promise.reject(fail(`cannot resolve it: ${errnoText(error)}`, error)));
  await checkDirectory(dirname(real), fail);
  return { kind: 'file', shown: out, path: real, stats };
}

/** A name that does not exist yet (maybe the target of a dangling link): its directory must be there and writable. */
async function newFile(out: string, target: string): Promise<OutTarget> {
  const fail = (message: string, cause?: unknown): CliFailure => new CliFailure('IO_ERROR', message, 2, 'out', out, { cause });
  const directory = dirname(target);
  const real = await realpath(directory).catch((error: unknown) => {
    const code = (error as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'does not exist' : code === 'ENOTDIR' ? 'is not a directory' : `cannot be used: ${errnoText(error)}`;
    return Promise.reject(fail(`its directory ${directory} ${why}`, error));
  });
  await checkDirectory(real, fail);
  return { kind: 'file', shown: out, path: join(real, basename(target)) };
}

async function checkDirectory(directory: string, fail: (message: string, cause?: unknown) => CliFailure): Promise<void> {
  const stats = await stat(directory).catch((error: unknown) => Promise.reject(fail(`its directory ${directory} cannot be used: ${errnoText(error)}`, error)));
  if (!stats.isDirectory()) throw fail(`its directory ${directory} is not a directory`);
  // The temporary file is created in this directory and renamed: both need write and search permission.
  await access(directory, constants.W_OK | constants.X_OK).catch((error: unknown) =>
    Promise.reject(fail(`cannot create files in ${directory}: ${errnoText(error)}`, error)),
  );
}

/** Follows a chain of symlinks whose last target does not exist, and returns that target's path. */
async function finalLinkTarget(path: string): Promise<string> {
  let current = resolve(path);
  for (let hop = 0; hop < MAX_LINK_HOPS; hop++) {
    const stats = await lstat(current).catch((error: unknown) => {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
      throw error;
    });
    if (stats === undefined || !stats.isSymbolicLink()) return current;
    current = resolve(dirname(current), await readlink(current));
  }
  throw Object.assign(new Error('ELOOP: too many symbolic links encountered'), { code: 'ELOOP' });
}

async function isTerminal(path: string): Promise<boolean> {
  const handle = await open(path, constants.O_WRONLY | constants.O_NONBLOCK | constants.O_NOCTTY).catch(() => undefined);
  if (handle === undefined) return false;
  try {
    return isatty(handle.fd);
  } finally {
    await handle.close();
  }
}

/** Refuses an --out that is one of the inputs (same device and inode: through links, hard ones too). */
export function refuseInputAsOutput(target: OutTarget, inputs: ReadonlyArray<{ flag: string; file: string }>): void {
  if ((target.kind !== 'file' && target.kind !== 'fifo') || target.stats === undefined) return;
  for (const input of inputs) {
    const stats = statSync(input.file, { throwIfNoEntry: false }); // follows links; a missing input is reported when read
    if (stats !== undefined && stats.dev === target.stats.dev && stats.ino === target.stats.ino) {
      throw new CliFailure('INVALID_ARGUMENT', `it is the same file as --${input.flag} ${input.file}; refusing to overwrite an input`, 2, 'out', target.shown);
    }
  }
}

/** Writes the .npy chunks to the target; errors name --out and its file. */
export async function writeOut(target: OutTarget, chunks: readonly Uint8Array[], fifoTimeoutMs: number): Promise<void> {
  try {
    if (target.kind === 'file') {
      // A manifest beside the old H (an out-of-core or cluster run wrote it) describes blocks this H does not
      // have: it goes just before the new H appears, so that `hpair verify` never checks this H against it.
      const beforeRename = async (): Promise<void> => {
        const kept = await removeStaleManifest(target.path).catch((error: unknown) =>
          Promise.reject(new Error(`the manifest of the H it replaces, ${manifestPath(target.path)}, cannot be removed (${errnoText(error)}); nothing was replaced`)),
        );
        if (kept !== undefined) process.stderr.write(`hpair: ${kept}\n`);
      };
      await writeFileAtomic(target.path, chunks, { ...(target.stats === undefined ? {} : { mode: target.stats.mode & 0o7777 }), beforeRename });
    }
    else if (target.kind === 'fifo') await writeFifo(target.path, chunks, fifoTimeoutMs);
    else if (target.kind === 'device') await writeDevice(target.path, chunks);
    else await writeStdout(chunks, fifoTimeoutMs);
  } catch (error) {
    if (error instanceof FifoTimeout) throw new CliFailure('IO_ERROR', `${error.message} (see --fifo-timeout)`, 2, 'out', target.shown, { cause: error });
    const code = (error as NodeJS.ErrnoException).code;
    const why = code === 'EPIPE' ? 'the reader closed it before H was written' : `cannot write: ${errnoText(error)}`;
    throw about('out', target.shown, new CliFailure('IO_ERROR', why, 2, undefined, undefined, { cause: error }));
  }
}

/** Bytes of a manifest read to find its "format" (hpair writes it first). */
const MANIFEST_HEAD_BYTES = 4096;

/**
 * Removes `path`'s manifest (`path.manifest.json`) when hpair wrote it: a regular file (a symbolic link there
 * is never followed nor removed) whose JSON starts with hpair's "format". Resolves undefined when there is
 * none left, or with why one was left in place (for a note: `hpair verify` will not match the new H).
 */
export async function removeStaleManifest(path: string): Promise<string | undefined> {
  const manifest = manifestPath(path);
  const kept = (why: string): string => `left ${manifest} as it is (${why}); it does not describe the H just written, so hpair verify will not match it`;
  const seen = await lstat(manifest).catch((error: NodeJS.ErrnoException) => (error.code === 'ENOENT' ? undefined : Promise.reject(error)));
  if (seen === undefined) return undefined;
  if (!seen.isFile()) return kept(`it is ${kindOf(seen)}`);
  const file = await open(manifest, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK).catch((error: NodeJS.ErrnoException) =>
    error.code === 'ENOENT' ? undefined : Promise.reject(error),
  );
  if (file === undefined) return undefined;
  let head: string;
  try {
    const opened = await file.stat();
    if (!opened.isFile() || opened.dev !== seen.dev || opened.ino !== seen.ino) return kept('it changed while it was checked');
    const buffer = Buffer.alloc(MANIFEST_HEAD_BYTES);
    const { bytesRead } = await file.read(buffer, 0, buffer.length, 0);
    head = buffer.toString('utf8', 0, bytesRead);
  } finally {
    await file.close();
  }
  if (!new RegExp(`^\\s*\\{\\s*"format"\\s*:\\s*"${MANIFEST_FORMAT}"`).test(head)) return kept('hpair did not write it');
  // Unlinking a name removes that name only: were it swapped for a link since, the link's target is untouched.
  await unlink(manifest).catch((error: NodeJS.ErrnoException) => (error.code === 'ENOENT' ? undefined : Promise.reject(error)));
  return undefined;
}

async function writeDevice(path: string, chunks: readonly Uint8Array[]): Promise<void> {
  const handle = await open(path, constants.O_WRONLY | constants.O_NOCTTY); // no O_CREAT, no O_TRUNC: it exists, and is not a file
  try {
    for (const chunk of chunks) await writeAll(handle.fd, chunk);
  } finally {
    await handle.close();
  }
}

/**
 * Standard output. A pipe is reopened through /proc/self/fd/1 (Linux): a descriptor of our own, made
 * non-blocking without touching the one the shell shares with its other children, written through
 * epoll. Anything else (a file, /dev/null, a socket, or no /proc) goes through process.stdout, in
 * pieces with a turn of the event loop between them, so signals are still handled.
 */
async function writeStdout(chunks: readonly Uint8Array[], fifoTimeoutMs: number): Promise<void> {
  if (fstatSync(1).isFIFO()) {
    // A shell's pipe (pipe:[…]) has its reader from the start: if open() finds none, it has left for good.
    let anonymous = false;
    try {
      anonymous = readlinkSync('/proc/self/fd/1', { encoding: 'utf8' }).startsWith('pipe:');
    } catch {
      // no /proc: process.stdout below
    }
    try {
      await writeFifo('/proc/self/fd/1', chunks, anonymous ? 0 : fifoTimeoutMs);
      return;
    } catch (error) {
      if (error instanceof FifoTimeout && anonymous) throw Object.assign(new Error('EPIPE: broken pipe'), { code: 'EPIPE' });
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
  }
  const piece = 1 << 24;
  for (const chunk of chunks) {
    for (let at = 0; at < chunk.length; at += piece) {
      await new Promise<void>((resolve, reject) =>
        process.stdout.write(chunk.subarray(at, Math.min(chunk.length, at + piece)), (error) => (error ? reject(error) : resolve())),
      );
      await yieldToLoop();
    }
  }
}
