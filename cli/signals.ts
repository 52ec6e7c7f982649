import { removeLiveTemps } from './atomic-write.js';
import { CliFailure } from './errors.js';

/**
 * SIGINT, SIGTERM and SIGHUP (a closed terminal or SSH session) end the CLI cleanly at any point, in memory and
 * out of core alike: the progress bar is cleared, an unfinished temporary --out file is removed (the file it
 * was to replace stays as it was), locks are released, one line (or one JSON object) says so, and the exit code
 * is the shell's convention for the signal, 128 + its number.
 */
export const SIGNAL_EXIT_CODES = { SIGHUP: 129, SIGINT: 130, SIGTERM: 143 } as const;
export type HandledSignal = keyof typeof SIGNAL_EXIT_CODES;

const cleanups = new Set<() => void>();

/** Runs `cleanup` (synchronously) if a signal ends the process; returns the function that unregisters it. */
export function onSignal(cleanup: () => void): () => void {
  cleanups.add(cleanup);
  return () => cleanups.delete(cleanup);
}

function runCleanups(): number {
  for (const cleanup of cleanups) {
    try {
      cleanup();
    } catch {
      // a cleanup that fails must not stop the others or the exit
    }
  }
  return removeLiveTemps();
}

/** The in-memory CLI: the first signal runs the cleanups, reports, and exits. */
export function handleSignals(report: (failure: CliFailure) => void): void {
  for (const [signal, code] of Object.entries(SIGNAL_EXIT_CODES)) {
    process.once(signal, () => {
      const removed = runCleanups();
      const what = removed > 0 ? '; removed the unfinished --out file' : '';
      report(new CliFailure('INTERRUPTED', `interrupted by ${signal}${what}`, code));
      process.exit(code);
    });
  }
}

/**
 * Out of core, where stopping takes a moment (the block being written is finished and journaled): the first
 * signal calls `stop` and the caller winds down and reports; a second one runs the cleanups (which release the
 * output's lock), says so on stderr, and exits at once. Returns the function that removes the handlers.
 */
export function interceptSignals(stop: (signal: HandledSignal) => void): () => void {
  let first: HandledSignal | undefined;
  const handlers = Object.keys(SIGNAL_EXIT_CODES).map((name) => {
    const signal = name as HandledSignal;
    const handler = (): void => {
      if (first === undefined) {
        first = signal;
        // A hung-up terminal fails writes asynchronously (EIO, EPIPE): that must not end the wind-down.
        if (signal === 'SIGHUP') for (const stream of [process.stdout, process.stderr]) stream.on('error', () => undefined);
        stop(signal);
        return;
      }
      runCleanups();
      try {
        process.stderr.write(`hpair: interrupted by ${signal} again while stopping: exited at once; blocks journaled so far are kept, run the same command again to resume\n`);
      } catch {
        // no terminal left to write to (SIGHUP)
      }
      process.exit(SIGNAL_EXIT_CODES[signal]);
    };
    process.on(signal, handler);
    return [signal, handler] as const;
  });
  return () => {
    for (const [signal, handler] of handlers) process.off(signal, handler);
  };
}

/**
 * The cluster commands: the first SIGINT or SIGTERM calls `stop` (a worker gives its running block back, a
 * submit aborts) and a second one exits at once with the signal's code. Returns the function that removes the
 * handlers.
 */
export function stopOnSignal(stop: (signal: 'SIGINT' | 'SIGTERM') => void): () => void {
  let stopped = false;
  const handlers = (['SIGINT', 'SIGTERM'] as const).map((signal) => {
    const handler = (): void => {
      if (stopped) process.exit(SIGNAL_EXIT_CODES[signal]);
      stopped = true;
      stop(signal);
    };
    process.on(signal, handler);
    return [signal, handler] as const;
  });
  return () => {
    for (const [signal, handler] of handlers) process.off(signal, handler);
  };
}
