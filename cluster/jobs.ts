// What travels through the queue: one job per lower-triangle block of H, named by its run and block, so
// that adding a block twice is a no-op and a re-run finds the jobs of its own run.
import { createHash } from 'node:crypto';
import type { JobFingerprint } from '../blocks/journal.js';
import type { Accuracy, KernelVariant } from '../kernel/kernel-names.js';

/** The queue's name when none is given. */
export const DEFAULT_QUEUE = 'hpair';
/** The job's name in BullMQ (every job of hpair's queue has it). */
export const BLOCK_JOB = 'hpair-block';
/** Version of the job data below: a worker refuses other versions (UnrecoverableError), so one that would not
 * honour `accuracy`, or would sum a block by an earlier method of either accuracy (kernel-names.ts
 * summationStamp), never computes a block of a run. */
export const JOB_DATA_VERSION = 4;

/** One block job's data: where everything is (paths every machine sees), and which rectangle to compute. */
export interface BlockJobData {
  v: typeof JOB_DATA_VERSION;
  /** The run (a hash of the job's fingerprint, the output and the run's nonce): job ids start with it. */
  run: string;
  /** The run's nonce, as the output's journal names it: a worker writes only while the journal still does. */
  nonce: string;
  /** The output's journal (beside `partial`). */
  journal: string;
  /** Each input's size and SHA-256 as the submitter read them: a worker that sees other bytes refuses the run. */
  inputs: { expp: InputIdentity; distance: InputIdentity };
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

export interface InputIdentity {
  bytes: number;
  sha256: string;
}

/** What a worker returns for a finished block. */
export interface BlockJobResult {
  /** SHA-256 of the block's bytes as computed and written, mirror included (blocks/integrity.ts blockChecksum). */
  checksum: string;
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
 * The run's id: the job (inputs with their digests, shape, kernel, block size), the output, and the nonce its
 * journal was created with. A run that resumes that journal has the same id and finds its jobs; a run started
 * afresh (no journal) draws a new nonce, so it never takes an earlier run's finished jobs for its own.
 */
export function runId(fingerprint: JobFingerprint, out: string, nonce: string): string {
  return createHash('sha256').update(JSON.stringify({ fingerprint, out, nonce })).digest('hex').slice(0, 16);
}

/** A string beside the queue's keys naming the run that currently writes `out` (so a new run can remove the old one's jobs). */
export function outputKey(out: string): string {
  return `hpair-output:${createHash('sha256').update(out).digest('hex').slice(0, 16)}`;
}

/** A hash beside the queue's keys: the workers that refused `run` (field: worker name, value: why). */
export function refusedKey(run: string): string {
  return `hpair-refused:${run}`;
}

/** Useful flops of one block: 8·(m − 1) per lower-triangle entry it holds (its mirrors are free). */
export function blockFlops(block: { rows: readonly [number, number]; cols: readonly [number, number] }, m: number): number {
  const [i0, i1] = block.rows;
  const [j0, j1] = block.cols;
  let entries = 0;
  for (let i = i0; i < i1; i++) entries += Math.max(0, Math.min(j1, i + 1) - j0);
  return 8 * Math.max(0, m - 1) * entries;
}
