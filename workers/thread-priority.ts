import { readlinkSync } from 'node:fs';
import { getPriority, setPriority } from 'node:os';

/**
 * Lowers the calling thread's scheduling priority by `increment` nice steps (capped at 19), the pool's
 * workerNice.
 *
 * Linux only: there a nice value belongs to one thread, and setpriority on a thread id changes that thread
 * alone; elsewhere the same call would change the whole process, the caller's event loop included, so nothing
 * is changed. The thread id is the last part of /proc/thread-self. Only ever lowered, from the value the thread
 * inherited: raising a priority needs a privilege, and a process started under `nice` keeps its workers at least
 * as low as itself. A failure (no /proc, a sandbox refusing the call) leaves the priority as it was: the
 * setting is a courtesy to the event loop and never changes what a job computes.
 */
export function lowerThreadPriority(increment: number): void {
  if (process.platform !== 'linux' || !(increment > 0)) return;
  try {
    const tid = Number(readlinkSync('/proc/thread-self').split('/').pop());
    if (!Number.isSafeInteger(tid) || tid <= 0) return;
    const inherited = getPriority(tid);
    const target = Math.min(19, inherited + increment);
    if (target > inherited) setPriority(tid, target);
  } catch {
    // the priority stays as it was (above)
  }
}
