/**
 * A one-line progress bar on stderr, shown only when stdout is a terminal and only once a job has run
 * for a second (short jobs and piped or --json output stay clean).
 */
export function progressBar(enabled: boolean): { onProgress?: (done: number, total: number) => void; finish(): void } {
  if (!enabled) return { finish: () => undefined };
  const started = performance.now();
  let shown = false;
  return {
    onProgress(done, total) {
      if (performance.now() - started < 1000 || total === 0) return;
      const width = 30;
      const filled = Math.round((done / total) * width);
      process.stderr.write(`\r  [${'#'.repeat(filled)}${' '.repeat(width - filled)}] ${((100 * done) / total).toFixed(0).padStart(3)}%`);
      shown = true;
    },
    finish() {
      if (shown) process.stderr.write('\r\x1b[2K');
    },
  };
}
