// What the first job of a process pays: `hpair compute … --json` in fresh processes (its reported `seconds` is
// the job alone, after pool.ready()), against the same job on a warm pool in this process (default kernel and
// workers, a new H per job, as the CLI runs it), and this process's own first job on a new pool. Whatever the
// first job pays once and ready() did not (addon load, first-call compilation, scratch, the memory thread)
// shows as cold over warm.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createPool, type ComplexMatrix } from 'hpair';
import { summarize, type Summary } from './stats.js';

const CLI = fileURLToPath(new URL('../cli.js', import.meta.url));

export interface ColdStart {
  n: number;
  m: number;
  kernel?: string;
  /** `hpair compute` in fresh processes: each one's reported job time, ms. */
  cliMs: number[];
  cli?: Summary;
  /** The first job on a new pool in this process (after ready()), ms, once per repetition. */
  firstJobMs: number[];
  /** Later jobs on a warm pool, ms. */
  warm: Summary;
  /** Median of the CLI's job over the warm median. */
  coldOverWarm?: number;
  errors: string[];
}

/** `dir` holds expp.npy and distance.npy of the problem `expp`, `distance` (N×M). */
export async function coldStart(dir: string, expp: ComplexMatrix, distance: Float64Array, repetitions: number, consume: (value: number) => void): Promise<ColdStart> {
  const errors: string[] = [];
  const cliMs: number[] = [];
  let kernel: string | undefined;
  for (let r = 0; r < repetitions; r++) {
    const run = spawnSync(process.execPath, [CLI, 'compute', '--expp', join(dir, 'expp.npy'), '--distance', join(dir, 'distance.npy'), '--out', join(dir, 'h-cold.npy'), '--json'], {
      encoding: 'utf8',
      maxBuffer: 1 << 24,
    });
    if (run.status !== 0) {
      errors.push(`hpair compute failed (${run.status ?? run.signal}): ${run.stderr.trim().split('\n')[0]}`);
      continue;
    }
    const json = JSON.parse(run.stdout) as { seconds: number; kernel: string; checksum: number };
    cliMs.push(json.seconds * 1000);
    kernel = json.kernel;
    consume(json.checksum);
  }
  const firstJobMs: number[] = [];
  const warmMs: number[] = [];
  for (let r = 0; r < repetitions; r++) {
    const pool = createPool();
    try {
      await pool.ready();
      let started = performance.now();
      consume((await pool.hermitian(expp, distance)).data[0]);
      firstJobMs.push(performance.now() - started);
      if (r === 0) {
        for (let i = 0; i < 20; i++) {
          started = performance.now();
          consume((await pool.hermitian(expp, distance)).data[0]);
          warmMs.push(performance.now() - started);
        }
      }
    } finally {
      await pool.close();
    }
  }
  const warm = summarize(warmMs);
  const cli = cliMs.length > 0 ? summarize(cliMs) : undefined;
  return { n: expp.rows, m: expp.cols, kernel, cliMs, cli, firstJobMs, warm, coldOverWarm: cli === undefined ? undefined : cli.median / warm.median, errors };
}
