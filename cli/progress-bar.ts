/**
 * A one-line progress bar on stderr: percent, ETA and useful GFLOP/s so far. The caller enables it only
 * when stderr is a terminal and --json is off, so piped or logged output stays clean. It appears once a
 * job has run for a second (short jobs never flash it), is redrawn at most every 100 ms, and is cleared
 * at the end, or by `clear()` when a signal ends the process mid-job.
 */
export interface ProgressBar {
  onProgress?: (done: number, total: number) => void;
  finish(): void;
}

export interface ProgressBarOptions {
  /** Useful flops of the whole job, for the throughput. */
  readonly flops: number;
  readonly stream?: { write(text: string): unknown; columns?: number };
  readonly now?: () => number;
  /** Before the first drawing (ms). */
  readonly delayMs?: number;
  /** Between drawings (ms). */
  readonly intervalMs?: number;
}

export function progressBar(enabled: boolean, options: ProgressBarOptions): ProgressBar {
  if (!enabled) return { finish: () => undefined };
  const { flops, stream = process.stderr, now = () => performance.now(), delayMs = 1000, intervalMs = 100 } = options;
  const started = now();
  let drawnAt = -Infinity;
  let shown = false;
  return {
    onProgress(done, total) {
      const time = now();
      const elapsed = time - started;
      if (elapsed < delayMs || total === 0 || done === 0 || time - drawnAt < intervalMs) return;
      drawnAt = time;
      const fraction = Math.min(1, done / total);
      const eta = (elapsed * (1 - fraction)) / fraction;
      const gflops = (flops * fraction) / (elapsed / 1000) / 1e9;
      const tail = ` ${(100 * fraction).toFixed(0).padStart(3)}%  ETA ${duration(eta)}  ${gflops.toFixed(1)} GFLOP/s`;
      const columns = stream.columns || 80; // 0 or undefined where the terminal does not say
      const width = Math.max(10, Math.min(40, columns - tail.length - 6));
      const filled = Math.round(fraction * width);
      stream.write(`\r\x1b[2K  [${'#'.repeat(filled)}${' '.repeat(width - filled)}]${tail}`);
      shown = true;
    },
    finish() {
      if (shown) stream.write('\r\x1b[2K');
      shown = false;
    },
  };
}

/** 7s, 2m05s, 1h02m. */
function duration(ms: number): string {
  const seconds = Math.max(0, Math.round(ms / 1000));
  if (seconds < 60) return `${seconds}s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m${String(seconds % 60).padStart(2, '0')}s`;
  return `${Math.floor(seconds / 3600)}h${String(Math.floor((seconds % 3600) / 60)).padStart(2, '0')}m`;
}
