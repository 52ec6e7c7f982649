// The machine's write bandwidth, the limit of jobs whose time goes to writing H (few columns, a big H), as the
// FMA peak (bench/peak.ts) is the limit of jobs whose time goes to arithmetic: the native addon's writeBandwidth
// probe (kernel/native/src/bandwidth.c), on one thread and on several worker threads at once, each writing its own
// slice of one buffer larger than the caches, with ordinary stores and with streaming ones. The faster kind on a
// thread count is the limit a row on that many workers is set against. Each measurement is repeated and the best
// kept: other load only ever lowers a bandwidth, never raises it.
import { loadNativeAddon, nativeAddonPath } from '../kernel/native/addon.js';
import { withProbeWorkers } from './probe-threads.js';

export type StoreKind = 'store' | 'stream';

export interface BandwidthMeasurement {
  threads: number;
  kind: StoreKind;
  /** Sum over the threads of their write rate in the best repetition, bytes/s. */
  bytesPerSecond: number;
  /** The best repetition's per-thread rates, bytes/s. */
  perThread: number[];
  /** Every repetition's sum, bytes/s, in order. */
  repetitions: number[];
  /** Bytes each thread wrote over, and its timed run in s. */
  sliceBytes: number;
  seconds: number;
}

export interface BandwidthReport {
  measurements: BandwidthMeasurement[];
  /** Why nothing was measured (no native addon, or an addon without the probe), if nothing was. */
  unavailable?: string;
}

export interface BandwidthOptions {
  /** Thread counts to measure (1 is always measured). */
  threads: readonly number[];
  /** Each thread's timed run, s. */
  seconds: number;
  repetitions: number;
  /** Bytes each thread writes over: well above what the caches hold, so the writes reach memory. */
  sliceBytes: number;
}

// CommonJS (an eval worker): loads the addon by path, faults its slice in and warms up, says it is ready, waits for
// every thread to be ready, then runs the timed probe on its slice.
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const addon = require(workerData.addon);
parentPort.on('message', ({ buffer, offset, length, kind, seconds, flag }) => {
  try {
    const values = new Float64Array(buffer, offset, length);
    const streaming = kind === 'stream';
    addon.writeBandwidth(values, Math.min(seconds, 0.02), streaming);
    parentPort.postMessage({ ready: true });
    Atomics.wait(new Int32Array(flag), 0, 0);
    parentPort.postMessage({ rate: addon.writeBandwidth(values, seconds, streaming) });
  } catch (error) {
    parentPort.postMessage({ error: String(error && error.message || error) });
  }
});
`;

/** The write bandwidth with each kind of store on each thread count, in worker threads. */
export async function measureWriteBandwidth(options: BandwidthOptions): Promise<BandwidthReport> {
  const { addon, reason } = loadNativeAddon();
  if (addon === undefined) return { measurements: [], unavailable: reason };
  if (typeof (addon as { writeBandwidth?: unknown }).writeBandwidth !== 'function') {
    return { measurements: [], unavailable: 'the built addon has no writeBandwidth (rebuild it: node kernel/native/install.mjs)' };
  }
  const counts = [...new Set([1, ...options.threads])].sort((a, b) => a - b);
  const most = Math.max(...counts);
  const sliceBytes = Math.ceil(options.sliceBytes / 4096) * 4096; // each slice starts on a page
  const buffer = new SharedArrayBuffer(most * sliceBytes);
  const measurements: BandwidthMeasurement[] = [];
  await withProbeWorkers(WORKER_SOURCE, most, nativeAddonPath(), async (probe) => {
    for (const threads of counts) {
      for (const kind of ['store', 'stream'] as const) {
        const run = await probe(threads, options.repetitions, (w) => ({ buffer, offset: w * sliceBytes, length: sliceBytes / 8, kind, seconds: options.seconds }));
        measurements.push({ threads, kind, bytesPerSecond: run.total, perThread: run.perThread, repetitions: run.repetitions, sliceBytes, seconds: options.seconds });
      }
    }
  }, 'write-bandwidth probe');
  return { measurements };
}

/** The limit on `threads` threads: the faster kind of store measured there; undefined when that count was not measured. */
export function writeLimitFor(measurements: readonly BandwidthMeasurement[], threads: number): BandwidthMeasurement | undefined {
  return measurements
    .filter((m) => m.threads === threads)
    .reduce<BandwidthMeasurement | undefined>((best, m) => (best === undefined || m.bytesPerSecond > best.bytesPerSecond ? m : best), undefined);
}

/** Bytes an H job writes into H: every entry of the (N−1)×(N−1) complex H, both triangles. */
export function hBytesWritten(n: number): number {
  return 16 * (n - 1) ** 2;
}
