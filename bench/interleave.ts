// Interleaved sampling with tinybench: every entry gets samples in turn, round after round, so drift on a
// shared host (another process, frequency changes) falls on all entries alike and their ratios hold.
import { Bench } from 'tinybench';
import { ms, progress, summarize } from './stats.js';

export interface InterleavedEntry {
  what: string;
  /** Which side of the comparison runs it; switching sides may pause (settleMs). */
  side: string;
  /** One sample. Return `{ overriddenDuration }` to report a time measured elsewhere (a Python peer's own). */
  fn: () => Promise<{ overriddenDuration: number } | undefined>;
  samples: number[];
  /** The median of each round's block, in round order: for ratios paired round by round. */
  rounds?: number[];
}

export interface InterleaveOptions {
  minSamples: number;
  /** Keep sampling past minSamples until the group has run this long. */
  timeSeconds: number;
  /**
   * Idle pause whenever the run switches side. OpenBLAS's threads spin (sched_yield) for a while after each
   * call before they sleep, so an hpair sample started right after a numpy sample shares the cores with them
   * (`--settle 0` shows it in the small sizes' hpair rows). Pausing on every switch, either way, starts both
   * sides from idle. The Python side is two sides when numpy and scipy bundle an OpenBLAS copy each: each copy
   * has its own threads.
   */
  settleMs: number;
  /** Target length of one entry's block of samples in a round, ms (default 100). */
  blockMs?: number;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Warms each entry twice (once when it takes over a second), then runs rounds until every entry has minSamples and the group has run
 * timeSeconds. A round gives each entry, in an order rotated every round, one tinybench run of k samples, k
 * sized from the warm-up so the block lasts ~blockMs (1 sample for big jobs, more for small ones).
 */
export async function interleaved(label: string, entries: InterleavedEntry[], options: InterleaveOptions): Promise<void> {
  const warm: number[] = entries.map(() => Infinity);
  let previous: InterleavedEntry | undefined;
  const switchTo = async (entry: InterleavedEntry): Promise<void> => {
    if (previous !== undefined && previous.side !== entry.side && options.settleMs > 0) await sleep(options.settleMs);
    previous = entry;
  };
  progress(`${label}: warming up ${entries.map((e) => e.what).join(', ')}`);
  for (let pass = 0; pass < 2; pass++) {
    for (const [i, entry] of entries.entries()) {
      if (pass === 1 && warm[i] > 1000) continue; // a second warm-up only sharpens k for short jobs
      await switchTo(entry);
      const t = performance.now();
      const result = await entry.fn();
      warm[i] = Math.min(warm[i], result?.overriddenDuration ?? performance.now() - t);
    }
  }
  const blockMs = options.blockMs ?? 100;
  const perRound = warm.map((w) => Math.max(1, Math.min(100, Math.floor(blockMs / Math.max(w, 0.01)))));
  const roundMs = warm.reduce((sum, w, i) => sum + w * perRound[i], 0);
  progress(`${label}: warmed up (${entries.map((e, i) => `${e.what} ${ms(warm[i])} ms`).join(', ')}); rounds of ~${(roundMs / 1000).toFixed(1)} s`);
  const started = performance.now();
  for (let round = 0; ; round++) {
    for (let r = 0; r < entries.length; r++) {
      const i = (r + round) % entries.length;
      const entry = entries[i];
      await switchTo(entry);
      const bench = new Bench({ iterations: perRound[i], time: 0, warmup: false, retainSamples: true, throws: true });
      bench.add(entry.what, entry.fn, { async: true });
      await bench.run();
      const result = bench.tasks[0].result;
      if (result.state !== 'completed') throw new Error(`${label} ${entry.what}: ${result.state}`);
      if (result.latency.samples === undefined) throw new Error(`${label} ${entry.what}: no samples retained`);
      entry.samples.push(...result.latency.samples);
      (entry.rounds ??= []).push(summarize(result.latency.samples).median);
    }
    const fewest = Math.min(...entries.map((e) => e.samples.length));
    const elapsed = (performance.now() - started) / 1000;
    if (roundMs > 2000) progress(`${label}: round ${round + 1} done (${fewest} samples each)`);
    if (fewest >= options.minSamples && (elapsed >= options.timeSeconds || round >= 200)) break;
  }
}
