// A cluster worker: one BullMQ worker (one block at a time) in front of this process's pool. It reads the
// rows a block needs from the shared inputs, computes the block, writes it and its mirror in place in the
// shared output (the same bytes whoever writes them), syncs, and only then completes the job.
import { hostname } from 'node:os';
import { lstat, open, stat } from 'node:fs/promises';
import { openNpyInput, readNpyVector } from '../io/npy-file.js';
import { openNpyOutput } from '../io/npy-output.js';
import { blockChecksum, digestFile } from '../blocks/integrity.js';
import type { KernelVariant } from '../kernel/kernel-names.js';
import { kernelSupported } from '../kernel/kernel-status.js';
import { HpairError, isHpairError } from '../shared/errors.js';
import { createPool } from '../workers/create-pool.js';
import type { PoolOptions } from '../workers/options.js';
import type { Pool } from '../workers/pool.js';
import { readBlockRows, type RowReader } from './block-input.js';
import { BLOCK_JOB, blockFlops, DEFAULT_QUEUE, JOB_DATA_VERSION, RATES_KEY, refusedKey, type BlockJobData, type BlockJobResult } from './jobs.js';
import { loadQueueModules, type RedisClient } from './load.js';
import { checkRedis, connectRedis, parseRedisUrl } from './redis.js';

/**
 * Lock and stalled-check timings. A worker renews its block's lock every lockDuration / 2 from the main
 * thread, which never computes (the pool's threads do), so a live worker keeps its lock; a worker killed
 * mid-block (kill -9) loses it after lockDuration, and another worker's stalled check, every
 * stalledInterval, moves the block back to the queue: it is recomputed within lockDuration + 2·stalledInterval.
 */
export const DEFAULT_LOCK_DURATION_MS = 15_000;
export const DEFAULT_STALLED_INTERVAL_MS = 5_000;
/** A block may stall (its worker died) this many times before it fails; kills are expected, so more than BullMQ's 1. */
export const DEFAULT_MAX_STALLED_COUNT = 5;

/** Errors that no retry can mend: the job fails at once and the submission stops with the message. */
const FINAL_CODES = new Set(['INVALID_ARGUMENT', 'SHAPE_MISMATCH', 'EMPTY_INPUT', 'NON_FINITE', 'ZERO_DISTANCE', 'OVERFLOW', 'BAD_NPY', 'TOO_LARGE']);

export interface ClusterWorkerOptions {
  /** A redis:// URL, or an ioredis client of yours made with `maxRetriesPerRequest: null` (it is left open). */
  connection: string | object;
  /** BullMQ queue name. @default 'hpair' */
  queue?: string;
  /** A pool of yours (left open by close()); otherwise one is made from `poolOptions` and closed with the worker. */
  pool?: Pool;
  poolOptions?: PoolOptions;
  /** Shown in the submitter's summary. @default host:pid */
  name?: string;
  /** @default 15000 */
  lockDuration?: number;
  /** @default 5000 */
  stalledInterval?: number;
  /** @default 5 */
  maxStalledCount?: number;
  /** For a URL connection: give up on the first connection after this long (IO_ERROR). @default 5000 */
  connectTimeoutMs?: number;
  /** A block was written and its job completed (or handed back, or failed). */
  onBlock?: (event: ClusterBlockEvent) => void;
  /** The running block's progress (tiles done of total), at most every 50 ms. */
  onProgress?: (block: number, done: number, total: number) => void;
  /**
   * Something went wrong outside a block: 'connection' for a lost Redis connection (it reconnects by itself),
   * 'queue' for the queue's own complaints (a lock that could not be renewed, a job Redis no longer has).
   */
  onError?: (error: Error, kind: 'connection' | 'queue') => void;
  /** For a URL connection: the connection is back after it was lost. */
  onReconnect?: () => void;
  /** @internal Tests stand between the check of the partial output's name and its opening (a swap there). */
  beforeOpen?: (block: BlockJobData['block']) => void | Promise<void>;
}

export interface ClusterBlockEvent {
  /** The job's id (run and block) and the block's rectangle. */
  job: string;
  block: BlockJobData['block'];
  /**
   * 'refused': this worker's inputs are not the submitter's (other bytes, or none it can read); the block went
   * back to the queue and this worker takes no more blocks of that run. Reported once per run, with `error`.
   */
  outcome: 'done' | 'returned' | 'failed' | 'refused';
  /** The run the block belongs to. */
  run?: string;
  /** Seconds reading, computing, writing (for 'done'). */
  read?: number;
  compute?: number;
  write?: number;
  flops?: number;
  error?: Error;
}

export interface ClusterWorker {
  /** host:pid, or the name given. */
  readonly name: string;
  /** Blocks this worker finished. */
  readonly blocksDone: number;
  /** Threads of its pool. */
  readonly threads: number;
  /** Resolves once the worker is connected and waiting for blocks. */
  ready(): Promise<void>;
  /**
   * Stops taking blocks. The running block is finished (the default), or with `giveBack: true` stopped at its
   * next tile and put back in the queue at once for another worker. Then the pool (if the worker made it) and
   * the connection (if it made it) are closed.
   */
  close(options?: { giveBack?: boolean }): Promise<void>;
}

class GiveBack extends Error {}
class Refused extends Error {}

/** Longest pause after giving back a block of a refused run, so that other workers take it first (ms). */
const MAX_REFUSAL_PAUSE_MS = 2_000;

/** Starts a worker on `queue`: it takes block jobs until close(). */
export async function createClusterWorker(options: ClusterWorkerOptions): Promise<ClusterWorker> {
  if (typeof options.connection === 'string') parseRedisUrl(options.connection); // a bad URL fails at once
  const { bullmq } = await loadQueueModules();
  const queueName = options.queue ?? DEFAULT_QUEUE;
  const name = options.name ?? `${hostname()}:${process.pid}`;
  const ownConnection = typeof options.connection === 'string';
  const client = (typeof options.connection === 'string'
    ? await connectRedis(parseRedisUrl(options.connection), { connectTimeoutMs: options.connectTimeoutMs, name: `hpair-worker:${name}` })
    : options.connection) as RedisClient;
  // A worker that cannot write to the queue must not wait for blocks as if all were well.
  try {
    await checkRedis(client, `bull:${queueName}:hpair-probe:${name}`, options.connectTimeoutMs);
  } catch (error) {
    if (ownConnection) client.disconnect();
    throw error;
  }
  const report = (error: Error): void => {
    const connection = /ECONNREFUSED|ECONNRESET|ETIMEDOUT|EPIPE|Connection is closed|connect/i.test(`${(error as NodeJS.ErrnoException).code ?? ''} ${error.message}`);
    options.onError?.(error, connection ? 'connection' : 'queue');
  };
  if (ownConnection) {
    client.on('error', report);
    client.on('ready', () => options.onReconnect?.());
  }

  const pools = new Map<KernelVariant, Promise<Pool>>();
  const ownPools: Pool[] = [];
  if (options.pool !== undefined) pools.set(options.pool.kernel, Promise.resolve(options.pool));
  const poolFor = (kernel: KernelVariant): Promise<Pool> => {
    let pool = pools.get(kernel);
    if (pool === undefined) {
      if (!kernelSupported(kernel)) throw new Error(`this worker (${name}) cannot run the ${kernel} kernel the submission asks for`);
      const made = createPool({ ...options.poolOptions, ...(options.pool === undefined ? {} : { workers: options.pool.size }), kernel });
      ownPools.push(made);
      pool = made.ready().then(() => made);
      pools.set(kernel, pool);
    }
    return pool;
  };
  let threads = options.pool?.size ?? 0;
  if (options.pool === undefined) {
    const first = createPool(options.poolOptions);
    ownPools.push(first);
    threads = first.size;
    pools.set(first.kernel, first.ready().then(() => first));
  }

  // Inputs stay open across blocks (reopened when the file changed); distances are small and cached whole.
  const inputs = new Map<string, { key: string; reader: Promise<RowReader & { close?(): unknown }> }>();
  const distances = new Map<string, { key: string; values: Promise<Float64Array> }>();
  const fileKey = async (path: string): Promise<string> => {
    const info = await stat(path);
    return `${info.dev}:${info.ino}:${info.size}:${info.mtimeMs}`;
  };
  const exppReader = async (path: string): Promise<RowReader> => {
    const key = await fileKey(path);
    let entry = inputs.get(path);
    if (entry === undefined || entry.key !== key) {
      if (entry !== undefined) void entry.reader.then((old) => old.close?.()).catch(() => undefined);
      entry = { key, reader: openNpyInput(path) };
      inputs.set(path, entry);
      entry.reader.catch(() => inputs.delete(path));
    }
    return entry.reader;
  };
  const distanceOf = async (path: string): Promise<Float64Array> => {
    const key = await fileKey(path);
    let entry = distances.get(path);
    if (entry === undefined || entry.key !== key) {
      entry = { key, values: readNpyVector(path) };
      distances.set(path, entry);
      entry.values.catch(() => distances.delete(path));
    }
    return entry.values;
  };

  // Each input's digest, per path: kept while the file's identity (device, inode, size, time) holds, but
  // computed at least once for every run, so a file changed in place with its size and time kept is caught.
  const digests = new Map<string, { key: string; sha256: Promise<string>; runs: Set<string> }>();
  const digestOf = async (path: string, name: string, run: string): Promise<{ bytes: number; sha256: string }> => {
    const info = await stat(path);
    const key = `${info.dev}:${info.ino}:${info.size}:${info.mtimeMs}`;
    let entry = digests.get(path);
    if (entry === undefined || entry.key !== key || !entry.runs.has(run)) {
      const made: { key: string; sha256: Promise<string>; runs: Set<string> } = { key, sha256: digestFile(path, name), runs: new Set([run]) };
      made.sha256.catch(() => (digests.get(path) === made ? digests.delete(path) : undefined));
      digests.set(path, made);
      entry = made;
    }
    return { bytes: info.size, sha256: await entry.sha256 };
  };
  /** Why this worker cannot compute `data`'s run, or undefined when its inputs are the submitter's. */
  const refusalOf = async (data: BlockJobData): Promise<string | undefined> => {
    for (const [label, path] of [['expp', data.expp], ['distance', data.distance]] as const) {
      const wanted = data.inputs[label];
      let seen: { bytes: number; sha256: string };
      try {
        seen = await digestOf(path, label, data.run);
      } catch (error) {
        const cause = (error as { cause?: NodeJS.ErrnoException }).cause ?? (error as NodeJS.ErrnoException);
        return `cannot read ${label} ${path} (${cause.code ?? cause.message})`;
      }
      if (seen.bytes !== wanted.bytes || seen.sha256 !== wanted.sha256) {
        return `its ${label} ${path} is not the submitter's (${seen.bytes} bytes, SHA-256 ${seen.sha256.slice(0, 16)}… here; ${wanted.bytes} bytes, ${wanted.sha256.slice(0, 16)}… there)`;
      }
    }
    return undefined;
  };
  const refusedRuns = new Map<string, string>();
  let refusalPause = 0;
  const lockDuration = options.lockDuration ?? DEFAULT_LOCK_DURATION_MS;

  let current: { controller: AbortController } | undefined;
  let blocksDone = 0;
  let giveBack = false;

  const processor = async (job: import('bullmq').Job<BlockJobData, BlockJobResult>, token?: string): Promise<BlockJobResult> => {
    const data = checkData(job.data, bullmq);
    const { block } = data;
    const controller = new AbortController();
    current = { controller };
    try {
      if (giveBack) throw new GiveBack();
      if (!refusedRuns.has(data.run)) {
        const reason = await refusalOf(data);
        if (reason !== undefined) {
          refusedRuns.set(data.run, reason);
          const key = worker.toKey(refusedKey(data.run));
          await client.hset(key, name, reason).catch(() => undefined);
          await client.expire(key, 7 * 24 * 3600).catch(() => undefined);
          options.onBlock?.({ job: job.id ?? '', block, run: data.run, outcome: 'refused', error: new HpairError('IO_ERROR', reason) });
        }
      }
      if (refusedRuns.has(data.run)) throw new Refused();
      refusalPause = 0;
      const pool = await poolFor(data.kernel);
      let started = performance.now();
      const [reader, distance] = await Promise.all([exppReader(data.expp), distanceOf(data.distance)]);
      if (reader.rows !== data.n + 1 || reader.cols !== data.m || distance.length !== data.m) {
        throw new HpairError('SHAPE_MISMATCH', `the inputs on ${name} are ${reader.rows}×${reader.cols} and ${distance.length}, the submission planned ${data.n + 1}×${data.m}`);
      }
      const compact = await readBlockRows(reader, data.n, block);
      const read = (performance.now() - started) / 1000;
      started = performance.now();
      let lastProgress = 0;
      const h = await pool
        .hermitianBlock(compact.expp, distance, compact.block, {
          accuracy: data.accuracy,
          signal: controller.signal,
          onProgress: (done, total) => {
            options.onProgress?.(block.id, done, total);
            const now = performance.now();
            if (now - lastProgress > 1000 && done < total) {
              lastProgress = now;
              job.updateProgress(Math.floor((100 * done) / total)).catch(() => undefined);
            }
          },
        })
        .catch((error: unknown) => {
          if (controller.signal.aborted) throw new GiveBack();
          throw renameRows(error, compact.originalRow);
        });
      if (h.kernel !== data.kernel) throw new Error(`the block ran on ${h.kernel}, not on the ${data.kernel} kernel the submission asks for`);
      const compute = (performance.now() - started) / 1000;
      started = performance.now();
      // Only into the file this submission preallocated: a newer output at the same path is another run's.
      const stale = (): Error => new bullmq.UnrecoverableError(`[STALE] ${data.partial} is no longer the output this block was planned for`);
      const info = await lstat(data.partial).catch((error: NodeJS.ErrnoException) => Promise.reject(error.code === 'ENOENT' ? stale() : error));
      if (!info.isFile() || info.dev !== data.file.dev || info.ino !== data.file.ino || info.size !== data.file.size) throw stale();
      // The checksum of what was computed, from memory: the submitter re-reads the file against it.
      const checksum = blockChecksum(block, h.data, h.cols);
      await options.beforeOpen?.(block);
      const output = await openNpyOutput(data.partial, data.n);
      try {
        // The name may have changed hands between the check above and the open: the file opened is the one
        // written, so it is its identity that must be the planned one.
        if (output.identity.dev !== data.file.dev || output.identity.ino !== data.file.ino || output.fileBytes !== data.file.size) throw stale();
        // And only while the output's journal names this run: one started afresh at the same path has another.
        if ((await journalNonce(data.journal)) !== data.nonce) {
          throw new bullmq.UnrecoverableError(`[STALE] ${data.journal} no longer names the run this block was planned for`);
        }
        await output.writeBlock(block, h);
        await output.sync(); // durable before the job completes: the submitter journals it on completion
      } finally {
        await output.close();
      }
      const write = (performance.now() - started) / 1000;
      blocksDone += 1;
      const flops = blockFlops(block, data.m);
      if (compute > 0.05) {
        // This process's measured rate, for the block size of later submissions (best effort).
        client.hset(worker.toKey(RATES_KEY), name, JSON.stringify({ rate: flops / compute, at: Date.now() })).catch(() => undefined);
      }
      options.onBlock?.({ job: job.id ?? '', block, outcome: 'done', read, compute, write, flops });
      return { worker: name, kernel: h.kernel, read, compute, write, checksum };
    } catch (error) {
      if (error instanceof Refused) {
        // Back to the queue at once, and a pause before the next take (growing while only refused blocks
        // come), so that the workers that can compute the block take it rather than this one again. The pause
        // stays well inside the lock's renewal period: the given-back job is no longer this worker's to renew.
        await job.moveToWait(token);
        refusalPause = Math.min(MAX_REFUSAL_PAUSE_MS, lockDuration / 8, Math.max(50, 2 * refusalPause));
        await new Promise((resolve) => setTimeout(resolve, refusalPause));
        throw new bullmq.WaitingError();
      }
      if (error instanceof GiveBack) {
        // Back to the queue at once (not after the lock expires) for another worker.
        await job.moveToWait(token);
        options.onBlock?.({ job: job.id ?? '', block, outcome: 'returned' });
        throw new bullmq.WaitingError();
      }
      const final = isHpairError(error) && FINAL_CODES.has(error.code);
      const failure = final ? new bullmq.UnrecoverableError(`[${(error as HpairError).code}] ${(error as Error).message}`) : (error as Error);
      options.onBlock?.({ job: job.id ?? '', block, outcome: 'failed', error: failure });
      throw failure;
    } finally {
      current = undefined;
    }
  };

  const worker = new bullmq.Worker<BlockJobData, BlockJobResult>(queueName, processor, {
    connection: client as never,
    name,
    concurrency: 1,
    lockDuration,
    stalledInterval: options.stalledInterval ?? DEFAULT_STALLED_INTERVAL_MS,
    maxStalledCount: options.maxStalledCount ?? DEFAULT_MAX_STALLED_COUNT,
    // Finished jobs stay until the submitter has journaled them; it removes them itself.
    removeOnComplete: { count: 1_000_000 },
    removeOnFail: { count: 1_000_000 },
    autorun: true,
  });
  worker.on('error', report);
  worker.on('lockRenewalFailed', (ids) => options.onError?.(new Error(`could not renew the lock of ${ids.join(', ')}; another worker may take the block over`), 'queue'));

  let closing: Promise<void> | undefined;
  return {
    name,
    get blocksDone() {
      return blocksDone;
    },
    threads,
    ready: () =>
      worker.waitUntilReady().then(
        () => undefined,
        (error: unknown) => {
          throw isHpairError(error) ? error : new HpairError('IO_ERROR', `Redis refused the queue: ${(error as Error)?.message?.replace(/\s*\n\s*/g, ' ') ?? String(error)}`, { cause: error });
        },
      ),
    close(closeOptions = {}) {
      if (closeOptions.giveBack === true) {
        giveBack = true;
        current?.controller.abort(new GiveBack());
      }
      closing ??= (async () => {
        await worker.close();
        for (const pool of ownPools) await pool.close({ abort: true });
        for (const entry of inputs.values()) await entry.reader.then((reader) => reader.close?.()).catch(() => undefined);
        if (ownConnection) {
          await client.quit().catch(() => client.disconnect());
        }
      })();
      return closing;
    },
  };
}

function checkData(data: BlockJobData, bullmq: typeof import('bullmq')): BlockJobData {
  const ok =
    typeof data === 'object' &&
    data !== null &&
    data.v === JOB_DATA_VERSION &&
    (data.accuracy === 'default' || data.accuracy === 'compensated') &&
    typeof data.expp === 'string' &&
    typeof data.distance === 'string' &&
    typeof data.partial === 'string' &&
    Number.isSafeInteger(data.n) &&
    Number.isSafeInteger(data.m) &&
    typeof data.block === 'object' &&
    data.block !== null &&
    typeof data.file === 'object' &&
    data.file !== null &&
    typeof data.run === 'string' &&
    typeof data.nonce === 'string' &&
    typeof data.journal === 'string' &&
    typeof data.inputs?.expp?.sha256 === 'string' &&
    typeof data.inputs?.distance?.sha256 === 'string' &&
    Number.isSafeInteger(data.inputs.expp.bytes) &&
    Number.isSafeInteger(data.inputs.distance.bytes);
  if (!ok) throw new bullmq.UnrecoverableError(`[INVALID_ARGUMENT] not a block job of this version of hpair (${BLOCK_JOB} v${JOB_DATA_VERSION})`);
  return data;
}

/** The run nonce in a journal's header line, or undefined when there is no journal or it names none. */
async function journalNonce(path: string): Promise<string | undefined> {
  const file = await open(path, 'r').catch(() => undefined);
  if (file === undefined) return undefined;
  try {
    const head = Buffer.alloc(16 * 1024);
    const { bytesRead } = await file.read(head, 0, head.length, 0);
    const line = head.subarray(0, bytesRead).toString('utf8').split('\n')[0];
    return /"nonce":"([0-9a-f]{32})"/.exec(line)?.[1];
  } finally {
    await file.close();
  }
}

/** A non-finite value is named by its row in the compact matrix: name the row of the caller's expp instead. */
function renameRows(error: unknown, originalRow: (row: number) => number): unknown {
  if (!isHpairError(error) || error.code !== 'NON_FINITE') return error;
  const message = error.message.replace(/expp\[(\d+), /g, (_, row: string) => `expp[${originalRow(Number(row))}, `);
  return new HpairError('NON_FINITE', message, { cause: error });
}

