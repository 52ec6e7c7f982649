// The submitting side of a distributed run: plan the blocks, preallocate the output on the shared storage,
// put one job per block in the queue, journal each block once its worker has made it durable, rename the
// output into place when every block is in. The journal (not Redis) is the record of what is done: Redis is
// only the dispatcher, so a Redis that restarts empty, or a submitter that is stopped, loses no finished block.
import { lstat, rename, stat, unlink } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import {
  checkSpace,
  journalPath,
  lockOutput,
  openJournal,
  partialPath,
  planBlocks,
  readJournalFingerprint,
  type Block,
  type InputStamp,
  type JobFingerprint,
  type Journal,
} from '../blocks/index.js';
import { describeBlocks, digestFile, isChecksum, manifestOf, manifestPath, mismatchedBlocks, writeManifest } from '../blocks/integrity.js';
import { exppStamp } from '../blocks/journal.js';
import { checkHermitianShape } from '../kernel/hermitian-inputs.js';
import { summationStamp, type Accuracy, type KernelChoice, type KernelVariant } from '../kernel/kernel-names.js';
import { resolveKernel } from '../kernel/variants.js';
import { checkAccuracy } from '../kernel/hermitian-engine.js';
import { HpairAbortError, HpairError, type HpairErrorCode } from '../shared/errors.js';
import { complexNpyHeader } from '../io/npy.js';
import { openNpyInput, readNpyVector } from '../io/npy-file.js';
import { createNpyOutput, ioFailure, kindOf, openNpyOutput, refuseSpecialFile, syncDirectory } from '../io/npy-output.js';
import { chooseClusterBlockSize, type ClusterBlockSize } from './block-size.js';
import { BLOCK_JOB, blockFlops, DEFAULT_QUEUE, jobId, JOB_DATA_VERSION, outputKey, parseJobId, RATES_KEY, refusedKey, runId, type BlockJobData, type BlockJobResult } from './jobs.js';
import { loadQueueModules, type RedisClient } from './load.js';
import { checkRedis, connectRedis, parseRedisUrl } from './redis.js';

/** Attempts per block (a failure, not a stall: stalls are counted by the workers' maxStalledCount). */
export const DEFAULT_ATTEMPTS = 5;
/** First retry after this long, then doubling (ms). */
export const DEFAULT_BACKOFF_MS = 2_000;
/** How long submit waits for a lost Redis to come back before it stops (the journal keeps what is done) (ms). */
export const DEFAULT_REDIS_TIMEOUT_MS = 120_000;
/** Finished jobs a submitter never collects (it was stopped for good) leave Redis after this long (s). */
const KEEP_FINISHED_S = 7 * 24 * 3600;

export interface SubmitOptions {
  /** A redis:// URL, or an ioredis client of yours made with `maxRetriesPerRequest: null` (it is left open). */
  connection: string | object;
  /** @default 'hpair' */
  queue?: string;
  /** Paths on storage every worker sees at the same path: expp (N×M), distance (M), and H's output. */
  expp: string;
  distance: string;
  out: string;
  /** Block edge; by default chosen from the queue's overhead per block (see chooseClusterBlockSize). */
  blockSize?: number;
  /** Each worker's memory budget for a block, for the automatic block size. @default 1 GiB */
  workerMemory?: number;
  /** The kernel every block runs on ('auto': the fastest this machine runs, as `hpair compute` would). @default 'auto' */
  kernel?: KernelChoice;
  /** Every block's accuracy (PoolOptions.accuracy); a run of one never resumes the journal of the other. @default 'default' */
  accuracy?: Accuracy;
  /** @default 5 */
  attempts?: number;
  /** @default 2000 */
  backoffMs?: number;
  /** Stops the submission: its waiting jobs are removed, the journal keeps what finished; rejects with ABORTED. */
  signal?: AbortSignal;
  /** Called on every poll (4 a second) with the run's state. */
  onProgress?: (progress: ClusterProgress) => void;
  /** For a URL connection: give up on the first connection after this long (IO_ERROR). @default 5000 */
  connectTimeoutMs?: number;
  /** Give up when Redis stays unreachable this long mid-run (IO_ERROR; re-run to resume). @default 120000 */
  redisTimeoutMs?: number;
  /** @internal Poll period (ms). */
  pollMs?: number;
}

export interface ClusterProgress {
  readonly blocks: number;
  /** Journaled blocks (durable in the output), including those found in the journal at the start. */
  readonly done: number;
  /** Blocks the journal held when the run started. */
  readonly skipped: number;
  /** Distinct worker processes that finished a block of this run. */
  readonly workers: number;
  /** Extra attempts: failures retried and blocks taken over from a worker that died (stalled). */
  readonly retries: number;
  /** Jobs added again because Redis had lost them (a restart without persistence). */
  readonly requeued: number;
  /** Workers that refused this run (their inputs differ from the submitter's, or they cannot read them), and why. */
  readonly refused: ReadonlyArray<{ readonly worker: string; readonly reason: string }>;
  readonly elapsedMs: number;
}

export interface ClusterSummary {
  readonly out: string;
  readonly N: number;
  readonly M: number;
  readonly n: number;
  readonly kernel: KernelVariant;
  readonly blockSize: number;
  /** How the block size was chosen (undefined when given, or kept from the journal). */
  readonly blockChoice?: ClusterBlockSize;
  readonly blocks: number;
  readonly computed: number;
  readonly skipped: number;
  /** Worker processes (host:pid) that finished blocks of this run. */
  readonly workers: readonly string[];
  readonly retries: number;
  readonly requeued: number;
  /**
   * Blocks whose bytes in the output did not match the checksum their worker computed (found by the re-read
   * before publishing) and that were computed again.
   */
  readonly recomputed: readonly number[];
  /** Workers that refused the run (other inputs, or none readable), and why; other workers computed it. */
  readonly refused: ReadonlyArray<{ readonly worker: string; readonly reason: string }>;
  readonly seconds: number;
  /** Useful flops of the blocks computed by this run, per second of the run. */
  readonly gflops: number;
  /** Sum over computed blocks of the workers' seconds reading, computing and writing. */
  readonly workerSeconds: { read: number; compute: number; write: number };
  readonly queue: string;
  readonly run: string;
}

/**
 * Computes H on the workers of `queue` into `out`. Resumes from `out`'s journal when re-run with the same
 * inputs (the same journal as `hpair compute --max-memory`, so either can finish the other's run at the same
 * block size and kernel). Rejects with ABORTED when `signal` aborts (the journal keeps what finished), with
 * the block's error when one fails for good (e.g. NON_FINITE), IO_ERROR when Redis or the files fail.
 */
export async function submitToCluster(options: SubmitOptions): Promise<ClusterSummary> {
  const started = performance.now();
  const queueName = options.queue ?? DEFAULT_QUEUE;
  const { signal } = options;
  const attempts = positive(options.attempts ?? DEFAULT_ATTEMPTS, 'attempts');
  const backoffMs = positive(options.backoffMs ?? DEFAULT_BACKOFF_MS, 'backoffMs');
  const pollMs = options.pollMs ?? 250;
  const redisTimeoutMs = options.redisTimeoutMs ?? DEFAULT_REDIS_TIMEOUT_MS;
  if (options.blockSize !== undefined) positive(options.blockSize, 'blockSize');
  if (typeof options.connection === 'string') parseRedisUrl(options.connection); // a bad URL fails before any file is touched
  const expp = resolve(checkPath(options.expp, 'expp'));
  const distancePath = resolve(checkPath(options.distance, 'distance'));
  const out = resolve(checkPath(options.out, 'out'));
  const partial = partialPath(out);
  throwIfAborted(signal, 'the submission was aborted before it started');
  await refuseInputsAsOutput(out, [expp, distancePath]);

  const variant = resolveKernel(options.kernel ?? 'auto').variant;
  const kernel = variant.name;
  const accuracy = options.accuracy ?? 'default';
  checkAccuracy(variant, accuracy);
  const stamp = summationStamp(kernel, accuracy);
  const input = await openNpyInput(expp, { name: 'expp' });
  let stamps: { expp: InputStamp; distance: InputStamp };
  try {
    const distance = await readNpyVector(distancePath, { name: 'distance', expectedLength: input.cols, expectedBecause: `expp ${expp} has M = ${input.cols} columns` });
    checkHermitianShape(input.rows, input.cols, distance);
    const distanceInfo = await stat(distancePath);
    // Each input's content, read once: it names the run, and every worker checks its own files against it.
    const [exppDigest, distanceDigest] = await Promise.all([digestFile(expp, 'expp'), digestFile(distancePath, 'distance')]);
    stamps = {
      expp: { ...exppStamp(input), sha256: exppDigest },
      distance: { bytes: distanceInfo.size, mtimeMs: distanceInfo.mtimeMs, layout: 'vector', sha256: distanceDigest },
    };
  } finally {
    await input.close();
  }
  const N = input.rows;
  const M = input.cols;
  const n = N - 1;

  const { bullmq } = await loadQueueModules();
  const ownConnection = typeof options.connection === 'string';
  const client = (typeof options.connection === 'string'
    ? await connectRedis(options.connection, { connectTimeoutMs: options.connectTimeoutMs, name: `hpair-submit:${process.pid}` })
    : options.connection) as RedisClient;
  let reconnected = false;
  const onReady = (): void => void (reconnected = true);
  const onError = (): void => undefined; // reported through the deadline below, not one line per retry
  client.on('ready', onReady);
  client.on('error', onError);
  const queue = new bullmq.Queue<BlockJobData, BlockJobResult>(queueName, { connection: client as never });
  queue.on('error', onError);
  const disconnect = async (): Promise<void> => {
    client.off('ready', onReady);
    await withDeadline(queue.close(), 2_000, () => new Error('queue close')).catch(() => undefined);
    if (ownConnection) await withDeadline(client.quit(), 1_000, () => new Error('quit')).catch(() => client.disconnect());
    else client.off('error', onError);
  };
  // Redis must take the queue's writes before any file is touched: a read-only replica, a full memory or a
  // refused command fails here, in one line, with nothing written.
  try {
    await checkRedis(client, queue.toKey(`hpair-probe:${process.pid}`), options.connectTimeoutMs);
    await withDeadline(queue.waitUntilReady(), options.connectTimeoutMs ?? 5_000, () => new Error('the queue did not become ready'));
  } catch (error) {
    await disconnect();
    throw error instanceof HpairError ? error : new HpairError('IO_ERROR', `Redis refused the queue: ${(error as Error).message.replace(/\s*\n\s*/g, ' ')}`, { cause: error });
  }
  let journal: Journal | undefined;
  // One run at a time writes an output: another submit, or a compute --max-memory, is refused.
  const lock = await lockOutput(out, 'out').catch(async (error: unknown) => {
    await disconnect();
    throw error;
  });
  try {
    // The block size: given, kept from a journal of the same job, or chosen from the queue's overhead.
    const previous = await readJournalFingerprint(out).catch(() => undefined);
    let blockSize = options.blockSize;
    let blockChoice: ClusterBlockSize | undefined;
    if (blockSize === undefined && previous !== undefined && previous.N === N && previous.M === M && previous.kernel === stamp) blockSize = previous.blockSize;
    if (blockSize === undefined) {
      const roundTrip = await measureRoundTrip(client);
      const workers = await queue.getWorkersCount().catch(() => 0);
      const rate = await measuredRate(client, queue.toKey(RATES_KEY));
      blockChoice = chooseClusterBlockSize({ n, m: M, roundTrip, workers, kernel, rate, maxMemoryBytes: options.workerMemory });
      blockSize = blockChoice.blockSize;
    }
    const plan = planBlocks(n, blockSize);
    const fingerprint: JobFingerprint = { N, M, blockSize, kernel: stamp, ...stamps };

    // The journal and the partial output: resume both, or start both afresh (a new file, so that a worker
    // still busy with a block of an abandoned run can never write into this one: it checks the inode).
    if (previous !== undefined) {
      journal = await openJournal(out, fingerprint, { blockCount: plan.blocks.length });
      const exists = await stat(partial).then(() => true, () => false);
      if (!exists) {
        await journal.close();
        journal = undefined;
        await unlink(journalPath(out));
      }
    }
    const outBytes = complexNpyHeader([n, n]).length + 16 * n * n;
    // The file the workers write and the rename publishes: its identity as opened (never through a link).
    let identity: { dev: number; ino: number };
    if (journal === undefined) {
      // A partial output without a journal is an abandoned start: replaced, and only when it is a regular file
      // (a link, FIFO or device there was put by someone else, and is left as it is).
      await refuseSpecialFile(partial, `out (partial) ${partial}`);
      await unlink(partial).catch((error: NodeJS.ErrnoException) => (error.code === 'ENOENT' ? undefined : Promise.reject(ioFailure('replace', `out (partial) ${partial}`, error))));
      await checkSpace(out, outBytes, undefined, 'out');
      const created = await createNpyOutput(partial, n, { name: 'out (partial)' });
      identity = created.identity;
      await created.close();
      journal = await openJournal(out, fingerprint, { blockCount: plan.blocks.length });
    } else {
      const opened = await openNpyOutput(partial, n, { name: 'out (partial)' }); // the right header and size
      identity = opened.identity;
      await opened.close();
      await checkSpace(out, outBytes, partial, 'out');
    }
    const file = { dev: identity.dev, ino: identity.ino, size: outBytes };
    const replaced = (now: string): HpairError =>
      new HpairError('IO_ERROR', `cannot finish out ${out}: ${partial} was replaced while the run wrote it (it is now ${now}); nothing was published`);
    const expect = { dev: identity.dev, ino: identity.ino, replaced };
    const nonce = journal.nonce;
    const run = runId(fingerprint, out, nonce);
    // A run started afresh removes what an earlier run of this output left in the queue (its finished jobs
    // wrote into a partial output that is gone; its waiting ones would compute blocks nobody collects).
    const current = await client.get(queue.toKey(outputKey(out)));
    if (current !== null && current !== run && /^[0-9a-f]{16}$/.test(current)) await removeRun(queue, client, current);
    await client.set(queue.toKey(outputKey(out)), run, 'EX', KEEP_FINISHED_S);
    const skipped = journal.done.size;
    const outstanding = new Map<number, Block>(plan.blocks.filter((block) => !journal!.done.has(block.id)).map((block) => [block.id, block]));
    const dataOf = (block: Block): BlockJobData => ({
      v: JOB_DATA_VERSION,
      run,
      expp,
      distance: distancePath,
      partial,
      n,
      m: M,
      kernel,
      accuracy,
      block: { id: block.id, rows: [block.rows[0], block.rows[1]], cols: [block.cols[0], block.cols[1]] },
      file,
      nonce,
      journal: journalPath(out),
      inputs: { expp: { bytes: stamps.expp.bytes, sha256: stamps.expp.sha256 }, distance: { bytes: stamps.distance.bytes, sha256: stamps.distance.sha256 } },
    });
    const jobOptions = (block: Block) => ({
      jobId: jobId(run, block.id),
      attempts,
      backoff: { type: 'exponential' as const, delay: backoffMs },
      removeOnComplete: { age: KEEP_FINISHED_S },
      removeOnFail: { age: KEEP_FINISHED_S },
    });
    const enqueue = async (blocks: Block[]): Promise<void> => {
      for (let k = 0; k < blocks.length; k += 500) {
        await queue.addBulk(blocks.slice(k, k + 500).map((block) => ({ name: BLOCK_JOB, data: dataOf(block), opts: jobOptions(block) })));
      }
    };

    const workers = new Set<string>();
    let retries = 0;
    let requeued = 0;
    let computedFlops = 0;
    const workerSeconds = { read: 0, compute: 0, write: 0 };
    const prefix = `hp-${run}-`;
    const key = (id: number): string => queue.toKey(jobId(run, id));

    /** Journals the finished jobs of this run, then removes them from Redis. */
    const harvest = async (stopOnFailure = true): Promise<void> => {
      const ids = (await queue.getRanges(['completed'], 0, -1)).filter((id) => id.startsWith(prefix));
      const finished: Array<{ id: number; checksum: string }> = [];
      for (const id of ids) {
        const parsed = parseJobId(id);
        const job = await queue.getJob(id);
        if (parsed === undefined || job === undefined) continue;
        const result = job.returnvalue as BlockJobResult | null;
        // A result without its block's checksum cannot be verified: not journaled (the job is removed below
        // and added again by the next reconcile).
        if (outstanding.has(parsed.block) && isChecksum(result?.checksum)) {
          finished.push({ id: parsed.block, checksum: result!.checksum });
          if (result !== null && typeof result === 'object') {
            workers.add(result.worker);
            workerSeconds.read += result.read;
            workerSeconds.compute += result.compute;
            workerSeconds.write += result.write;
          }
          retries += Math.max(0, (job.attemptsStarted ?? 1) - 1);
          computedFlops += blockFlops(outstanding.get(parsed.block)!, M);
        }
      }
      if (finished.length > 0) {
        await journal!.record(finished); // each worker synced its block before completing the job
        for (const block of finished) outstanding.delete(block.id);
      }
      await Promise.all(ids.map((id) => queue.remove(id).catch(() => undefined)));
      if (!stopOnFailure) return;
      const failed = (await queue.getRanges(['failed'], 0, -1)).filter((id) => id.startsWith(prefix));
      for (const id of failed) {
        const job = await queue.getJob(id);
        const parsed = parseJobId(id);
        if (job === undefined || parsed === undefined || !outstanding.has(parsed.block)) continue;
        throw blockFailure(job.failedReason ?? 'no reason given', parsed.block, job.attemptsMade ?? 0, journal!, plan.blocks.length);
      }
    };

    /** Adds the jobs Redis does not have (first run, or lost by a Redis restart) and takes back failed ones of an earlier run. */
    const reconcile = async (first: boolean): Promise<void> => {
      const blocks = [...outstanding.values()];
      const missing: Block[] = [];
      for (let k = 0; k < blocks.length; k += 1000) {
        const slice = blocks.slice(k, k + 1000);
        const pipeline = client.pipeline();
        for (const block of slice) pipeline.exists(key(block.id));
        const answers = (await pipeline.exec()) ?? [];
        slice.forEach((block, index) => {
          if (answers[index]?.[1] === 0) missing.push(block);
        });
      }
      if (first) {
        // A block that failed for good in an earlier run gets fresh attempts now.
        const failed = (await queue.getRanges(['failed'], 0, -1)).filter((id) => id.startsWith(prefix));
        for (const id of failed) {
          const parsed = parseJobId(id);
          if (parsed === undefined || !outstanding.has(parsed.block)) continue;
          await queue.remove(id).catch(() => undefined);
          missing.push(outstanding.get(parsed.block)!);
        }
      } else {
        requeued += missing.length;
      }
      await enqueue(missing);
    };

    /** Journals what finished, then removes the jobs of this run no worker holds; returns how many still run. */
    let removed = 0;
    const withdraw = async (): Promise<number> => {
      // Journal what finished first: a finished job removed unjournaled would be computed again by a re-run.
      await harvest(false);
      let running = 0;
      for (const block of outstanding.values()) {
        const id = jobId(run, block.id);
        const state = await queue.getJobState(id);
        // Only jobs no worker holds: a waiting job a worker takes meanwhile is locked, and remove() leaves it.
        if (state === 'waiting' || state === 'delayed' || state === 'prioritized') removed += await queue.remove(id);
        else if (state === 'active') running++;
      }
      await harvest(false);
      return running;
    };
    const cancel = async (): Promise<never> => {
      const running = await withdraw();
      const where = `${journal!.done.size} of ${plan.blocks.length} blocks are in ${journal!.path}`;
      const busy = running === 0 ? '' : `, ${running} still running on workers (a re-run collects them)`;
      throw new HpairAbortError(`cancelled: ${removed} waiting blocks removed from the queue${busy}; ${where}; run the same command again to resume`, signal?.reason);
    };

    const progress = (): ClusterProgress => ({
      blocks: plan.blocks.length,
      done: journal!.done.size,
      skipped,
      workers: workers.size,
      retries,
      requeued,
      refused: [...refused].map(([worker, reason]) => ({ worker, reason })),
      elapsedMs: performance.now() - started,
    });
    /**
     * The workers that refused this run. When every worker connected to the queue has, nobody can compute the
     * run: it stops (IO_ERROR naming each and why) instead of waiting for ever.
     */
    const refused = new Map<string, string>();
    const readRefusals = async (): Promise<void> => {
      const found = await client.hgetall(queue.toKey(refusedKey(run)));
      for (const [worker, reason] of Object.entries(found)) refused.set(worker, reason);
    };
    const checkRefusals = async (): Promise<void> => {
      await readRefusals();
      if (refused.size === 0) return;
      // Where CLIENT LIST is not allowed (some hosted Redis), the live workers are unknown: the run waits.
      const clients = await queue.getWorkers().catch(() => []);
      const live = new Set(clients.map((w) => /:w:(.*)$/.exec(String(w.rawname ?? ''))?.[1]).filter((name): name is string => name !== undefined));
      if (live.size > 0 && [...live].every((name) => refused.has(name))) {
        const why = [...refused].map(([worker, reason]) => `${worker}: ${reason}`).join('; ');
        throw new HpairError('IO_ERROR', `every worker refused this run (${why}); ${journal!.done.size} of ${plan.blocks.length} blocks are in ${journal!.path}`);
      }
    };
    const deadline = <T>(promise: Promise<T>): Promise<T> =>
      withDeadline(promise, redisTimeoutMs, () => new HpairError('IO_ERROR', `Redis did not answer for ${redisTimeoutMs / 1000} s; ${journal!.done.size} of ${plan.blocks.length} blocks are in ${journal!.path}; run the same command again to resume`));

    let recomputed: number[] = [];
    try {
      await deadline(harvest()); // jobs of this run that finished while no submitter watched
      if (signal?.aborted) await cancel();
      await deadline(reconcile(true));
      options.onProgress?.(progress());
      let lastReconcile = performance.now();
      let lastRefusalCheck = performance.now();
      for (let round = 0; ; round++) {
        while (outstanding.size > 0) {
          if (signal?.aborted) await deadline(cancel());
          await sleep(pollMs, signal);
          if (signal?.aborted) continue;
          await deadline(harvest());
          if (reconnected || performance.now() - lastReconcile > 3_000) {
            reconnected = false;
            lastReconcile = performance.now();
            await deadline(reconcile(false));
          }
          if (performance.now() - lastRefusalCheck > 1_000) {
            lastRefusalCheck = performance.now();
            await deadline(checkRefusals());
          }
          options.onProgress?.(progress());
        }
        // Before `out` appears: every block re-read against the checksum its worker computed. Blocks that
        // differ (the partial output or the journal changed since) are computed again, once.
        const bad = await mismatchedBlocks(partial, n, complexNpyHeader([n, n]).length, plan.blocks, journal.checksums, `out (partial) ${partial}`, expect);
        if (bad.length === 0) break;
        if (round > 0) throw new HpairError('IO_ERROR', `out (partial) ${partial}: ${describeBlocks(bad, plan.blocks)} still differ from their checksums after being computed again; is the storage failing?`);
        recomputed = bad;
        await journal.withdraw(bad);
        const blocks = bad.map((id) => plan.blocks[id]);
        for (const block of blocks) outstanding.set(block.id, block);
        await Promise.all(bad.map((id) => queue.remove(jobId(run, id)).catch(() => undefined)));
        await deadline(enqueue(blocks));
      }
      await deadline(readRefusals()); // for the summary: refusals since the last look
      // And the inputs are still those the run was planned for (one changed mid-run gave blocks of two problems).
      for (const [name, path] of [['expp', expp], ['distance', distancePath]] as const) {
        if ((await digestFile(path, name)) !== stamps[name].sha256) {
          throw new HpairError('IO_ERROR', `${name} ${path} changed while H was computed from it; delete ${partial} and ${journal.path} to start over`);
        }
      }
    } catch (error) {
      // A block failed for good, or the journal could not be written: the other blocks of this run are not
      // worth computing now. (Not when Redis is gone: then nothing can be removed.)
      const redisLost = error instanceof HpairError && error.code === 'IO_ERROR' && /^Redis did not answer/.test(error.message);
      if (!(error instanceof HpairAbortError) && !redisLost) await withDeadline(withdraw(), 10_000, () => new Error('withdraw')).catch(() => undefined);
      throw error;
    }

    // Every block is in: the manifest, then the partial output becomes `out`, then the journal goes.
    const missing = plan.blocks.length - journal.done.size;
    if (missing !== 0) throw new HpairError('IO_ERROR', `internal: ${missing} blocks are not journaled`);
    await writeManifest(out, manifestOf({ n, blockSize, kernel, paths: { expp, distance: distancePath }, stamps, blocks: plan.blocks, checksums: journal.checksums }), [expp, distancePath]);
    // The rename publishes whatever the name holds now: it must still be the file the workers wrote.
    const now = await lstat(partial).catch((error: NodeJS.ErrnoException) => Promise.reject(error.code === 'ENOENT' ? replaced('gone') : ioFailure('finish', `out (partial) ${partial}`, error)));
    if (!now.isFile() || now.dev !== identity.dev || now.ino !== identity.ino) throw replaced(now.isFile() ? 'another file' : kindOf(now));
    await rename(partial, out);
    await syncDirectory(dirname(out));
    await journal.close();
    journal = undefined;
    await unlink(journalPath(out));
    await syncDirectory(dirname(out));
    await client.del(queue.toKey(outputKey(out)), queue.toKey(refusedKey(run))).catch(() => undefined);
    const seconds = (performance.now() - started) / 1000;
    return {
      out,
      N,
      M,
      n,
      kernel,
      blockSize,
      ...(blockChoice === undefined ? {} : { blockChoice }),
      blocks: plan.blocks.length,
      computed: plan.blocks.length - skipped,
      skipped,
      workers: [...workers].sort(),
      retries,
      requeued,
      recomputed,
      refused: [...refused].map(([worker, reason]) => ({ worker, reason })),
      seconds,
      gflops: computedFlops / Math.max(1e-9, seconds) / 1e9,
      workerSeconds,
      queue: queueName,
      run,
    };
  } finally {
    await journal?.close().catch(() => undefined);
    await lock.release();
    await disconnect();
  }
}

/** A block's final failure as the error to report: the worker's HpairError code when it sent one ("[CODE] message"). */
function blockFailure(reason: string, block: number, attemptsMade: number, journal: Journal, blocks: number): HpairError {
  const where = `${journal.done.size} of ${blocks} blocks are in ${journal.path}`;
  const match = /^\[([A-Z_]+)\] ([\s\S]*)$/.exec(reason);
  if (match !== null && match[1] !== 'STALE') return new HpairError(match[1] as HpairErrorCode, `${match[2]} (block ${block}); ${where}`);
  return new HpairError('WORKER_CRASHED', `block ${block} failed ${attemptsMade} times, last: ${reason}; ${where}; run the same command again to retry`);
}

/** The median of the rates worker processes recorded in the last day (flop/s), or undefined when none did. */
async function measuredRate(client: RedisClient, key: string): Promise<number | undefined> {
  const entries = Object.entries(await client.hgetall(key).catch(() => ({}) as Record<string, string>));
  const since = Date.now() - 24 * 3600 * 1000;
  const rates: number[] = [];
  const stale: string[] = [];
  for (const [worker, text] of entries) {
    try {
      const { rate, at } = JSON.parse(text) as { rate: number; at: number };
      if (Number.isFinite(rate) && rate > 0 && at > since) rates.push(rate);
      else stale.push(worker);
    } catch {
      stale.push(worker);
    }
  }
  if (stale.length > 0) await client.hdel(key, ...stale).catch(() => undefined); // worker processes long gone
  rates.sort((a, b) => a - b);
  return rates.length === 0 ? undefined : rates[Math.floor(rates.length / 2)];
}

/** Median of a few PINGs (s): the round trip each queue operation pays. */
async function measureRoundTrip(client: RedisClient): Promise<number> {
  const times: number[] = [];
  for (let k = 0; k < 7; k++) {
    const t = performance.now();
    await client.ping();
    times.push((performance.now() - t) / 1000);
  }
  times.sort((a, b) => a - b);
  return times[3];
}

/**
 * Removes what an earlier run left in the queue: its jobs in every state a job can be removed from (a job a
 * worker holds is locked and stays; its worker's write is refused, the journal naming another run), and its
 * refusals.
 */
async function removeRun(queue: import('bullmq').Queue<BlockJobData, BlockJobResult>, client: RedisClient, run: string): Promise<void> {
  const prefix = `hp-${run}-`;
  const ids = (await queue.getRanges(['completed', 'failed', 'waiting', 'delayed', 'prioritized', 'wait'], 0, -1)).filter((id) => id.startsWith(prefix));
  for (let k = 0; k < ids.length; k += 200) await Promise.all(ids.slice(k, k + 200).map((id) => queue.remove(id).catch(() => 0)));
  await client.del(queue.toKey(refusedKey(run)));
}

async function refuseInputsAsOutput(out: string, inputs: readonly string[]): Promise<void> {
  const inputStats = await Promise.all(inputs.map((path) => stat(path).catch(() => undefined)));
  for (const candidate of [out, partialPath(out), journalPath(out)]) {
    const target = await stat(candidate).catch(() => undefined);
    if (target !== undefined && inputStats.some((s) => s !== undefined && s.dev === target.dev && s.ino === target.ino)) {
      throw new HpairError('INVALID_ARGUMENT', `out ${out} would overwrite one of the inputs (${candidate}); refusing`);
    }
  }
  const dir = await stat(dirname(out)).catch(() => undefined);
  if (dir === undefined || !dir.isDirectory()) throw new HpairError('IO_ERROR', `cannot write out ${out}: the directory ${dirname(out)} does not exist`);
  // The files beside `out` are the run's own: a link, FIFO or device at one of their names was put there by
  // someone else, and is refused before anything is written (as out of core does).
  await refuseSpecialFile(partialPath(out), `out (partial) ${partialPath(out)}`);
  await refuseSpecialFile(journalPath(out), `out (journal) ${journalPath(out)}`);
  await refuseSpecialFile(manifestPath(out), `out (manifest) ${manifestPath(out)}`);
}

function checkPath(value: unknown, name: string): string {
  if (typeof value !== 'string' || value === '') throw new HpairError('INVALID_ARGUMENT', `${name} must be a file path, got ${JSON.stringify(value)}`);
  return value;
}

function positive(value: number, name: string): number {
  if (!Number.isSafeInteger(value) || value < 1) throw new HpairError('INVALID_ARGUMENT', `${name} must be a positive integer, got ${String(value)}`);
  return value;
}

function throwIfAborted(signal: AbortSignal | undefined, message: string): void {
  if (signal?.aborted === true) throw new HpairAbortError(message, signal.reason);
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((done) => {
    const timer = setTimeout(finish, ms);
    signal?.addEventListener('abort', finish, { once: true });
    function finish(): void {
      clearTimeout(timer);
      signal?.removeEventListener('abort', finish);
      done();
    }
  });
}

function withDeadline<T>(promise: Promise<T>, ms: number, error: () => Error): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(error()), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

