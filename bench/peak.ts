// The machine's limit for the bench's "% of peak": the native addon's FMA peak probe (each path file's probe in kernel/native/src, peak_loop.h),
// per ISA, on one thread and on several worker threads at once. Concurrent threads matter: cores that share a
// power budget, or vCPUs that share a host core, run slower together than one alone, so the peak of a row on W
// workers is the sum measured with W threads running at the same moment, not W times the one-thread figure.
// Each measurement is repeated and the best kept: other load only ever lowers a peak, never raises it.
import { loadNativeAddon, nativeAddonPath, type NativePathName } from '../kernel/native/addon.js';
import { withProbeWorkers } from './probe-threads.js';

export interface PeakMeasurement {
  isa: NativePathName;
  threads: number;
  /** Sum over the threads of their FMA rate in the best repetition, GFLOP/s (double precision). */
  gflops: number;
  /** The best repetition's per-thread rates, GFLOP/s. */
  perThread: number[];
  /** Every repetition's sum, GFLOP/s, in order. */
  repetitions: number[];
  /** Each thread's timed run, s. */
  seconds: number;
}

export interface PeakReport {
  peaks: PeakMeasurement[];
  /** Why no peak was measured (no native addon, or an addon without the probe), if none was. */
  unavailable?: string;
}

export interface PeakOptions {
  /** Thread counts to measure (1 is always measured). */
  threads: readonly number[];
  /** Each thread's timed run, s. */
  seconds: number;
  repetitions: number;
}

// CommonJS (an eval worker): loads the addon by path, warms the FMA units (clocks and the wide-vector power state
// settle before the timed run), says it is ready, waits for every thread to be ready, then runs the timed probe.
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const addon = require(workerData.addon);
parentPort.on('message', ({ isa, seconds, flag }) => {
  try {
    const go = new Int32Array(flag);
    addon.fmaPeak(isa, Math.min(seconds, 0.05));
    parentPort.postMessage({ ready: true });
    Atomics.wait(go, 0, 0);
    parentPort.postMessage({ rate: addon.fmaPeak(isa, seconds) });
  } catch (error) {
    parentPort.postMessage({ error: String(error && error.message || error) });
  }
});
`;

/** The FMA peak of every ISA the addon can run here, on each thread count, in worker threads. */
export async function measurePeaks(options: PeakOptions): Promise<PeakReport> {
  const { addon, reason } = loadNativeAddon();
  if (addon === undefined) return { peaks: [], unavailable: reason };
  if (typeof (addon as { fmaPeak?: unknown }).fmaPeak !== 'function') return { peaks: [], unavailable: 'the built addon has no fmaPeak (rebuild it: node kernel/native/install.mjs)' };
  const isas = addon
    .info()
    .paths.filter((path) => path.supported)
    .map((path) => path.name);
  const counts = [...new Set([1, ...options.threads])].sort((a, b) => a - b);
  const peaks: PeakMeasurement[] = [];
  await withProbeWorkers(WORKER_SOURCE, Math.max(...counts), nativeAddonPath(), async (probe) => {
    for (const isa of isas) {
      for (const threads of counts) {
        const run = await probe(threads, options.repetitions, () => ({ isa, seconds: options.seconds }));
        peaks.push({ isa, threads, gflops: run.total / 1e9, perThread: run.perThread.map((rate) => rate / 1e9), repetitions: run.repetitions.map((rate) => rate / 1e9), seconds: options.seconds });
      }
    }
  }, 'FMA peak probe');
  return { peaks };
}

/**
 * The peak a row is set against, on the row's thread count: its own ISA's for a native kernel (`native-avx2`
 * against the AVX2 peak), else the machine's best ISA (the limit: what the WebAssembly and js kernels, and the
 * BLAS peers, could reach). Undefined when that thread count was not measured.
 */
export function peakFor(peaks: readonly PeakMeasurement[], kernel: string, threads: number): PeakMeasurement | undefined {
  const own = /^native-(.+)$/.exec(kernel)?.[1];
  const candidates = peaks.filter((p) => p.threads === threads && (own === undefined || p.isa === own));
  return candidates.reduce<PeakMeasurement | undefined>((best, p) => (best === undefined || p.gflops > best.gflops ? p : best), undefined);
}
