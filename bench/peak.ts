// The machine's limit for the bench's "% of peak": the native addon's FMA peak probe (each path file's probe in kernel/native/src, peak_loop.h),
// per ISA, on one thread and on several worker threads at once. Concurrent threads matter: cores that share a
// power budget, or vCPUs that share a host core, run slower together than one alone, so the peak of a row on W
// workers is the sum measured with W threads running at the same moment, not W times the one-thread figure.
// Each measurement is repeated and the best kept: other load only ever lowers a peak, never raises it.
import { Worker } from 'node:worker_threads';
import { loadNativeAddon, nativeAddonPath, type NativePathName } from '../kernel/native/addon.js';

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

type WorkerReply = { ready: true } | { rate: number } | { error: string };

function nextReply(worker: Worker): Promise<WorkerReply> {
  return new Promise((resolve, reject) => {
    const onMessage = (reply: WorkerReply): void => {
      worker.off('error', onError);
      resolve(reply);
    };
    const onError = (error: Error): void => {
      worker.off('message', onMessage);
      reject(error);
    };
    worker.once('message', onMessage);
    worker.once('error', onError);
  });
}

async function expect<K extends 'ready' | 'rate'>(worker: Worker, key: K): Promise<Extract<WorkerReply, Record<K, unknown>>> {
  const reply = await nextReply(worker);
  if ('error' in reply) throw new Error(`FMA peak probe: ${reply.error}`);
  if (!(key in reply)) throw new Error(`FMA peak probe: expected '${key}', got ${JSON.stringify(reply)}`);
  return reply as Extract<WorkerReply, Record<K, unknown>>;
}

/** One concurrent run: every worker's rate (flops/s), all timed runs started together. */
async function concurrentRun(workers: readonly Worker[], isa: NativePathName, seconds: number): Promise<number[]> {
  const flag = new SharedArrayBuffer(4);
  const ready = workers.map((worker) => expect(worker, 'ready'));
  for (const worker of workers) worker.postMessage({ isa, seconds, flag });
  await Promise.all(ready);
  const rates = workers.map((worker) => expect(worker, 'rate'));
  const go = new Int32Array(flag);
  Atomics.store(go, 0, 1);
  Atomics.notify(go, 0);
  return (await Promise.all(rates)).map((reply) => reply.rate);
}

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
  const workers: Worker[] = [];
  try {
    for (let i = 0; i < Math.max(...counts); i++) workers.push(new Worker(WORKER_SOURCE, { eval: true, workerData: { addon: nativeAddonPath() } }));
    for (const isa of isas) {
      for (const threads of counts) {
        const repetitions: number[] = [];
        let best: number[] = [];
        for (let r = 0; r < options.repetitions; r++) {
          const rates = (await concurrentRun(workers.slice(0, threads), isa, options.seconds)).map((rate) => rate / 1e9);
          const sum = rates.reduce((a, b) => a + b, 0);
          repetitions.push(sum);
          if (best.length === 0 || sum > best.reduce((a, b) => a + b, 0)) best = rates;
        }
        peaks.push({ isa, threads, gflops: best.reduce((a, b) => a + b, 0), perThread: best, repetitions, seconds: options.seconds });
      }
    }
  } finally {
    await Promise.all(workers.map((worker) => worker.terminate()));
  }
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
