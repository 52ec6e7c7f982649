import { chooseBlockSize, kernelTile } from '../blocks/index.js';
import type { KernelVariant } from '../kernel/kernel-names.js';

// The block size of a distributed run. Each block costs a fixed overhead besides its flops (the queue's round
// trips, reading its rows, starting a pool job, writing and syncing), so blocks must be big enough that the
// overhead is a small fraction of their compute; and small enough that there are several per worker
// (a killed or slow worker then costs little) and that a block fits a worker's memory budget.

/**
 * Overhead of one block apart from Redis round trips (s): writing and fdatasync'ing block and mirror, reading
 * rows, starting the pool job, and BullMQ's take and complete; `npm run bench:cluster` measures it on a machine,
 * and this is a round figure of such runs, used only to choose a block size before any worker has reported.
 */
export const FIXED_BLOCK_OVERHEAD_S = 0.011;
/** Redis round trips one block costs (take, lock renewals, complete, the submitter's harvest and remove). */
export const ROUND_TRIPS_PER_BLOCK = 12;
/**
 * A worker process's rate (useful flop/s) when none has been measured yet, by kernel: the low end of what two
 * threads do with a block of a few hundred rows (`npm run bench:cluster`), since a worker process often shares
 * its machine; the workers' measured rates replace it as soon as they report.
 */
export function assumedWorkerRate(kernel: KernelVariant): number {
  if (kernel.startsWith('native')) return 60e9;
  if (kernel === 'js') return 2e9;
  return 20e9;
}
/** The overhead may be at most this fraction of a block's compute time. */
export const OVERHEAD_FRACTION = 0.02;
/** At least this many blocks per worker process, for balance and cheap recovery. */
export const BLOCKS_PER_WORKER = 4;
/** A worker's memory budget for one block when none is given (bytes). */
export const DEFAULT_WORKER_MEMORY = 1024 * 1024 * 1024;

export interface ClusterBlockSizeInput {
  /** H is n×n; expp is (n + 1)×m. */
  n: number;
  m: number;
  /** Median Redis round trip seen by the submitter (s). */
  roundTrip: number;
  /** Worker processes connected to the queue (0 when none yet: taken as 2). */
  workers: number;
  /** A worker process's flop/s (submit takes the median the workers recorded). @default assumedWorkerRate(kernel) */
  rate?: number;
  /** A worker's memory for one block (rows read, the block, the kernel's scratch: blocks/ chooseBlockSize). @default 1 GiB */
  maxMemoryBytes?: number;
  /** The kernel every block runs on (its tile edge rounds the block; its scratch counts in memory). */
  kernel: KernelVariant;
  /** Threads of a worker's pool (per-thread scratch). @default 2 */
  threads?: number;
}

export interface ClusterBlockSize {
  blockSize: number;
  /** Estimated overhead of one block (s). */
  overhead: number;
  /** The worker rate it assumed (flop/s), and whether the workers measured it. */
  rate: number;
  rateMeasured: boolean;
  /** The smallest block whose overhead is ≤ OVERHEAD_FRACTION of its compute. */
  minForOverhead: number;
  /** The largest block that still gives BLOCKS_PER_WORKER blocks per worker. */
  maxForBalance: number;
  /** The largest block that fits the memory budget. */
  maxForMemory: number;
  why: string;
}

export function chooseClusterBlockSize(input: ClusterBlockSizeInput): ClusterBlockSize {
  const { n, m, kernel } = input;
  const tile = kernelTile(kernel);
  const rate = input.rate ?? assumedWorkerRate(kernel);
  const workers = Math.max(2, input.workers);
  const memory = input.maxMemoryBytes ?? DEFAULT_WORKER_MEMORY;
  const overhead = FIXED_BLOCK_OVERHEAD_S + ROUND_TRIPS_PER_BLOCK * input.roundTrip;
  // A b×b block below the diagonal is 8·(m − 1)·b² flops: b² ≥ overhead·rate / (fraction · 8(m − 1)).
  const minForOverhead = Math.ceil(Math.sqrt((overhead * rate) / (OVERHEAD_FRACTION * 8 * Math.max(1, m - 1))));
  // k = ⌈n / b⌉ block rows give k(k + 1)/2 blocks.
  const wanted = BLOCKS_PER_WORKER * workers;
  let k = 1;
  while ((k * (k + 1)) / 2 < wanted) k++;
  const maxForBalance = Math.max(1, Math.floor(n / k));
  const maxForMemory = n <= 1 ? 1 : chooseBlockSize(n + 1, m, memory, tile, { kernel, threads: input.threads ?? 2 });
  let b = Math.max(minForOverhead, maxForBalance);
  // A multiple of the tile (no tile is cut short inside a block): down when that keeps the overhead bound, else up.
  if (b > tile) b = Math.floor(b / tile) * tile >= minForOverhead ? Math.floor(b / tile) * tile : Math.ceil(b / tile) * tile;
  b = Math.min(b, maxForMemory, Math.max(1, n));
  const why =
    b === n
      ? 'one block holds H'
      : b === maxForMemory && b < Math.max(minForOverhead, maxForBalance)
        ? 'capped by the workers\u2019 memory'
        : maxForBalance >= minForOverhead
          ? `${BLOCKS_PER_WORKER} blocks per worker at most this big (overhead ≤ ${OVERHEAD_FRACTION * 100}% from ${minForOverhead})`
          : `overhead ≤ ${OVERHEAD_FRACTION * 100}% of compute`;
  return { blockSize: Math.max(1, b), overhead, rate, rateMeasured: input.rate !== undefined, minForOverhead, maxForBalance, maxForMemory, why };
}
