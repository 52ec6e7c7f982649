import { constants } from 'node:fs';
import { link, open, readFile, stat, unlink, type FileHandle } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { dirname } from 'node:path';
import { HpairError } from '../shared/errors.js';
import { ioFailure, syncDirectory } from '../io/npy-output.js';
import type { NpyInput } from '../io/npy-file.js';

/** The journal is never read or written through a symlink planted at its name (ELOOP instead). */
const NO_FOLLOW_TEXT = { encoding: 'utf8' as const, flag: constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK };

/**
 * The journal of an out-of-core job: a small text file beside the output (`H.npy.journal`) that lists the
 * blocks whose bytes are durable in the partial output. Its first line names the job (the fingerprint); then
 * one block id per line, each appended and fsync'ed only after the output itself was synced, so an id in the
 * journal always means its block (and mirror) are on disk. A crash can at worst cut the last line short: such
 * a line is dropped when the journal is opened again (that block is computed again).
 *
 *     hpair-journal 1 {"N":6000,"M":6000,...}
 *     0
 *     1
 *     …
 */

/** What makes two runs the same job: if any of it differs, a journal is not resumed. */
export interface JobFingerprint {
  readonly N: number;
  readonly M: number;
  readonly blockSize: number;
  /** The kernel variant: different variants round differently. */
  readonly kernel: string;
  readonly expp: InputStamp;
  readonly distance: InputStamp;
}

/** An input as it was when the job started: its size, modification time and layout. */
export interface InputStamp {
  readonly bytes: number;
  readonly mtimeMs: number;
  /** e.g. '<c16 C (6000, 6000)'. */
  readonly layout: string;
}

export interface Journal {
  readonly path: string;
  readonly fingerprint: JobFingerprint;
  /** Ids of the blocks already recorded (and recorded by this journal since it was opened). */
  readonly done: ReadonlySet<number>;
  /** True when the journal was created by this call rather than found. */
  readonly created: boolean;
  /**
   * Appends ids and makes them durable (fdatasync) before resolving. Call it only once the blocks' bytes are
   * durable in the output (NpyOutput.sync()). Records are written one call after another.
   */
  record(ids: number | Iterable<number>): Promise<void>;
  close(): Promise<void>;
}

const MAGIC = 'hpair-journal 1 ';

/**
 * The fingerprint of a job on these inputs (as computeToNpy makes it): expp as opened (its size, modification
 * time and layout), distance's size and modification time, the block size and the kernel variant.
 */
export async function jobFingerprint(job: {
  expp: Pick<NpyInput, 'rows' | 'cols' | 'dtype' | 'littleEndian' | 'fortranOrder' | 'fileBytes' | 'mtimeMs'>;
  distance: string;
  blockSize: number;
  kernel: string;
  names?: { distance?: string };
}): Promise<JobFingerprint> {
  const { expp, distance } = job;
  let stats;
  try {
    stats = await stat(distance);
  } catch (error) {
    throw ioFailure('read', `${job.names?.distance ?? 'distance'} ${distance}`, error);
  }
  return {
    N: expp.rows,
    M: expp.cols,
    blockSize: job.blockSize,
    kernel: job.kernel,
    expp: {
      bytes: expp.fileBytes,
      mtimeMs: expp.mtimeMs,
      layout: `${expp.littleEndian ? '<' : '>'}${expp.dtype} ${expp.fortranOrder ? 'F' : 'C'} (${expp.rows}, ${expp.cols})`,
    },
    distance: { bytes: stats.size, mtimeMs: stats.mtimeMs, layout: 'vector' },
  };
}

export function journalPath(outPath: string): string {
  return `${outPath}.journal`;
}

/** Stable JSON of a fingerprint (keys in a fixed order), as the journal stores it. */
function encode(fingerprint: JobFingerprint): string {
  const stamp = (s: InputStamp): InputStamp => ({ bytes: s.bytes, mtimeMs: s.mtimeMs, layout: s.layout });
  const f = fingerprint;
  return JSON.stringify({ N: f.N, M: f.M, blockSize: f.blockSize, kernel: f.kernel, expp: stamp(f.expp), distance: stamp(f.distance) });
}

/** The first difference between two fingerprints, in words; undefined when they are the same job. */
export function fingerprintDifference(found: JobFingerprint, wanted: JobFingerprint): string | undefined {
  const scalar = (['N', 'M', 'blockSize', 'kernel'] as const).find((key) => found[key] !== wanted[key]);
  if (scalar !== undefined) return `${scalar} is ${String(found[scalar])} there but ${String(wanted[scalar])} here`;
  for (const input of ['expp', 'distance'] as const) {
    for (const key of ['bytes', 'layout', 'mtimeMs'] as const) {
      if (found[input][key] !== wanted[input][key]) {
        const describe = (s: InputStamp): string => (key === 'mtimeMs' ? new Date(s.mtimeMs).toISOString() : String(s[key]));
        const word = key === 'mtimeMs' ? 'was modified' : key === 'bytes' ? 'size' : 'layout';
        return `${input} ${word}: ${describe(found[input])} there, ${describe(wanted[input])} here`;
      }
    }
  }
  return undefined;
}

/** The fingerprint a journal file starts with, or undefined when there is no journal. Throws IO_ERROR for a damaged one. */
export async function readJournalFingerprint(outPath: string): Promise<JobFingerprint | undefined> {
  const path = journalPath(outPath);
  let text: string;
  try {
    text = await readFile(path, NO_FOLLOW_TEXT);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw ioFailure('read', `the journal ${path}`, error);
  }
  return parse(text, path).fingerprint;
}

interface Parsed {
  fingerprint: JobFingerprint;
  ids: number[];
  /** Bytes of whole lines (a torn last line is not counted). */
  validBytes: number;
}

function parse(text: string, path: string): Parsed {
  const damaged = (why: string): HpairError =>
    new HpairError('IO_ERROR', `the journal ${path} is damaged (${why}); delete it and the partial output beside it to start over`);
  const firstEnd = text.indexOf('\n');
  if (!text.startsWith(MAGIC) || firstEnd < 0) throw damaged('it does not start with an hpair journal header');
  let fingerprint: JobFingerprint;
  try {
    fingerprint = JSON.parse(text.slice(MAGIC.length, firstEnd)) as JobFingerprint;
  } catch {
    throw damaged('its header is not JSON');
  }
  if (typeof fingerprint !== 'object' || fingerprint === null || !Number.isSafeInteger(fingerprint.N) || !Number.isSafeInteger(fingerprint.blockSize)) {
    throw damaged('its header lacks N or blockSize');
  }
  const ids: number[] = [];
  let at = firstEnd + 1;
  let line = 2;
  for (;;) {
    const end = text.indexOf('\n', at);
    if (end < 0) break; // a torn last line (or none): ignored
    const word = text.slice(at, end);
    if (!/^\d{1,15}$/.test(word)) throw damaged(`line ${line} is not a block id`);
    ids.push(Number(word));
    at = end + 1;
    line++;
  }
  return { fingerprint, ids, validBytes: Buffer.byteLength(text.slice(0, at), 'utf8') };
}

/**
 * Opens the journal of the output `outPath` (the file `outPath + '.journal'`) for the job `fingerprint`, or
 * creates it (durably, with its directory entry). A journal of another job is refused with INVALID_ARGUMENT
 * naming the first difference; a damaged one with IO_ERROR. `blockCount`, when given, bounds the ids.
 */
export async function openJournal(outPath: string, fingerprint: JobFingerprint, options: { blockCount?: number } = {}): Promise<Journal> {
  const path = journalPath(outPath);
  const done = new Set<number>();
  let created = false;
  let text: string | undefined;
  for (let attempt = 0; text === undefined; attempt++) {
    try {
      text = await readFile(path, NO_FOLLOW_TEXT);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT' || attempt > 2) throw ioFailure('read', `the journal ${path}`, error);
      // None yet: written whole under a temporary name, then linked into place (which fails if another
      // process got there first; then we read theirs), so a journal never exists without its header.
      created = await createJournal(path, fingerprint);
    }
  }
  const parsed = parse(text, path);
  const difference = fingerprintDifference(parsed.fingerprint, fingerprint);
  if (difference !== undefined) {
    throw new HpairError(
      'INVALID_ARGUMENT',
      `the journal ${path} belongs to a different job (${difference}); run with the same inputs and options, or delete it and the partial output beside it to start over`,
    );
  }
  for (const id of parsed.ids) {
    if (options.blockCount !== undefined && id >= options.blockCount) {
      throw new HpairError('IO_ERROR', `the journal ${path} lists block ${id} but the job has ${options.blockCount} blocks; delete it and the partial output beside it to start over`);
    }
    done.add(id);
  }
  let file: FileHandle | undefined;
  try {
    // Drop a torn last line, so the next record starts on a line of its own.
    if (parsed.validBytes !== Buffer.byteLength(text, 'utf8')) {
      file = await open(path, constants.O_RDWR | constants.O_NOFOLLOW);
      await file.truncate(parsed.validBytes);
      await file.sync();
      await file.close();
    }
    // Appends (O_APPEND): each record lands whole at the end even if another process appends too.
    file = await open(path, constants.O_WRONLY | constants.O_APPEND | constants.O_NOFOLLOW);
  } catch (error) {
    await file?.close().catch(() => undefined);
    throw ioFailure('open', `the journal ${path}`, error);
  }
  const handle = file;
  let queue = Promise.resolve();
  let closed = false;
  let broken: HpairError | undefined;
  return {
    path,
    fingerprint,
    done,
    created,
    record(ids) {
      const list = typeof ids === 'number' ? [ids] : [...ids];
      for (const id of list) {
        if (!Number.isSafeInteger(id) || id < 0 || (options.blockCount !== undefined && id >= options.blockCount)) {
          return Promise.reject(new HpairError('INVALID_ARGUMENT', `not a block id of this job: ${String(id)}`));
        }
      }
      const append = async (): Promise<void> => {
        if (closed) throw new HpairError('INVALID_ARGUMENT', `the journal ${path} is closed`);
        if (broken !== undefined) throw broken;
        if (list.length === 0) return;
        const text = Buffer.from(list.map((id) => `${id}\n`).join(''), 'utf8');
        try {
          const { bytesWritten } = await handle.write(text, 0, text.length, null);
          if (bytesWritten !== text.length) throw Object.assign(new Error(`short write (${bytesWritten} of ${text.length} bytes)`), { code: 'EIO' });
          await handle.datasync();
        } catch (error) {
          // Part of a line may have reached the file: it is dropped when the journal is opened again, and no
          // record may follow it now (it would continue the torn line).
          broken = ioFailure('write', `the journal ${path}`, error);
          throw broken;
        }
        for (const id of list) done.add(id);
      };
      const result = queue.then(append);
      queue = result.catch(() => undefined);
      return result;
    },
    async close() {
      if (closed) return;
      await queue;
      closed = true;
      await handle.close();
    },
  };
}

/** Writes a new journal (header only) durably; false when another process created one first. */
async function createJournal(path: string, fingerprint: JobFingerprint): Promise<boolean> {
  const temp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  let file: FileHandle | undefined;
  try {
    file = await open(temp, 'wx', 0o644);
    await file.write(`${MAGIC}${encode(fingerprint)}\n`, 0, 'utf8');
    await file.sync();
    await file.close();
    file = undefined;
    try {
      await link(temp, path);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
      throw error;
    }
    await syncDirectory(dirname(path));
    return true;
  } catch (error) {
    throw ioFailure('create', `the journal ${path}`, error);
  } finally {
    await file?.close().catch(() => undefined);
    await unlink(temp).catch(() => undefined);
  }
}
