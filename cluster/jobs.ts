// What travels through the queue: one job per lower-triangle block of H, named by its run and block, so
// that adding a block twice is a no-op and a re-run finds the jobs of its own run.
import { createHash } from 'node:crypto';
import { stat } from 'node:fs/promises';
import type { Accuracy, KernelVariant } from '../kernel/kernel-names.js';

/** The queue's name when none is given. */
export const DEFAULT_QUEUE = 'hpair';
/** The job's name in BullMQ (every job of hpair's queue has it). */
export const BLOCK_JOB = 'hpair-block';
/** Version of the job data below: a worker refuses other versions (UnrecoverableError), so one that would not
 * honour `accuracy` never computes a block of a compensated run. */
export const JOB_DATA_VERSION = 2;

/** One block job's data: where everything is (paths every machine sees), and which rectangle to compute. */
export interface BlockJobData {
  v: typeof JOB_DATA_VERSION;
  /** The submission (a hash of inputs, sizes, kernel and block size): job ids start with it. */
  run: string;
  /** Absolute paths on the shared storage. */
  expp: string;
  distance: string;
  /** The preallocated output being filled (not the final name: that appears only once every block is in). */
  partial: string;
  /** H is n×n; expp is (n + 1)×m. */
  n: number;
  m: number;
  /** Every block of a run uses this kernel, so that H is bit-identical to one machine's `hpair compute`. */
  kernel: KernelVariant;
  /** Every block of a run has this accuracy (PoolOptions.accuracy). */
  accuracy: Accuracy;
  block: { id: number; rows: [number, number]; cols: [number, number] };
  /** Identity of the preallocated output: a worker writes only into this file, never into a newer one. */
  file: { dev: number; ino: number; size: number };
}

/** What a worker returns for a finished block. */
export interface BlockJobResult {
  /** host:pid of the worker process. */
  worker: string;
  kernel: KernelVariant;
  /** Seconds reading rows, computing, writing block + mirror (and syncing). */
  read: number;
  compute: number;
  write: number;
}

/**
 * A hash beside the queue's keys where each worker process records the rate of its last block (field: its name,
 * value: { rate: flop/s, at: ms since the epoch }): `submit` sizes blocks from the rates the workers really reach.
 */
export const RATES_KEY = 'hpair-rates';

export function jobId(run: string, block: number): string {
  return `hp-${run}-${block}`;
}

/** The run a job id belongs to and its block, or undefined for a job of another kind. */
export function parseJobId(id: string | undefined): { run: string; block: number } | undefined {
  const match = /^hp-([0-9a-f]+)-(\d+)$/.exec(id ?? '');
  return match === null ? undefined : { run: match[1], block: Number(match[2]) };
}

/**
 * A submission's fingerprint: the inputs (path, size, modification time), the shape, the kernel and the
 * block size. Same fingerprint, same blocks, same bytes: a re-run may keep what the journal says is done.
 */
export async function runFingerprint(parts: { expp: string; distance: string; n: number; m: number; kernel: KernelVariant; blockSize: number }): Promise<{ fingerprint: string; run: string }> {
  const file = async (path: string): Promise<string> => {
    const info = await stat(path);
    return `${path}:${info.size}:${info.mtimeMs}`;
  };
  const fingerprint = [
    'hpair-cluster/1',
    `expp=${await file(parts.expp)}`,
    `distance=${await file(parts.distance)}`,
    `n=${parts.n}`,
    `m=${parts.m}`,
    `kernel=${parts.kernel}`,
    `block=${parts.blockSize}`,
  ].join(' ');
  return { fingerprint, run: createHash('sha256').update(fingerprint).digest('hex').slice(0, 16) };
}

/** Useful flops of one block: 8·(m − 1) per lower-triangle entry it holds (its mirrors are free). */
export function blockFlops(block: { rows: readonly [number, number]; cols: readonly [number, number] }, m: number): number {
  const [i0, i1] = block.rows;
  const [j0, j1] = block.cols;
  let entries = 0;
  for (let i = i0; i < i1; i++) entries += Math.max(0, Math.min(j1, i + 1) - j0);
  return 8 * Math.max(0, m - 1) * entries;
}
