import { constants } from 'node:fs';
import { link, open, stat, unlink, type FileHandle } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { dirname } from 'node:path';
import { HpairError } from '../shared/errors.js';
import { ioFailure, kindOf, syncDirectory } from '../io/npy-output.js';
import type { NpyInput } from '../io/npy-file.js';
import { digestFile, isChecksum, newNonce } from './integrity.js';

/**
 * The journal of an out-of-core job: a small text file beside the output (`H.npy.journal`) that lists the
 * blocks whose bytes are durable in the partial output, each with the checksum of the bytes computed for it
 * (integrity.ts blockChecksum). Its first line names the job (the fingerprint, with the SHA-256 of each input's
 * content) and this output's run (a nonce drawn when the journal was created, so that a run started afresh is
 * never taken for an earlier one). Then one record per line, each appended and fsync'ed only after the output
 * itself was synced, so a record always means its block (and mirror) are on disk. A later record of a block
 * replaces an earlier one; `ID -` withdraws it (its bytes did not match: it is computed again). A crash can at
 * worst cut the last line short: such a line is dropped when the journal is opened again.
 *
 *     hpair-journal 2 {"N":6000,"M":6000,...,"nonce":"9f…"}
 *     0 5d41402abc4b2a76b9719d911017c592…
 *     1 7b502c3a1f48c8609ae212cdfb639dee…
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

/** An input as it was when the job started: its size, modification time, layout and content. */
export interface InputStamp {
  readonly bytes: number;
  readonly mtimeMs: number;
  /** e.g. '<c16 C (6000, 6000)'. */
  readonly layout: string;
  /** SHA-256 of the file's bytes (hex): an input rewritten with the same size and time is still told apart. */
  readonly sha256: string;
}

/** A journaled block: its id and the checksum of its bytes. */
export interface BlockRecord {
  readonly id: number;
  readonly checksum: string;
}

export interface Journal {
  readonly path: string;
  readonly fingerprint: JobFingerprint;
  /** This output's run: drawn when the journal was created, kept by every run that resumes it. */
  readonly nonce: string;
  /** Ids of the blocks recorded (and recorded by this journal since it was opened). */
  readonly done: ReadonlySet<number>;
  /** The checksum recorded for each block of `done`. */
  readonly checksums: ReadonlyMap<number, string>;
  /** True when the journal was created by this call rather than found. */
  readonly created: boolean;
  /**
   * Appends records and makes them durable (fdatasync) before resolving. Call it only once the blocks' bytes
   * are durable in the output (NpyOutput.sync()). Records are written one call after another.
   */
  record(blocks: BlockRecord | Iterable<BlockRecord>): Promise<void>;
  /** Withdraws blocks (their bytes did not match their checksums): they leave `done` and are computed again. */
  withdraw(ids: Iterable<number>): Promise<void>;
  close(): Promise<void>;
}

const MAGIC = 'hpair-journal 2 ';
const OLD_MAGIC = 'hpair-journal 1 ';

/**
 * The fingerprint of a job on these inputs (as computeToNpy makes it): expp as opened (its size, modification
 * time and layout), distance's size and modification time, each input's SHA-256 (read once, whole), the block
 * size and the kernel variant.
 */
export async function jobFingerprint(job: {
  expp: Pick<NpyInput, 'path' | 'rows' | 'cols' | 'dtype' | 'littleEndian' | 'fortranOrder' | 'fileBytes' | 'mtimeMs'>;
  distance: string;
  blockSize: number;
  kernel: string;
  names?: { expp?: string; distance?: string };
}): Promise<JobFingerprint> {
  const { expp, distance } = job;
  let stats;
  try {
    stats = await stat(distance);
  } catch (error) {
    throw ioFailure('read', `${job.names?.distance ?? 'distance'} ${distance}`, error);
  }
  const [exppDigest, distanceDigest] = await Promise.all([digestFile(expp.path, job.names?.expp ?? 'expp'), digestFile(distance, job.names?.distance ?? 'distance')]);
  return {
    N: expp.rows,
    M: expp.cols,
    blockSize: job.blockSize,
    kernel: job.kernel,
    expp: { ...exppStamp(expp), sha256: exppDigest },
    distance: { bytes: stats.size, mtimeMs: stats.mtimeMs, layout: 'vector', sha256: distanceDigest },
  };
}

/** expp's stamp without its digest: size, modification time and layout as opened. */
export function exppStamp(expp: Pick<NpyInput, 'rows' | 'cols' | 'dtype' | 'littleEndian' | 'fortranOrder' | 'fileBytes' | 'mtimeMs'>): Omit<InputStamp, 'sha256'> {
  return {
    bytes: expp.fileBytes,
    mtimeMs: expp.mtimeMs,
    layout: `${expp.littleEndian ? '<' : '>'}${expp.dtype} ${expp.fortranOrder ? 'F' : 'C'} (${expp.rows}, ${expp.cols})`,
  };
}

export function journalPath(outPath: string): string {
  return `${outPath}.journal`;
}

/** Stable JSON of a fingerprint and its run's nonce (keys in a fixed order), as the journal stores it. */
function encode(fingerprint: JobFingerprint, nonce: string): string {
  const stamp = (s: InputStamp): InputStamp => ({ bytes: s.bytes, mtimeMs: s.mtimeMs, layout: s.layout, sha256: s.sha256 });
  const f = fingerprint;
  return JSON.stringify({ N: f.N, M: f.M, blockSize: f.blockSize, kernel: f.kernel, expp: stamp(f.expp), distance: stamp(f.distance), nonce });
}

/** The first difference between two fingerprints, in words; undefined when they are the same job. */
export function fingerprintDifference(found: JobFingerprint, wanted: JobFingerprint): string | undefined {
  const scalar = (['N', 'M', 'blockSize', 'kernel'] as const).find((key) => found[key] !== wanted[key]);
  if (scalar !== undefined) return `${scalar} is ${String(found[scalar])} there but ${String(wanted[scalar])} here`;
  for (const input of ['expp', 'distance'] as const) {
    const there = found[input];
    if (typeof there !== 'object' || there === null) return `${input} is not described there`;
    for (const key of ['bytes', 'layout', 'sha256', 'mtimeMs'] as const) {
      if (there[key] !== wanted[input][key]) {
        if (key === 'sha256') return `${input}'s content differs: SHA-256 ${String(there.sha256).slice(0, 16)}… there, ${wanted[input].sha256.slice(0, 16)}… here`;
        const describe = (s: InputStamp): string => (key === 'mtimeMs' ? (Number.isFinite(s.mtimeMs) ? new Date(s.mtimeMs).toISOString() : String(s.mtimeMs)) : String(s[key]));
        const word = key === 'mtimeMs' ? 'was modified' : key === 'bytes' ? 'size' : 'layout';
        return `${input} ${word}: ${describe(there)} there, ${describe(wanted[input])} here`;
      }
    }
  }
  return undefined;
}

/** The fingerprint (and run nonce) a journal file starts with, or undefined when there is no journal. Throws IO_ERROR for a damaged one. */
export async function readJournalFingerprint(outPath: string): Promise<(JobFingerprint & { readonly nonce: string }) | undefined> {
  const path = journalPath(outPath);
  let text: string;
  try {
    text = await readJournalText(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw ioFailure('read', `the journal ${path}`, error);
  }
  return parse(text, path).fingerprint;
}

interface Parsed {
  fingerprint: JobFingerprint & { readonly nonce: string };
  records: Array<{ id: number; checksum: string | undefined; line: number }>;
  /** Bytes of whole lines (a torn last line is not counted). */
  validBytes: number;
}

function parse(text: string, path: string): Parsed {
  const damaged = (why: string): HpairError =>
    new HpairError('IO_ERROR', `the journal ${path} is damaged (${why}); delete it and the partial output beside it to start over`);
  const firstEnd = text.indexOf('\n');
  if (text.startsWith(OLD_MAGIC)) {
    throw new HpairError('IO_ERROR', `the journal ${path} was written by an earlier hpair, without block checksums; delete it and the partial output beside it to start over`);
  }
  if (!text.startsWith(MAGIC) || firstEnd < 0) throw damaged('it does not start with an hpair journal header');
  let fingerprint: JobFingerprint & { nonce: string };
  try {
    fingerprint = JSON.parse(text.slice(MAGIC.length, firstEnd)) as JobFingerprint & { nonce: string };
  } catch {
    throw damaged('its header is not JSON');
  }
  if (typeof fingerprint !== 'object' || fingerprint === null || !Number.isSafeInteger(fingerprint.N) || !Number.isSafeInteger(fingerprint.blockSize)) {
    throw damaged('its header lacks N or blockSize');
  }
  if (typeof fingerprint.nonce !== 'string' || !/^[0-9a-f]{32}$/.test(fingerprint.nonce)) throw damaged('its header lacks the run\'s nonce');
  const records: Parsed['records'] = [];
  let at = firstEnd + 1;
  let line = 2;
  for (;;) {
    const end = text.indexOf('\n', at);
    if (end < 0) break; // a torn last line (or none): ignored
    const match = /^(\d{1,15}) ([0-9a-f]{64}|-)$/.exec(text.slice(at, end));
    if (match === null) throw damaged(`line ${line} is not a block id and its checksum`);
    records.push({ id: Number(match[1]), checksum: match[2] === '-' ? undefined : match[2], line });
    at = end + 1;
    line++;
  }
  return { fingerprint, records, validBytes: Buffer.byteLength(text.slice(0, at), 'utf8') };
}

/**
 * Opens the journal of the output `outPath` (the file `outPath + '.journal'`) for the job `fingerprint`, or
 * creates it (durably, with its directory entry, and a fresh nonce). A journal of another job is refused with
 * INVALID_ARGUMENT naming the first difference; a damaged one with IO_ERROR. `blockCount`, when given, bounds
 * the ids.
 */
export async function openJournal(outPath: string, fingerprint: JobFingerprint, options: { blockCount?: number } = {}): Promise<Journal> {
  const path = journalPath(outPath);
  const done = new Set<number>();
  const checksums = new Map<number, string>();
  let created = false;
  let text: string | undefined;
  for (let attempt = 0; text === undefined; attempt++) {
    try {
      text = await readJournalText(path);
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
  for (const { id, checksum, line } of parsed.records) {
    if (options.blockCount !== undefined && id >= options.blockCount) {
      throw new HpairError('IO_ERROR', `the journal ${path} lists block ${id} (line ${line}) but the job has ${options.blockCount} blocks; delete it and the partial output beside it to start over`);
    }
    applyRecord(done, checksums, id, checksum);
  }
  let file: FileHandle | undefined;
  try {
    // Drop a torn last line, so the next record starts on a line of its own.
    if (parsed.validBytes !== Buffer.byteLength(text, 'utf8')) {
      file = await open(path, constants.O_RDWR | NOFOLLOW);
      await file.truncate(parsed.validBytes);
      await file.sync();
      await file.close();
    }
    // Appends (O_APPEND): each record lands whole at the end even if another process appends too.
    file = await open(path, constants.O_WRONLY | constants.O_APPEND | NOFOLLOW);
  } catch (error) {
    await file?.close().catch(() => undefined);
    throw ioFailure('open', `the journal ${path}`, error);
  }
  const handle = file;
  let queue = Promise.resolve();
  let closed = false;
  let broken: HpairError | undefined;
  const append = (lines: Array<{ id: number; checksum: string | undefined }>): Promise<void> => {
    for (const { id, checksum } of lines) {
      if (!Number.isSafeInteger(id) || id < 0 || (options.blockCount !== undefined && id >= options.blockCount)) {
        return Promise.reject(new HpairError('INVALID_ARGUMENT', `not a block id of this job: ${String(id)}`));
      }
      if (checksum !== undefined && !isChecksum(checksum)) return Promise.reject(new HpairError('INVALID_ARGUMENT', `not a block checksum: ${String(checksum)}`));
    }
    const write = async (): Promise<void> => {
      if (closed) throw new HpairError('INVALID_ARGUMENT', `the journal ${path} is closed`);
      if (broken !== undefined) throw broken;
      if (lines.length === 0) return;
      const text = Buffer.from(lines.map(({ id, checksum }) => `${id} ${checksum ?? '-'}\n`).join(''), 'utf8');
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
      for (const { id, checksum } of lines) applyRecord(done, checksums, id, checksum);
    };
    const result = queue.then(write);
    queue = result.catch(() => undefined);
    return result;
  };
  return {
    path,
    fingerprint: parsed.fingerprint,
    nonce: parsed.fingerprint.nonce,
    done,
    checksums,
    created,
    record(blocks) {
      const list = isRecord(blocks) ? [blocks] : [...(blocks as Iterable<BlockRecord>)];
      return append(list.map((block) => ({ id: block?.id, checksum: typeof block?.checksum === 'string' ? block.checksum : '' })));
    },
    withdraw(ids) {
      return append([...ids].map((id) => ({ id, checksum: undefined })));
    },
    async close() {
      if (closed) return;
      await queue;
      closed = true;
      await handle.close();
    },
  };
}

/** O_NOFOLLOW where the platform has it: a journal that is a symbolic link (planted, or left by someone) is refused (ELOOP). */
const NOFOLLOW = constants.O_NOFOLLOW ?? 0;

/**
 * A journal's text, read without following a symbolic link at its path, and without waiting on a FIFO there
 * (O_NONBLOCK: an open for reading would otherwise wait for a writer for ever); only a regular file is read.
 */
async function readJournalText(path: string): Promise<string> {
  const file = await open(path, constants.O_RDONLY | NOFOLLOW | constants.O_NONBLOCK).catch((error: NodeJS.ErrnoException) => {
    if (error.code !== 'ELOOP') throw error;
    throw new HpairError('IO_ERROR', `the journal ${path} is a symbolic link; hpair does not follow it (delete it and the partial output beside it to start over)`, { cause: error });
  });
  try {
    const stats = await file.stat();
    if (!stats.isFile()) {
      throw new HpairError('IO_ERROR', `the journal ${path} is ${kindOf(stats)}; hpair never writes through or replaces a file it did not create that is not a regular file; remove it and run again`);
    }
    return await file.readFile('utf8');
  } finally {
    await file.close();
  }
}

function isRecord(value: unknown): value is BlockRecord {
  return typeof value === 'object' && value !== null && 'id' in value;
}

/** Writes a new journal (header only, with a fresh nonce) durably; false when another process created one first. */
async function createJournal(path: string, fingerprint: JobFingerprint): Promise<boolean> {
  const temp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  let file: FileHandle | undefined;
  try {
    file = await open(temp, 'wx', 0o644);
    await file.write(`${MAGIC}${encode(fingerprint, newNonce())}\n`, 0, 'utf8');
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

/** One journal record: a block done with its checksum, or (no checksum) withdrawn; a later record of a block wins. */
function applyRecord(done: Set<number>, checksums: Map<number, string>, id: number, checksum: string | undefined): void {
  if (checksum === undefined) {
    done.delete(id);
    checksums.delete(id);
  } else {
    done.add(id);
    checksums.set(id, checksum);
  }
}
