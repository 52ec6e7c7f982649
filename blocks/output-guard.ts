import { randomUUID } from 'node:crypto';
import { link, open, readFile, rename, stat, statfs, unlink } from 'node:fs/promises';
import { hostname } from 'node:os';
import { dirname, resolve } from 'node:path';
import { HpairError } from '../shared/errors.js';
import { formatBytes } from './plan.js';

/**
 * What keeps two runs from writing one output: a lock file beside it, and a free-space check before the first
 * block. Both out-of-core drivers take them (computeToNpy and the cluster's submit), so a `compute --max-memory`
 * and a `cluster submit` on the same `--out` exclude each other too.
 */

export interface OutputLock {
  readonly path: string;
  /** Removes the lock file (once; later calls do nothing). */
  release(): Promise<void>;
}

interface Holder {
  readonly pid: number;
  readonly host: string;
  readonly since: string;
  /** Names one lock: a process id can be reused (a container restarted as pid 1), a token cannot. */
  readonly token?: string;
}

/** Tokens of the locks this process holds now. */
const heldTokens = new Set<string>();

export function lockPath(out: string): string {
  return `${out}.lock`;
}

/**
 * Creates `OUT.lock` (O_EXCL), naming this process, host and a token of its own. When it exists, a lock of a
 * process of this host that is gone (a crash, `kill -9`), or that names this very process id but none of its
 * tokens (the id was reused, as pid 1 is by a restarted container), is taken over; any other is refused with
 * IO_ERROR naming its holder.
 *
 * Two runs may find the same stale lock at once. Each moves it aside by rename (only one rename of a path
 * succeeds) and then checks that what it moved is the stale lock it read: if the other run had already put a
 * fresh lock in its place, that one is put back by link (which, unlike rename, never replaces a lock a third
 * run made meanwhile) and this run is refused, so at most one run proceeds.
 */
export async function lockOutput(out: string, name: string): Promise<OutputLock> {
  const path = lockPath(out);
  const me: Holder = { pid: process.pid, host: hostname(), since: new Date().toISOString(), token: randomUUID() };
  const mine = `${JSON.stringify(me)}\n`;
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const file = await open(path, 'wx', 0o644);
      try {
        await file.writeFile(mine);
      } catch (error) {
        await file.close().catch(() => undefined);
        await unlink(path).catch(() => undefined); // an empty lock would read as held by nobody we can check
        throw error;
      }
      await file.close();
      heldTokens.add(me.token!);
      let released = false;
      return {
        path,
        release: async () => {
          if (released) return;
          released = true;
          heldTokens.delete(me.token!);
          // Only our own lock: one that was (wrongly) taken over since is another run's.
          if ((await readFile(path, 'utf8').catch(() => undefined)) === mine) await unlink(path).catch(() => undefined);
        },
      };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') {
        throw new HpairError('IO_ERROR', `cannot write ${name} ${out}: cannot create its lock ${path} (${(error as NodeJS.ErrnoException).code ?? String(error)})`, { cause: error });
      }
    }
    const text = await readFile(path, 'utf8').catch(() => undefined);
    if (text === undefined) continue; // released meanwhile: try again
    const holder = parseHolder(text);
    if (holder === undefined || holder.host !== me.host || !isGone(holder)) throw busy(name, out, path, holder);
    // A lock left by a process of this host that is gone: move it aside, and make sure it was that one.
    const aside = `${path}.stale-${process.pid}`;
    try {
      await rename(path, aside);
    } catch {
      continue; // another run moved it first
    }
    const moved = await readFile(aside, 'utf8').catch(() => '');
    if (moved !== text) {
      await link(aside, path).catch(() => undefined);
      await unlink(aside).catch(() => undefined);
      throw busy(name, out, path, parseHolder(moved));
    }
    await unlink(aside).catch(() => undefined);
  }
  throw busy(name, out, path, undefined);
}

function parseHolder(text: string): Holder | undefined {
  try {
    const value = JSON.parse(text) as Partial<Holder>;
    if (Number.isSafeInteger(value.pid) && typeof value.host === 'string' && typeof value.since === 'string' && (value.token === undefined || typeof value.token === 'string')) {
      return value as Holder;
    }
  } catch {
    // being written at this moment, or not ours: treated as held
  }
  return undefined;
}

/** Whether the process a lock of this host names is gone: no such process, or this one, without that lock. */
function isGone(holder: Holder): boolean {
  if (holder.pid === process.pid) return holder.token === undefined || !heldTokens.has(holder.token);
  try {
    process.kill(holder.pid, 0);
    return false;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code !== 'EPERM'; // EPERM: alive, another user's
  }
}

function busy(name: string, out: string, path: string, holder: Holder | undefined): HpairError {
  const who = holder === undefined ? 'another hpair' : `another hpair (pid ${holder.pid} on ${holder.host}, since ${holder.since})`;
  return new HpairError('IO_ERROR', `cannot write ${name} ${out}: ${who} is writing it; if none is, delete ${path}`);
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
