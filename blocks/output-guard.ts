import { randomUUID } from 'node:crypto';
import { constants, fstatSync, lstatSync, unlinkSync } from 'node:fs';
import { link, lstat, open, rename, stat, statfs, unlink, type FileHandle } from 'node:fs/promises';
import { hostname } from 'node:os';
import { dirname, resolve } from 'node:path';
import { HpairError } from '../shared/errors.js';
import { formatBytes } from './plan.js';

/**
 * What keeps two runs from writing one output: a lock file beside it, and a free-space check before the first
 * block. Both out-of-core drivers take them (computeToNpy and the cluster's submit), so a `compute --max-memory`
 * and a `cluster submit` on the same `--out` exclude each other too.
 */

/**
 * How often the holder of a lock rewrites the heartbeat time in it.
 */
export const LOCK_HEARTBEAT_MS = 15_000;
/**
 * A lock of another host whose heartbeat is older than this is stale: its writer is taken to be gone (a crash,
 * a lost machine), and the next run takes it over. The holder refreshes it every LOCK_HEARTBEAT_MS, so only a
 * writer stopped for this long, or hosts whose clocks differ by more than the margin between the two, can be
 * taken for gone by mistake. Locks of this host are judged by their process instead, at once.
 */
export const LOCK_STALE_MS = 120_000;

export interface OutputLock {
  readonly path: string;
  /** Throws IO_ERROR when the lock file is no longer this run's (another run took it over as stale). */
  assertHeld(): Promise<void>;
  /** Stops the heartbeat and removes the lock file if it is still this run's (once; later calls do nothing). */
  release(): Promise<void>;
}

interface Holder {
  readonly pid: number;
  readonly host: string;
  readonly since: string;
  /** Names one lock: a process id can be reused (a container restarted as pid 1), a token cannot. */
  readonly token?: string;
  /** When the holder last said it is alive (ISO time); absent in locks of versions without heartbeats. */
  readonly heartbeat?: string;
}

/** The locks this process holds now: their tokens (for isGone), and what a signal handler needs to remove them. */
const held = new Map<string, { path: string; fd: number; dev: number; ino: number }>();

/** The most of a lock file read: a holder record is a few hundred bytes. */
const MAX_LOCK_BYTES = 1 << 16;

export function lockPath(out: string): string {
  return `${out}.lock`;
}

/**
 * Creates `OUT.lock` (O_EXCL, never through a symlink), naming this process, host and a token of its own, with
 * a heartbeat time the returned lock refreshes every LOCK_HEARTBEAT_MS (`heartbeatMs`) until it is released.
 * When it exists, a lock of a process of this host that is gone (a crash, `kill -9`), or that names this very
 * process id but none of its tokens (the id was reused, as pid 1 is by a restarted container), or a lock of
 * another host whose heartbeat is older than LOCK_STALE_MS, is taken over; any other is refused with IO_ERROR
 * naming its holder. A lock path that is not a regular file (a symlink, a FIFO) is refused and left alone.
 *
 * Two runs may find the same stale lock at once. Each moves it aside by rename (only one rename of a path
 * succeeds) and then checks that what it moved is the stale lock it read: if the other run had already put a
 * fresh lock in its place, that one is put back by link (which, unlike rename, never replaces a lock a third
 * run made meanwhile) and this run is refused, so at most one run proceeds.
 */
export async function lockOutput(out: string, name: string, options: { heartbeatMs?: number; staleMs?: number } = {}): Promise<OutputLock> {
  const path = lockPath(out);
  const heartbeatMs = options.heartbeatMs ?? LOCK_HEARTBEAT_MS;
  const staleMs = options.staleMs ?? LOCK_STALE_MS;
  const since = new Date().toISOString();
  const me = { pid: process.pid, host: hostname(), since, token: randomUUID() };
  // The heartbeat is rewritten in place at the same length (ISO times have a fixed width), so a reader sees the
  // old record or the new one, never a shorter file.
  const record = (heartbeat: string): Buffer => Buffer.from(`${JSON.stringify({ ...me, heartbeat })}\n`);
  for (let attempt = 0; attempt < 3; attempt++) {
    let file: FileHandle | undefined;
    try {
      file = await open(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o644);
      // Held from the moment it exists: a second signal arriving before the record is written must still
      // remove it on the way out (releaseHeldLocksSync), or it would outlive this process.
      const { dev, ino } = fstatSync(file.fd);
      held.set(me.token, { path, fd: file.fd, dev, ino });
      const bytes = record(since);
      await file.write(bytes, 0, bytes.length, 0);
      return holdLock(file, path, me.token, record, heartbeatMs);
    } catch (error) {
      if (file !== undefined) {
        held.delete(me.token);
        await file.close().catch(() => undefined);
        await unlink(path).catch(() => undefined); // an empty lock would read as held by nobody we can check
        throw new HpairError('IO_ERROR', `cannot write ${name} ${out}: cannot write its lock ${path} (${(error as NodeJS.ErrnoException).code ?? String(error)})`, { cause: error });
      }
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') {
        throw new HpairError('IO_ERROR', `cannot write ${name} ${out}: cannot create its lock ${path} (${(error as NodeJS.ErrnoException).code ?? String(error)})`, { cause: error });
      }
    }
    const text = await readLock(path, name, out);
    if (text === undefined) continue; // released meanwhile: try again
    const holder = parseHolder(text);
    if (holder === undefined || !isStale(holder, me.host, staleMs)) throw busy(name, out, path, holder, staleMs);
    // A stale lock: move it aside, and make sure it was that one.
    const aside = `${path}.stale-${process.pid}`;
    try {
      await rename(path, aside);
    } catch {
      continue; // another run moved it first
    }
    const moved = (await readLock(aside, name, out).catch(() => undefined)) ?? '';
    if (moved !== text) {
      await link(aside, path).catch(() => undefined);
      await unlink(aside).catch(() => undefined);
      throw busy(name, out, path, parseHolder(moved), staleMs);
    }
    await unlink(aside).catch(() => undefined);
  }
  throw busy(name, out, path, undefined, staleMs);
}

async function holdLock(file: FileHandle, path: string, token: string, record: (heartbeat: string) => Buffer, heartbeatMs: number): Promise<OutputLock> {
  const { dev, ino } = held.get(token)!;
  let released = false;
  let beating: Promise<unknown> = Promise.resolve();
  const timer = setInterval(() => {
    // Through the descriptor: if the lock was taken over (moved aside, replaced), this writes the old file only.
    const bytes = record(new Date().toISOString());
    beating = beating.then(() => file.write(bytes, 0, bytes.length, 0)).catch(() => undefined);
  }, heartbeatMs);
  timer.unref();
  const ours = async (): Promise<boolean> => {
    const now = await lstat(path).catch(() => undefined);
    return now !== undefined && now.isFile() && now.dev === dev && now.ino === ino;
  };
  return {
    path,
    async assertHeld() {
      if (released || !(await ours())) {
        throw new HpairError('IO_ERROR', `the lock ${path} is no longer this run's (another run took it over as stale); nothing was published`);
      }
    },
    async release() {
      if (released) return;
      released = true;
      clearInterval(timer);
      await beating;
      held.delete(token);
      // Only our own lock: one that was taken over since is another run's.
      if (await ours()) await unlink(path).catch(() => undefined);
      await file.close().catch(() => undefined);
    },
  };
}

/**
 * Removes every lock this process holds, synchronously: for a signal handler about to exit the process. Each is
 * removed only if its path still names the file this process created.
 */
export function releaseHeldLocksSync(): number {
  let removed = 0;
  for (const [token, lock] of held) {
    held.delete(token);
    try {
      const now = lstatSync(lock.path);
      const mine = fstatSync(lock.fd);
      if (now.isFile() && now.dev === lock.dev && now.ino === lock.ino && mine.ino === lock.ino) {
        unlinkSync(lock.path);
        removed++;
      }
    } catch {
      // gone already, or the descriptor closed: nothing of ours to remove
    }
  }
  return removed;
}

/**
 * A lock file's text, read without following a symlink or waiting on a FIFO; undefined when there is none.
 * Anything but a regular file is refused (IO_ERROR), and left as it is.
 */
async function readLock(path: string, name: string, out: string): Promise<string | undefined> {
  let file: FileHandle;
  try {
    file = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return undefined;
    if (code === 'ELOOP' || code === 'EMLINK') throw notALock(name, out, path, 'a symbolic link');
    throw new HpairError('IO_ERROR', `cannot write ${name} ${out}: cannot read its lock ${path} (${code ?? String(error)})`, { cause: error });
  }
  try {
    const stats = await file.stat();
    if (!stats.isFile()) throw notALock(name, out, path, stats.isFIFO() ? 'a FIFO' : stats.isDirectory() ? 'a directory' : 'not a regular file');
    const bytes = Buffer.alloc(Math.min(stats.size, MAX_LOCK_BYTES));
    const { bytesRead } = await file.read(bytes, 0, bytes.length, 0);
    return bytes.subarray(0, bytesRead).toString('utf8');
  } finally {
    await file.close().catch(() => undefined);
  }
}

function notALock(name: string, out: string, path: string, kind: string): HpairError {
  return new HpairError('IO_ERROR', `cannot write ${name} ${out}: its lock ${path} is ${kind}, not a lock hpair made; remove it and run again`);
}

function parseHolder(text: string): Holder | undefined {
  try {
    const value = JSON.parse(text) as Partial<Holder>;
    if (
      Number.isSafeInteger(value.pid) &&
      typeof value.host === 'string' &&
      typeof value.since === 'string' &&
      (value.token === undefined || typeof value.token === 'string') &&
      (value.heartbeat === undefined || typeof value.heartbeat === 'string')
    ) {
      return value as Holder;
    }
  } catch {
    // being written at this moment, or not ours: treated as held
  }
  return undefined;
}

/**
 * Whether a lock may be taken over: on this host, when its process is gone; from another host (which cannot be
 * asked), when its heartbeat is older than `staleMs`. A lock without a heartbeat (an older hpair's) from
 * another host is never stale: nothing tells whether its writer still runs.
 */
function isStale(holder: Holder, host: string, staleMs: number): boolean {
  if (holder.host === host) return isGone(holder);
  const beat = holder.heartbeat === undefined ? Number.NaN : Date.parse(holder.heartbeat);
  return Number.isFinite(beat) && Date.now() - beat > staleMs;
}

/** Whether the process a lock of this host names is gone: no such process, or this one, without that lock. */
function isGone(holder: Holder): boolean {
  if (holder.pid === process.pid) return holder.token === undefined || !held.has(holder.token);
  try {
    process.kill(holder.pid, 0);
    return false;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code !== 'EPERM'; // EPERM: alive, another user's
  }
}

function busy(name: string, out: string, path: string, holder: Holder | undefined, staleMs: number): HpairError {
  const beat = holder?.heartbeat === undefined ? '' : `, last heartbeat ${holder.heartbeat}`;
  const who = holder === undefined ? 'another hpair' : `another hpair (pid ${holder.pid} on ${holder.host}, since ${holder.since}${beat})`;
  const when = holder !== undefined && holder.host !== hostname() && holder.heartbeat !== undefined ? `; it is taken over once its heartbeat is ${Math.round(staleMs / 1000)} s old` : '';
  return new HpairError('IO_ERROR', `cannot write ${name} ${out}: ${who} is writing it${when}; if none is, delete ${path}`);
}

/** Free space for what the output still needs (a sparse file grows as blocks are written). */
export async function checkSpace(out: string, outBytes: number, partial: string | undefined, name: string): Promise<void> {
  const dir = dirname(resolve(out));
  let free: number;
  try {
    const fs = await statfs(dir);
    free = fs.bavail * fs.bsize;
  } catch {
    return; // no statfs here: a full disk is still caught, and resumable, when a write fails
  }
  const allocated = partial === undefined ? 0 : await stat(partial).then((s) => s.blocks * 512, () => 0);
  const needed = Math.max(0, outBytes - allocated);
  if (free < needed) {
    throw new HpairError('IO_ERROR', `cannot write ${name} ${out}: H needs ${formatBytes(needed)} more on disk but ${dir} has ${formatBytes(free)} free`);
  }
}
