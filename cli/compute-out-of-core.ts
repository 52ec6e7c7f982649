import { readFileSync } from 'node:fs';
import { totalmem } from 'node:os';
import { hermitianJobBytes } from '../kernel/hermitian-size.js';
import type { Accuracy, KernelChoice } from '../kernel/kernel-names.js';
import { resolveKernel } from '../kernel/variants.js';
import { HpairError } from '../shared/errors.js';
import { openNpyInput } from '../io/npy-file.js';
import { createPool } from '../workers/create-pool.js';
import type { PoolOptions } from '../workers/options.js';
import { interceptSignals, onSignal, SIGNAL_EXIT_CODES, type HandledSignal } from './signals.js';
import { computeToNpy, type OutOfCoreProgress, type OutOfCoreSummary } from '../blocks/compute.js';
import { releaseHeldLocksSync } from '../blocks/output-guard.js';
import { formatBytes, MAX_WORKER_VIEW_BYTES, parseByteSize } from '../blocks/plan.js';

/**
 * `hpair compute` out of core: what cli/main.ts calls when --max-memory is given or H would not fit in memory.
 * Owns its pool, its progress bar and its signals (SIGINT, SIGTERM or SIGHUP: the block being computed is
 * abandoned, blocks already written are journaled, the lock is released, one line says so, exit 130, 143 or
 * 129; a second signal releases the lock and exits at once).
 */
export interface OutOfCoreCommand {
  readonly expp: string;
  readonly distance: string;
  readonly out: string;
  /** --max-memory as typed (e.g. '64M'); undefined when out of core was chosen automatically. */
  readonly maxMemory: string | undefined;
  /** Why out of core was chosen, for the summary (outOfCoreReason). */
  readonly reason: string;
  readonly workers: number | undefined;
  readonly kernel: string | undefined;
  readonly accuracy?: string | undefined;
  readonly json: boolean;
}

/**
 * Whether `hpair compute` goes out of core, and why (a few words), or undefined to compute in memory: when
 * --max-memory is given, or when the in-memory run would need more than half of this machine's memory (the
 * pool's default maxBytes: the file read whole, expp, H and the kernel's scratch), or when H or expp is larger
 * than one buffer a worker can be handed (MAX_WORKER_VIEW_BYTES). An unreadable expp is left to the in-memory path to report.
 */
export async function outOfCoreReason(exppPath: string, maxMemory: string | undefined, kernel: string | undefined, workers: number | undefined): Promise<string | undefined> {
  if (maxMemory !== undefined) return `--max-memory ${maxMemory}`;
  let rows: number;
  let cols: number;
  let fileBytes: number;
  try {
    const input = await openNpyInput(exppPath, { name: '--expp' });
    ({ rows, cols, fileBytes } = input);
    await input.close();
  } catch {
    return undefined;
  }
  const n = Math.max(0, rows - 1);
  // In memory, H and expp each cross to the workers whole, as one view: past MAX_WORKER_VIEW_BYTES it would
  // arrive cut short.
  if (16 * n * n > MAX_WORKER_VIEW_BYTES) return `H (${n}×${n}, ${formatBytes(16 * n * n)}) is larger than one buffer a worker can be handed (4 GiB)`;
  if (16 * rows * cols > MAX_WORKER_VIEW_BYTES) return `expp (${rows}×${cols}, ${formatBytes(16 * rows * cols)}) is larger than one buffer a worker can be handed (4 GiB)`;
  let panels = 0;
  try {
    panels = hermitianJobBytes(rows, cols, resolveKernel((kernel ?? 'auto') as KernelChoice).variant.name, workers ?? 1).panels;
  } catch {
    return undefined; // a bad --kernel is reported by the in-memory path
  }
  const inMemory = fileBytes + 16 * rows * cols + 16 * n * n + panels;
  const limit = totalmem() / 2;
  if (inMemory > limit) return `in memory it would take ${formatBytes(inMemory)}, over half of this machine's ${formatBytes(totalmem())}`;
  return undefined;
}

export async function computeOutOfCore(command: OutOfCoreCommand): Promise<void> {
  let maxMemory: number | undefined;
  if (command.maxMemory !== undefined) {
    try {
      maxMemory = parseByteSize(command.maxMemory);
    } catch (error) {
      throw new HpairError('INVALID_ARGUMENT', `--max-memory: ${(error as Error).message}`);
    }
  }
  const options: PoolOptions = {};
  if (command.workers !== undefined) options.workers = command.workers;
  if (command.kernel !== undefined) options.kernel = command.kernel as KernelChoice;
  if (command.accuracy !== undefined) options.accuracy = command.accuracy as Accuracy;
  const pool = createPool(options);
  const controller = new AbortController();
  let signalled: HandledSignal | undefined;
  const bar = progressBar(process.stderr.isTTY === true && !command.json);
  // SIGINT, SIGTERM or SIGHUP: the block being computed is abandoned, those written are journaled, the lock is
  // released as computeToNpy returns. A second signal exits at once, removing the lock on the way out.
  const forgetCleanup = onSignal(() => {
    bar.finish();
    releaseHeldLocksSync();
  });
  const stopHandling = interceptSignals((name) => {
    signalled = name;
    bar.note('stopping: finishing the block being written…');
    controller.abort(new Error(name));
  });
  try {
    await pool.ready();
    const summary = await computeToNpy(pool, {
      expp: command.expp,
      distance: command.distance,
      out: command.out,
      ...(maxMemory === undefined ? {} : { maxMemory }),
      signal: controller.signal,
      onProgress: bar.update,
      names: { expp: '--expp', distance: '--distance', out: '--out' },
    });
    bar.finish();
    report(summary, command);
  } catch (error) {
    bar.finish();
    if (signalled !== undefined && error instanceof HpairError && error.code === 'ABORTED') {
      const text = `hpair: ${error.message.replace(/^interrupted/, `interrupted by ${signalled}`)}\n`;
      // After SIGHUP the terminal may be gone: the exit code still tells.
      try {
        process.stderr.write(text);
      } catch {
        // nowhere to write
      }
      process.exitCode = SIGNAL_EXIT_CODES[signalled];
      return;
    }
    throw error;
  } finally {
    stopHandling();
    forgetCleanup();
    await pool.close({ abort: true });
  }
}

/**
 * This process's peak resident memory. On Linux from /proc (VmHWM): getrusage's maxRSS survives exec, so a
 * process started by a big parent reports the parent's size.
 */
function peakRssBytes(): number {
  try {
    const kb = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync('/proc/self/status', 'utf8'))?.[1];
    if (kb !== undefined) return Number(kb) * 1024;
  } catch {
    // not Linux
  }
  return process.resourceUsage().maxRSS * 1024;
}

function report(summary: OutOfCoreSummary, command: OutOfCoreCommand): void {
  const peak = peakRssBytes();
  if (summary.recomputed.length > 0) {
    process.stderr.write(
      `hpair: blocks ${summary.recomputed.join(', ')} of ${command.out}.partial did not match the checksums recorded when they were written (the file or its journal was changed); they were computed again\n`,
    );
  }
  if (command.json) {
    const { N, M, workers, kernel, accuracy, seconds, gflops, blockSize, blocks, computed, skipped, recomputed, maxMemory } = summary;
    process.stdout.write(`${JSON.stringify({ n: N, m: M, workers, kernel, accuracy, seconds, gflops, outOfCore: true, blockSize, blocks, computed, skipped, recomputed, maxMemory, peakRssBytes: peak })}\n`);
    return;
  }
  const { N, M, n, workers, seconds, gflops } = summary;
  const resumed = summary.skipped === 0 ? '' : `, ${summary.skipped} already in the journal`;
  process.stdout.write(
    `wrote ${command.out} (out of core: ${command.reason})\n` +
      `  size      N = ${N}, M = ${M}  →  H is ${n}×${n} (${formatBytes(summary.outBytes)} on disk)\n` +
      `  blocks    ${summary.blocks} of ${summary.blockSize} rows: ${summary.computed} computed${resumed}\n` +
      `  memory    budget ${formatBytes(summary.maxMemory)}, one job ${formatBytes(summary.memory.total)}, peak RSS ${formatBytes(peak)}\n` +
      `  workers   ${workers}\n` +
      `  kernel    ${summary.kernel}\n` +
      `  accuracy  ${summary.accuracy}\n` +
      `  time      ${seconds.toFixed(3)} s  (${gflops.toFixed(2)} GFLOP/s useful, reading and writing included)\n`,
  );
}

/** A one-line bar with the blocks done and an ETA, on stderr when it is a terminal; shown once a run passes a second. */
function progressBar(enabled: boolean): { update: (progress: OutOfCoreProgress) => void; note: (text: string) => void; finish: () => void } {
  if (!enabled) return { update: () => undefined, note: () => undefined, finish: () => undefined };
  let shown = false;
  let lastDraw = 0;
  let last: OutOfCoreProgress | undefined;
  let suffix = '';
  const draw = (progress: OutOfCoreProgress): void => {
    const { pairs, pairsDone, pairsSkipped, elapsedMs, blocks, blocksDone, blocksSkipped } = progress;
    const fraction = pairs === 0 ? 1 : pairsDone / pairs;
    const width = 30;
    const filled = Math.round(fraction * width);
    const computedPairs = pairsDone - pairsSkipped;
    const eta = computedPairs > 0 ? ((pairs - pairsDone) * elapsedMs) / computedPairs : undefined;
    const resumed = blocksSkipped > 0 ? ` (${blocksSkipped} resumed)` : '';
    const text = `  [${'#'.repeat(filled)}${' '.repeat(width - filled)}] ${(100 * fraction).toFixed(0).padStart(3)}%  blocks ${blocksDone}/${blocks}${resumed}  ${formatDuration(elapsedMs)}${eta === undefined ? '' : `  ETA ${formatDuration(eta)}`}${suffix}`;
    process.stderr.write(`\r\x1b[2K${text}`);
    shown = true;
  };
  return {
    update(progress) {
      last = progress;
      const now = performance.now();
      if (progress.elapsedMs < 1000 || now - lastDraw < 200) return;
      lastDraw = now;
      draw(progress);
    },
    note(text) {
      suffix = `  ${text}`;
      if (last !== undefined) draw(last);
    },
    finish() {
      if (shown) process.stderr.write('\r\x1b[2K');
      shown = false;
    },
  };
}

function formatDuration(ms: number): string {
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, '0')} s`;
  return `${Math.floor(s / 3600)} h ${String(Math.floor((s % 3600) / 60)).padStart(2, '0')} min`;
}
