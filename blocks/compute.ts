import { access, constants, lstat, rename, stat, unlink } from 'node:fs/promises';
import { totalmem } from 'node:os';
import { basename, dirname, resolve } from 'node:path';
import { hermitianFlops } from '../kernel/hermitian-size.js';
import { checkHermitianShape, firstNonFinite } from '../kernel/hermitian-inputs.js';
import type { HermitianResult } from '../kernel/hermitian-result.js';
import { summationStamp, type Accuracy, type KernelVariant } from '../kernel/kernel-names.js';
import { createSharedFloat64, type ComplexMatrix } from '../shared/complex-matrix.js';
import { HpairAbortError, HpairError } from '../shared/errors.js';
import { openNpyInput, readNpyVector, type NpyInput } from '../io/npy-file.js';
import { createNpyOutput, ioFailure, kindOf, openNpyOutput, refuseSpecialFile, syncDirectory, type NpyOutput } from '../io/npy-output.js';
import { complexNpyHeader } from '../io/npy.js';
import type { Pool } from '../workers/pool.js';
import { jobFingerprint, journalPath, openJournal, readJournalFingerprint, type Journal } from './journal.js';
import { blockChecksum, describeBlocks, digestFile, manifestOf, manifestPath, mismatchedBlocks, writeManifest } from './integrity.js';
import { checkSpace, lockOutput, lockPath, type OutputLock } from './output-guard.js';
import { blockPairs, chooseJobShape, jobMemory, kernelTile, planBlocks, READ_STAGE_BYTES, type Block, type BlockMemory, type JobShape } from './plan.js';

/** What computeToNpy needs of a pool. */
export type BlockPool = Pick<Pool, 'kernel' | 'size' | 'hermitianBlock'> & Partial<Pick<Pool, 'accuracy'>>;

export interface ComputeToNpyOptions {
  /** Path of expp's `.npy` (N×M complex128, complex64 or float64; any byte order, C or Fortran order). */
  expp: string;
  /** Path of distance's `.npy` (length M, float64 or float32). */
  distance: string;
  /** Path of H's `.npy`, written as `out + '.partial'` and renamed onto `out` once every block is in. */
  out: string;
  /**
   * Memory budget in bytes for the blocks' buffers, the rows they read and the kernel's scratch (Node's own
   * baseline comes on top); the block size, and how many blocks one pool job computes, are chosen to fit it
   * (chooseJobShape).
   * @default os.totalmem() / 2
   */
  maxMemory?: number;
  /** Block edge; overrides maxMemory's choice. When resuming, the journal's block size is kept unless this says otherwise. */
  blockSize?: number;
  /**
   * Stops the job: the block being computed is abandoned (never journaled), blocks already written are
   * synced and journaled, and the promise rejects with ABORTED. The partial output and the journal stay, to resume.
   */
  signal?: AbortSignal;
  /** Called as blocks start, progress and finish (often: throttle any drawing). */
  onProgress?: (progress: OutOfCoreProgress) => void;
  /** @internal How the three files are named in messages (the CLI passes its flags). */
  names?: { expp?: string; distance?: string; out?: string };
  /** @internal Longest wait between syncs of the output and the journal (the journal lags by at most this). */
  commitIntervalMs?: number;
  /** @internal How often the output's lock is refreshed (LOCK_HEARTBEAT_MS unless a test says otherwise). */
  lockHeartbeatMs?: number;
  /** @internal Tests inject failures: called before a block is written; a throw fails that write. */
  beforeWrite?: (block: Block) => void | Promise<void>;
}

export interface OutOfCoreProgress {
  /** Blocks in the plan. */
  readonly blocks: number;
  /** Blocks in the output: found in the journal, or computed and written by this run. */
  readonly blocksDone: number;
  /** Blocks found in the journal when the run started (not computed again). */
  readonly blocksSkipped: number;
  /** Lower-triangle entries of H (n(n+1)/2), and how many are in (fractional while a block computes). */
  readonly pairs: number;
  readonly pairsDone: number;
  readonly pairsSkipped: number;
  /** Since computeToNpy was called. */
  readonly elapsedMs: number;
}

export interface OutOfCoreSummary {
  readonly out: string;
  readonly N: number;
  readonly M: number;
  /** H is n×n, n = N − 1. */
  readonly n: number;
  readonly blockSize: number;
  /** Blocks of one row of blocks computed by one pool job, side by side (see chooseJobShape). */
  readonly group: number;
  /** Whether each job's rows were read while the previous job computed. */
  readonly prefetch: boolean;
  readonly blocks: number;
  /** Blocks computed by this run. */
  readonly computed: number;
  /** Blocks the journal already held. */
  readonly skipped: number;
  /**
   * Blocks whose bytes in the partial output did not match the checksum recorded when they were computed (the
   * file or its journal was changed since), found by the re-read before publishing and computed again.
   */
  readonly recomputed: readonly number[];
  readonly kernel: KernelVariant;
  /** How the entries were summed (the pool's `accuracy`). */
  readonly accuracy: Accuracy;
  readonly workers: number;
  /** The budget the block size was chosen for, and what one job takes by part. */
  readonly maxMemory: number;
  readonly memory: BlockMemory;
  /** Wall time of the whole run: reading, computing, writing, syncing. */
  readonly seconds: number;
  /** Useful flops of the computed blocks per second of the run. */
  readonly gflops: number;
  /** H's file: header + 16·n² bytes. */
  readonly outBytes: number;
}

/** The temporary output beside `out`, filled block by block and renamed onto `out` at the end. */
export function partialPath(out: string): string {
  return `${out}.partial`;
}

const DEFAULT_COMMIT_MS = 250;

function abortError(signal: AbortSignal, message: string): HpairAbortError {
  return new HpairAbortError(message, signal.reason);
}

function checkPath(value: unknown, name: string): string {
  if (typeof value !== 'string' || value === '') throw new HpairError('INVALID_ARGUMENT', `${name} must be a file path, got ${JSON.stringify(value)}`);
  return value;
}

/**
 * Computes H from two `.npy` files into a third without ever holding H, or expp, whole: H's lower triangle is
 * cut into blocks (planBlocks) as large as `maxMemory` allows (chooseJobShape); for each block only the rows
 * it needs are read (positioned reads), the block is computed on the pool (hermitianBlock, bit-identical to the
 * whole H's entries), written with its mirror at its offsets in a preallocated sparse `.npy`, and recorded in
 * a journal once durable. A run that stops (signal, crash, full disk) leaves `out.partial` and `out.journal`;
 * the same call again skips the journaled blocks. `out` appears, by a rename, only when every block is in.
 * While one block computes, the previous one is written and the next one's rows are read.
 */
export async function computeToNpy(pool: BlockPool, options: ComputeToNpyOptions): Promise<OutOfCoreSummary> {
  const started = performance.now();
  if (typeof options !== 'object' || options === null) throw new HpairError('INVALID_ARGUMENT', 'computeToNpy needs { expp, distance, out }');
  const names = { expp: 'expp', distance: 'distance', out: 'out', ...options.names };
  const exppPath = checkPath(options.expp, names.expp);
  const distancePath = checkPath(options.distance, names.distance);
  const outPath = checkPath(options.out, names.out);
  const { signal, onProgress, beforeWrite } = options;
  const commitMs = options.commitIntervalMs ?? DEFAULT_COMMIT_MS;
  if (options.maxMemory !== undefined && !(typeof options.maxMemory === 'number' && options.maxMemory > 0)) {
    throw new HpairError('INVALID_ARGUMENT', `maxMemory must be a positive number of bytes, got ${String(options.maxMemory)}`);
  }
  if (options.blockSize !== undefined && !(Number.isSafeInteger(options.blockSize) && options.blockSize >= 1)) {
    throw new HpairError('INVALID_ARGUMENT', `blockSize must be a positive integer, got ${String(options.blockSize)}`);
  }
  if (signal?.aborted === true) throw abortError(signal, 'the out-of-core job was aborted before it started');
  const partial = partialPath(outPath);
  await checkOutput(outPath, [exppPath, distancePath], names.out);
  // H replaces `out` with `out`'s permission bits, as the in-memory CLI does; a new `out` gets the umask's.
  const mode = await stat(outPath).then((s) => (s.isFile() ? s.mode & 0o7777 : undefined), () => undefined);
  const fileOptions = { name: `${names.out} (partial)`, ...(mode === undefined ? {} : { mode }) };

  const input = await openNpyInput(exppPath, { name: names.expp, chunkBytes: READ_STAGE_BYTES });
  let lock: OutputLock | undefined;
  let output: NpyOutput | undefined;
  let journal: Journal | undefined;
  try {
    const N = input.rows;
    const M = input.cols;
    if (N < 1) throw new HpairError('EMPTY_INPUT', `${names.expp} ${exppPath} has no rows; it needs at least one (row N−1 is the reference row)`);
    const distance = await readNpyVector(distancePath, {
      name: names.distance,
      expectedLength: M,
      expectedBecause: `${names.expp} ${exppPath} has M = ${M} columns`,
    });
    checkHermitianShape(N, M, distance);
    const n = N - 1;
    const kernel = pool.kernel;
    const stamp = summationStamp(kernel, pool.accuracy ?? 'default');
    const threads = pool.size;
    const maxMemory = options.maxMemory ?? totalmem() / 2;
    const cost = { kernel, threads, accuracy: pool.accuracy ?? 'default' };

    // A run that resumes keeps the journal's block size (a different --workers may otherwise choose another),
    // as long as it fits the budget.
    const tile = kernelTile(kernel);
    let resumed: JobShape | undefined;
    if (options.blockSize === undefined) {
      const previous = await readJournalFingerprint(outPath).catch(() => undefined);
      if (previous !== undefined && previous.N === N && previous.M === M && previous.kernel === stamp) {
        try {
          resumed = chooseJobShape(N, M, maxMemory, tile, { ...cost, blockSize: previous.blockSize });
        } catch {
          // It does not fit this budget: choose afresh (and the journal, of another block size, is refused).
        }
      }
    }
    const shape = resumed ?? chooseJobShape(N, M, maxMemory, tile, { ...cost, blockSize: options.blockSize });
    const { blockSize } = shape;
    const plan = planBlocks(n, blockSize);
    const fingerprint = await jobFingerprint({ expp: input, distance: distancePath, blockSize, kernel: stamp, names });
    const header = complexNpyHeader([n, n]);
    const outBytes = header.length + 16 * n * n;

    // Room for H first (a full disk is named as such), then one run at a time from here: another would race
    // this one's journal, partial output and final rename.
    await checkSpace(outPath, outBytes, partial, names.out);
    lock = await lockOutput(outPath, names.out, options.lockHeartbeatMs === undefined ? {} : { heartbeatMs: options.lockHeartbeatMs });
    // The journal and the partial output: resume them, or start both afresh.
    const hadJournal = (await readJournalFingerprint(outPath)) !== undefined;
    if (hadJournal) {
      journal = await openJournal(outPath, fingerprint, { blockCount: plan.blocks.length });
      try {
        output = await openNpyOutput(partial, n, fileOptions);
      } catch (error) {
        if ((error as { cause?: NodeJS.ErrnoException }).cause?.code !== 'ENOENT') throw error;
        // No partial output: either the last run finished but stopped before removing the journal, or the
        // partial output was deleted, which makes the journal meaningless.
        if (
          journal.done.size === plan.blocks.length &&
          (await isComplete(outPath, outBytes, header)) &&
          (await mismatchedBlocks(outPath, n, header.length, plan.blocks, journal.checksums, `${names.out} ${outPath}`).catch(() => [-1])).length === 0
        ) {
          await journal.close();
          journal = undefined;
          await unlink(journalPath(outPath));
          await syncDirectory(dirname(resolve(outPath)));
          return summary(0, plan.blocks.length);
        }
        await journal.close();
        journal = undefined;
        await unlink(journalPath(outPath));
      }
    }
    if (journal === undefined || output === undefined) {
      await checkSpace(outPath, outBytes, undefined, names.out);
      // A partial output without a journal is an abandoned start: replaced (never written through), and only
      // when it is a regular file.
      await refuseSpecialFile(partial, `${names.out} (partial) ${partial}`);
      await unlink(partial).catch((error: NodeJS.ErrnoException) => (error.code === 'ENOENT' ? undefined : Promise.reject(ioFailure('replace', `${names.out} (partial) ${partial}`, error))));
      output = await createNpyOutput(partial, n, fileOptions);
      journal = await openJournal(outPath, fingerprint, { blockCount: plan.blocks.length });
    } else {
      await checkSpace(outPath, outBytes, partial, names.out);
    }
    const done = journal.done;
    const skipped = plan.blocks.filter((block) => done.has(block.id)).length;
    const todo = plan.blocks.filter((block) => !done.has(block.id));
    const context = { pool, input, distance, output, journal, plan, todo, shape, kernel, signal, onProgress, beforeWrite, commitMs, started, names, outPath, skipped };
    const computed = await computeBlocks(context);

    const written = output.identity;
    // The partial output's name must still hold the file this run wrote, for the re-read as for the rename:
    // a link or another file put in its place is neither read nor published.
    const replaced = (now: string): HpairError =>
      new HpairError('IO_ERROR', `cannot finish ${names.out} ${outPath}: ${partial} was replaced while the run wrote it (it is now ${now}); nothing was published`);
    const expect = { dev: written.dev, ino: written.ino, replaced };
    // Before `out` appears: every block re-read against the checksum taken as it was computed. A block that
    // differs (the partial output or its journal changed since) is computed again, once.
    await output.sync();
    const what = `${names.out} (partial) ${partial}`;
    let recomputed: number[] = [];
    for (let round = 0; ; round++) {
      const bad = await mismatchedBlocks(partial, n, header.length, plan.blocks, journal.checksums, what, expect);
      if (bad.length === 0) break;
      if (round > 0) throw new HpairError('IO_ERROR', `${what}: ${describeBlocks(bad, plan.blocks)} still differ from their checksums after being computed again; is the disk failing?`);
      recomputed = bad;
      await journal.withdraw(bad);
      const again = new Set(bad);
      const redone = await computeBlocks({ ...context, todo: plan.blocks.filter((block) => again.has(block.id)), skipped: plan.blocks.length - bad.length });
      computed.blocks += redone.blocks;
      computed.pairs += redone.pairs;
      await output.sync();
    }
    // And the inputs are still those the journal names (one changed mid-run gave blocks of two problems).
    for (const key of ['expp', 'distance'] as const) {
      const path = key === 'expp' ? exppPath : distancePath;
      if ((await digestFile(path, names[key])) !== journal.fingerprint[key].sha256) {
        throw new HpairError('IO_ERROR', `${names[key]} ${path} changed while H was computed from it; delete ${partial} and ${journal.path} to start over`);
      }
    }

    // Every block is in: the manifest, then the partial output becomes `out`, then the journal goes.
    await output.close();
    output = undefined;
    const missing = plan.blocks.length - journal.done.size;
    if (missing !== 0) throw new HpairError('IO_ERROR', `internal: ${missing} blocks are not journaled`);
    // The rename publishes whatever the name holds now: it must still be the file this run wrote (not a link
    // or another file put in its place), and this run must still hold the lock (not taken over as stale).
    await lock.assertHeld();
    const now = await lstat(partial).catch((error: NodeJS.ErrnoException) => Promise.reject(error.code === 'ENOENT' ? replaced('gone') : ioFailure('finish', `${names.out} (partial) ${partial}`, error)));
    if (!now.isFile() || now.dev !== written.dev || now.ino !== written.ino) throw replaced(now.isFile() ? 'another file' : kindOf(now));
    await writeManifest(outPath, manifestOf({ n, blockSize, kernel, paths: { expp: exppPath, distance: distancePath }, stamps: journal.fingerprint, blocks: plan.blocks, checksums: journal.checksums }), [exppPath, distancePath]);
    try {
      await rename(partial, outPath);
      await syncDirectory(dirname(resolve(outPath)));
      await journal.close();
      journal = undefined;
      await unlink(journalPath(outPath));
      await syncDirectory(dirname(resolve(outPath)));
    } catch (error) {
      throw ioFailure('finish', `${names.out} ${outPath}`, error);
    }
    return summary(computed.blocks, skipped, computed.pairs, recomputed);

    function summary(computedBlocks: number, skippedBlocks: number, computedPairs = 0, recomputedBlocks: readonly number[] = []): OutOfCoreSummary {
      const seconds = (performance.now() - started) / 1000;
      const allPairs = (n * (n + 1)) / 2;
      const flops = allPairs === 0 ? 0 : (hermitianFlops(N, M) * computedPairs) / allPairs;
      return {
        out: outPath,
        N,
        M,
        n,
        blockSize: plan.blockSize,
        group: shape.group,
        prefetch: shape.prefetch,
        blocks: plan.blocks.length,
        computed: computedBlocks,
        skipped: skippedBlocks,
        recomputed: recomputedBlocks,
        kernel,
        accuracy: cost.accuracy,
        workers: threads,
        maxMemory,
        memory: jobMemory(N, M, shape, cost),
        seconds,
        gflops: flops / Math.max(seconds, 1e-9) / 1e9,
        outBytes,
      };
    }
  } finally {
    await output?.close().catch(() => undefined);
    await journal?.close().catch(() => undefined);
    await input.close().catch(() => undefined);
    await lock?.release();
  }
}

interface RunContext {
  readonly pool: BlockPool;
  readonly input: NpyInput;
  readonly distance: Float64Array;
  readonly output: NpyOutput;
  readonly journal: Journal;
  readonly plan: ReturnType<typeof planBlocks>;
  readonly todo: readonly Block[];
  readonly shape: JobShape;
  readonly kernel: KernelVariant;
  readonly signal: AbortSignal | undefined;
  readonly onProgress: ((progress: OutOfCoreProgress) => void) | undefined;
  readonly beforeWrite: ((block: Block) => void | Promise<void>) | undefined;
  readonly commitMs: number;
  readonly started: number;
  readonly names: { expp: string; distance: string; out: string };
  readonly outPath: string;
  readonly skipped: number;
}

/** One pool job: blocks of one row of blocks, side by side (columns [c0, c1)), computed as one rectangle. */
interface Job {
  readonly blocks: readonly Block[];
  readonly rows: readonly [number, number];
  readonly cols: readonly [number, number];
  readonly pairs: number;
}

/** The blocks still to do as jobs of at most `group` neighbouring blocks of the same row of blocks. */
function jobsOf(todo: readonly Block[], group: number): Job[] {
  const jobs: Job[] = [];
  let current: { blocks: Block[]; rows: readonly [number, number]; cols: [number, number]; pairs: number } | undefined;
  for (const block of todo) {
    if (current !== undefined && current.blocks.length < group && current.rows[0] === block.rows[0] && current.cols[1] === block.cols[0]) {
      current.blocks.push(block);
      current.cols[1] = block.cols[1];
      current.pairs += blockPairs(block);
    } else {
      current = { blocks: [block], rows: block.rows, cols: [block.cols[0], block.cols[1]], pairs: blockPairs(block) };
      jobs.push(current);
    }
  }
  return jobs;
}

/** A job's rows as its pool job sees them: a window of one of the row buffers. */
interface LoadedRows {
  /** First row of the window in the buffer, and its row count (the last is the reference row). */
  readonly start: number;
  readonly rows: number;
  /** The job's rectangle within the window's own (rows − 1)×(rows − 1) H. */
  readonly request: { rows: [number, number]; cols: [number, number] };
  /** Which rows of expp the window holds, in order: [first row, count]. */
  readonly sources: ReadonlyArray<readonly [number, number]>;
}

interface RowBuffer {
  data: Float64Array | undefined;
  /** First row of the row of blocks whose rows the buffer holds (−1: none). */
  I: number;
  ref: boolean;
}

/**
 * The pipeline: while job k computes on the workers, job k − 1's blocks are written (and, every commitMs,
 * synced and journaled) and, with read-ahead, job k + 1's rows are read. Two H buffers, and two row buffers
 * with read-ahead (one without), take turns; a buffer is written to only once the pool job that read it is over.
 */
async function computeBlocks(ctx: RunContext): Promise<{ blocks: number; pairs: number }> {
  const { pool, input, distance, output, journal, plan, todo, shape, kernel, signal, beforeWrite, commitMs, started } = ctx;
  const { n, blockSize } = plan;
  const M = input.cols;
  const allPairs = (n * (n + 1)) / 2;
  const skippedPairs = plan.blocks.reduce((sum, block) => sum + (journal.done.has(block.id) ? blockPairs(block) : 0), 0);
  let doneBlocks = ctx.skipped;
  let donePairs = skippedPairs;
  let callbackFailed = false;
  const report = (inJob = 0): void => {
    if (ctx.onProgress === undefined || callbackFailed) return;
    try {
      ctx.onProgress({
        blocks: plan.blocks.length,
        blocksDone: doneBlocks,
        blocksSkipped: ctx.skipped,
        pairs: allPairs,
        pairsDone: donePairs + inJob,
        pairsSkipped: skippedPairs,
        elapsedMs: performance.now() - started,
      });
    } catch (error) {
      callbackFailed = true;
      process.emitWarning(`onProgress threw ${(error as Error)?.message ?? String(error)}; the job goes on without progress calls`, { type: 'HpairWarning', code: 'HPAIR_PROGRESS_THREW' });
    }
  };
  report();
  if (todo.length === 0) return { blocks: 0, pairs: 0 };

  const jobs = jobsOf(todo, shape.group);
  const b = Math.min(blockSize, n);
  const width = Math.min(shape.group * b, n);
  const R = Math.min(b + width, n) + 1;
  const ref = createSharedFloat64(2 * M);
  await input.readRows(n, n + 1, ref, 0);
  const rowBuffers: RowBuffer[] = [
    { data: undefined, I: -1, ref: false },
    { data: undefined, I: -1, ref: false },
  ];
  const hBuffers: Array<Float64Array | undefined> = [undefined, undefined];
  const rowBuffer = (k: number): RowBuffer & { data: Float64Array } => {
    const buffer = rowBuffers[shape.prefetch ? k % 2 : 0];
    buffer.data ??= createSharedFloat64(2 * R * M);
    return buffer as RowBuffer & { data: Float64Array };
  };
  const hBuffer = (k: number): Float64Array => (hBuffers[k % 2] ??= createSharedFloat64(2 * b * width));

  /**
   * Reads what `job` needs into `buffer`: its rows (unless the buffer holds them already), the rows of its
   * columns left of the diagonal, and the reference row, laid out … columns' rows | rows | reference row.
   * Rows keep their order in expp, so every entry is computed exactly as in the whole H.
   */
  const load = async (job: Job, buffer: RowBuffer & { data: Float64Array }): Promise<LoadedRows> => {
    const [i0, i1] = job.rows;
    const [c0, c1] = job.cols;
    const bi = i1 - i0;
    const left = Math.min(c1, i0) - c0; // columns left of the job's rows; the rest (if any) is the diagonal block
    const iAt = R - 1 - bi;
    if (!buffer.ref) {
      buffer.data.set(ref, 2 * (R - 1) * M);
      buffer.ref = true;
    }
    if (buffer.I !== i0) {
      buffer.I = -1;
      await input.readRows(i0, i1, buffer.data, iAt);
      buffer.I = i0;
    }
    if (left > 0) await input.readRows(c0, c0 + left, buffer.data, iAt - left);
    const sources: Array<readonly [number, number]> = left > 0 ? [[c0, left]] : [];
    sources.push([i0, bi], [n, 1]);
    return { start: iAt - left, rows: left + bi + 1, request: { rows: [left, left + bi], cols: [0, c1 - c0] }, sources };
  };

  const stop = new AbortController();
  const onAbort = (): void => stop.abort(signal?.reason);
  signal?.addEventListener('abort', onAbort, { once: true });
  if (signal?.aborted === true) onAbort(); // aborted while the files were being opened
  let failure: unknown;
  const guard = <T>(promise: Promise<T>): Promise<T> => {
    promise.catch((error: unknown) => {
      failure ??= error;
      stop.abort(error);
    });
    return promise;
  };

  let pending: Array<{ id: number; checksum: string }> = [];
  let lastCommit = performance.now();
  const commit = async (): Promise<void> => {
    if (pending.length === 0) return;
    const ids = pending;
    pending = [];
    await output.sync(); // the blocks' bytes are durable before their ids are
    await journal.record(ids);
    lastCommit = performance.now();
  };
  let computedBlocks = 0;
  let computedPairs = 0;
  const write = async (job: Job, h: ComplexMatrix): Promise<void> => {
    try {
      for (const block of job.blocks) await beforeWrite?.(block);
    } catch (error) {
      throw ioFailure('write', `${ctx.names.out} (partial) ${output.path}`, error);
    }
    // One write per row across the job's blocks; mirrors for the blocks left of the diagonal.
    await output.writeRectangle({ rows: job.rows, cols: job.cols }, h, [job.cols[0], Math.min(job.cols[1], job.rows[0])]);
    // Each block's checksum from the values computed: the re-read before publishing compares the file with it.
    for (const block of job.blocks) pending.push({ id: block.id, checksum: blockChecksum(block, h.data, h.cols, block.cols[0] - job.cols[0]) });
    computedBlocks += job.blocks.length;
    computedPairs += job.pairs;
    doneBlocks += job.blocks.length;
    donePairs += job.pairs;
    report();
    if (performance.now() - lastCommit >= commitMs) await commit();
  };

  let writing: Promise<void> = Promise.resolve();
  let next: Promise<LoadedRows> | undefined = guard(load(jobs[0], rowBuffer(0)));
  try {
    for (let k = 0; k < jobs.length; k++) {
      const job = jobs[k];
      const rows = await (next ?? guard(load(job, rowBuffer(k))));
      next = undefined;
      if (stop.signal.aborted) throw stop.signal.reason;
      const data = rowBuffer(k).data.subarray(2 * rows.start * M, 2 * (rows.start + rows.rows) * M);
      const bi = job.rows[1] - job.rows[0];
      const bc = job.cols[1] - job.cols[0];
      const out: ComplexMatrix = { rows: bi, cols: bc, data: hBuffer(k).subarray(0, 2 * bi * bc) };
      const computing = pool.hermitianBlock({ rows: rows.rows, cols: M, data }, distance, rows.request, {
        out,
        signal: stop.signal,
        onProgress: (tiles, total) => report(total > 0 ? (job.pairs * tiles) / total : 0),
      });
      if (shape.prefetch && k + 1 < jobs.length) next = guard(load(jobs[k + 1], rowBuffer(k + 1)));
      let result: HermitianResult;
      try {
        result = await computing;
      } catch (error) {
        throw error instanceof HpairError && error.code === 'NON_FINITE' ? nonFiniteIn(data, M, rows, ctx.names.expp) : error;
      }
      if (result.kernel !== kernel) {
        throw new HpairError('TOO_LARGE', `a job of ${rows.rows} rows at M = ${M} does not fit the ${kernel} kernel's memory (it fell back to ${result.kernel}); choose a smaller block size or memory budget`);
      }
      await writing; // job k − 1 is written: its H buffer is free for job k + 1
      writing = guard(write(job, out));
    }
    await writing;
    await commit();
    return { blocks: computedBlocks, pairs: computedPairs };
  } catch (error) {
    stop.abort(error);
    await writing.catch(() => undefined);
    await next?.catch(() => undefined);
    // Blocks written in full are made durable and journaled; the job being computed is abandoned.
    try {
      await commit();
    } catch (commitError) {
      failure ??= commitError;
    }
    const where = `${journal.done.size} of ${plan.blocks.length} blocks are in ${journal.path}`;
    if (failure === undefined && signal?.aborted === true) {
      throw abortError(signal, `interrupted: ${where}; run the same command again to resume`);
    }
    const primary = failure ?? error;
    if (primary instanceof HpairError) {
      const resumable = primary.code === 'IO_ERROR' || primary.code === 'WORKER_CRASHED' || primary.code === 'WORKER_UNRESPONSIVE' || primary.code === 'POOL_CLOSED';
      const note = resumable ? `; ${where}; run the same command again to resume` : `; ${where}`;
      throw primary.code === 'ABORTED' ? primary : new HpairError(primary.code, `${primary.message}${note}`, { cause: primary });
    }
    throw primary;
  } finally {
    signal?.removeEventListener('abort', onAbort);
  }
}

/** NON_FINITE named by expp's own row (the job saw a window of gathered rows). */
function nonFiniteIn(data: Float64Array, M: number, rows: LoadedRows, name: string): HpairError {
  const flat = firstNonFinite(data, 0, data.length);
  let row = Math.floor(flat / (2 * M));
  let original = row;
  for (const [first, count] of rows.sources) {
    if (row < count) {
      original = first + row;
      break;
    }
    row -= count;
  }
  const col = Math.floor(flat / 2) % M;
  const part = flat % 2 === 0 ? 'real' : 'imaginary';
  return new HpairError('NON_FINITE', `${name}[${original}, ${col}] has a non-finite ${part} part (${String(data[flat])}); every value must be finite`);
}

/**
 * Before anything is computed: the output's directory exists and is writable, `out` is not a directory, and
 * it, its partial output, journal, lock and manifest are regular files when they exist, and neither `out` nor
 * its partial output or journal is one of the inputs (same file, by device and inode).
 */
async function checkOutput(out: string, inputs: readonly string[], name: string): Promise<void> {
  const dir = dirname(resolve(out));
  let stats;
  try {
    stats = await stat(dir);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new HpairError('IO_ERROR', `cannot write ${name} ${out}: ${code === 'ENOENT' ? `the directory ${dir} does not exist` : `cannot reach ${dir} (${code})`}`, { cause: error });
  }
  if (!stats.isDirectory()) throw new HpairError('IO_ERROR', `cannot write ${name} ${out}: ${dir} is not a directory`);
  try {
    await access(dir, constants.W_OK);
  } catch (error) {
    throw new HpairError('IO_ERROR', `cannot write ${name} ${out}: the directory ${dir} is not writable (${(error as NodeJS.ErrnoException).code})`, { cause: error });
  }
  const existing = await stat(out).catch(() => undefined);
  if (existing?.isDirectory() === true) throw new HpairError('IO_ERROR', `cannot write ${name} ${out}: it is a directory`);
  // `out` is replaced by a rename, which would replace a link or a FIFO there rather than write through it:
  // refused, so that a caller who meant the link's target says so (the CLI resolves --out through links).
  await refuseSpecialFile(out, `${name} ${out}`);
  // The files beside `out` are this run's own: a symlink, FIFO or device found at one of their names was put
  // there by someone else, and is refused before anything is written.
  await refuseSpecialFile(partialPath(out), `${name} (partial) ${partialPath(out)}`);
  await refuseSpecialFile(journalPath(out), `${name} (journal) ${journalPath(out)}`);
  await refuseSpecialFile(lockPath(out), `${name} (lock) ${lockPath(out)}`);
  // The manifest is replaced by a rename when H is published: a link or FIFO there is not the run's either.
  await refuseSpecialFile(manifestPath(out), `${name} (manifest) ${manifestPath(out)}`);
  const inputStats = await Promise.all(inputs.map((path) => stat(path).catch(() => undefined)));
  for (const candidate of [out, partialPath(out), journalPath(out)]) {
    const target = await stat(candidate).catch(() => undefined);
    if (target === undefined) continue;
    if (inputStats.some((s) => s !== undefined && s.dev === target.dev && s.ino === target.ino)) {
      throw new HpairError('INVALID_ARGUMENT', `${name} ${out} ${candidate === out ? 'is' : `(${basename(candidate)}) would overwrite`} one of the inputs; refusing to overwrite it`);
    }
  }
}

/** Whether `path` is a finished output of this size (after a run that stopped before removing its journal). */
async function isComplete(path: string, outBytes: number, header: Uint8Array): Promise<boolean> {
  try {
    const stats = await stat(path);
    if (stats.size !== outBytes) return false;
    const input = await openNpyOutput(path, Math.round(Math.sqrt((outBytes - header.length) / 16)));
    await input.close();
    return true;
  } catch {
    return false;
  }
}
