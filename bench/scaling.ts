// 1 → N workers measured as a paired ratio. The main groups measure one worker count at a time, so "vs 1 worker"
// divides medians taken a minute or more apart (several minutes at N = 4096), and a shared host's drift falls
// straight into it. Here the 1-worker and N-worker pools (and zherk into c on 1 and N BLAS threads) take turns
// within every round, and the ratio is also taken round by round.
import { createComplexMatrix, createPool, type ComplexMatrix, type KernelVariant, type Pool } from 'hpair';
import { interleaved, type InterleavedEntry } from './interleave.js';
import { shapeName } from './options.js';
import type { PythonPeer } from './python-peer.js';
import { pairedRatio, progress, ratio, summarize } from './stats.js';

export interface ScalingRow {
  n: number;
  m: number;
  what: string;
  workers: number;
  /** Median of the 1-worker samples over the median of the N-worker ones. */
  ratio: number;
  /** Median over rounds of that round's ratio. */
  paired?: number;
  rounds: number;
}

export interface ScalingInput {
  /** The shape: N rows, M columns of expp. */
  n: number;
  m: number;
  expp: ComplexMatrix;
  distance: Float64Array;
  kernel: KernelVariant;
  workers: number;
  /** The Python peer with this size loaded and zherk available, or undefined. */
  zherk: PythonPeer | undefined;
  minSamples: number;
  timeSeconds: number;
  settleMs: number;
  /** Receives each sample's output, so that none can be skipped. */
  consume: (value: number) => void;
}

export async function pairedScaling(input: ScalingInput): Promise<ScalingRow[]> {
  const { n, m, expp, distance, kernel, workers, zherk, consume } = input;
  const counts = [1, workers];
  const pools: Pool[] = [];
  const out = createComplexMatrix(n - 1, n - 1);
  // Entries in pairs, 1 then `workers`, each pair under one name.
  const entries: InterleavedEntry[] = [];
  const names: string[] = [];
  try {
    names.push(`hpair ${kernel} into out`);
    for (const count of counts) {
      const pool = createPool({ workers: count, kernel, inlineFlops: 0 });
      await pool.ready();
      pools.push(pool);
      entries.push({
        what: `${names[0]}, ${count} worker${count === 1 ? '' : 's'}`,
        side: 'hpair',
        samples: [],
        fn: async () => {
          consume((await pool.hermitian(expp, distance, { out })).data[0]);
          return undefined;
        },
      });
    }
    if (zherk !== undefined) {
      names.push('scipy zherk into c');
      for (const count of counts) {
        entries.push({
          what: `${names[1]}, ${count} thread${count === 1 ? '' : 's'}`,
          side: 'python',
          samples: [],
          fn: async () => {
            await zherk.threads(count); // outside the time: Python times the BLAS call alone
            const sample = await zherk.run('zherk-into');
            consume(sample.checksum);
            return { overriddenDuration: sample.ms };
          },
        });
      }
    }
    const label = `${shapeName({ n, m })}, 1 and ${workers} workers paired`;
    await interleaved(label, entries, { minSamples: input.minSamples, timeSeconds: input.timeSeconds, settleMs: input.settleMs });
    const rows: ScalingRow[] = [];
    for (const [pair, what] of names.entries()) {
      const [one, many] = [entries[2 * pair], entries[2 * pair + 1]];
      const row: ScalingRow = {
        n,
        m,
        what,
        workers,
        ratio: summarize(one.samples).median / summarize(many.samples).median,
        paired: pairedRatio(many.rounds, one.rounds),
        rounds: one.rounds?.length ?? 0,
      };
      rows.push(row);
      progress(`${label}: ${row.what} 1 → ${workers}: ${ratio(row.ratio)} (paired ${ratio(row.paired) || '–'}, ${row.rounds} rounds)`);
    }
    return rows;
  } finally {
    for (const pool of pools) await pool.close();
  }
}
