// What the main thread did while a job ran, in terms that do not depend on how fast or how busy the host is:
// its CPU time against the whole process's. A test compares these with the job itself, never with a fixed
// number of milliseconds (timings live in `npm run bench:event-loop`).
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';

/**
 * CPU time of this process's main thread in ms, from Linux's per-thread /proc stat (utime + stime, in the
 * kernel's fixed 100 Hz user ticks); undefined elsewhere. Node 20 has no per-thread CPU clock of its own.
 */
function mainThreadCpuMs(): number | undefined {
  try {
    const stat = readFileSync(`/proc/self/task/${process.pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) * 10;
  } catch {
    return undefined;
  }
}

export interface MainThreadShare<T> {
  value: T;
  /** Wall time of the whole job. */
  elapsedMs: number;
  /** The main thread's event loop was busy this long (performance.eventLoopUtilization's `active`). */
  activeMs: number;
  /**
   * CPU time of the main thread over the job (10 ms resolution); where the OS does not say, the event loop's
   * busy time stands in for it.
   */
  mainCpuMs: number;
  /** CPU time of the whole process (every thread) over the job. */
  processCpuMs: number;
}

export async function observeMainThread<T>(work: () => Promise<T>): Promise<MainThreadShare<T>> {
  const loop = performance.eventLoopUtilization();
  const cpu = process.cpuUsage();
  const mainCpu = mainThreadCpuMs();
  const started = performance.now();
  const value = await work();
  const elapsedMs = performance.now() - started;
  const { user, system } = process.cpuUsage(cpu);
  const { active } = performance.eventLoopUtilization(loop);
  const mainNow = mainThreadCpuMs();
  const mainCpuMs = mainCpu !== undefined && mainNow !== undefined ? mainNow - mainCpu : active;
  return { value, elapsedMs, activeMs: active, mainCpuMs, processCpuMs: (user + system) / 1000 };
}

/** One line for a test's log: what was observed, so a failure can be read without re-running. */
export function describeShare(what: string, share: MainThreadShare<unknown>): string {
  return `${what}: job ${share.elapsedMs.toFixed(0)} ms, process CPU ${share.processCpuMs.toFixed(0)} ms, main thread CPU ${share.mainCpuMs.toFixed(0)} ms (its loop busy ${share.activeMs.toFixed(0)} ms)`;
}
