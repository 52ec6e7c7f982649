import { removeLiveTemps } from './atomic-write.js';
import { CliFailure } from './errors.js';

/**
 * SIGINT, SIGTERM and SIGHUP end the CLI cleanly at any point: the progress bar is cleared, an unfinished
 * temporary --out file is removed (the file it was to replace stays as it was), one line (or one JSON
 * object) says so, and the exit code is the shell's convention for the signal, 128 + its number.
 */
const EXIT_CODES = { SIGHUP: 129, SIGINT: 130, SIGTERM: 143 } as const;

const cleanups = new Set<() => void>();

/** Runs `cleanup` (synchronously) if a signal ends the process; returns the function that unregisters it. */
export function onSignal(cleanup: () => void): () => void {
  cleanups.add(cleanup);
  return () => cleanups.delete(cleanup);
}

export function handleSignals(report: (failure: CliFailure) => void): void {
  for (const [signal, code] of Object.entries(EXIT_CODES)) {
    process.once(signal, () => {
      for (const cleanup of cleanups) {
        try {
          cleanup();
        } catch {
          // a cleanup that fails must not stop the others or the exit
        }
      }
      const removed = removeLiveTemps();
      const what = removed > 0 ? '; removed the unfinished --out file' : '';
      report(new CliFailure('INTERRUPTED', `interrupted by ${signal}${what}`, code));
      process.exit(code);
    });
  }
}
