import { availableParallelism, totalmem } from 'node:os';
import { resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { existsSync } from 'node:fs';
import type { ResourceLimits } from 'node:worker_threads';
import type { Accuracy, KernelChoice } from '../kernel/kernel-names.js';
import type { ComplexMatrix } from '../shared/complex-matrix.js';
import { HpairError } from '../shared/errors.js';
import type { Schedule } from '../shared/protocol.js';

/** Options of `createPool`. */
export interface PoolOptions {
  /**
   * Worker threads, 1 to MAX_WORKERS (256). Every job's tiles are shared out among all of them.
   * @default os.availableParallelism()
   */
  workers?: number;
  /**
   * How tiles are dealt: `'strided'` (worker w takes tiles w, w + W, …) or `'dynamic'` (workers claim
   * the next tile from an Atomics counter). Results are bit-identical either way. Dynamic is the default
   * because on a shared, noisy machine a worker that is descheduled for a while no longer holds up the
   * job with its fixed share (`npm run bench -- --schedules dynamic,strided` compares the two on a machine).
   * @default 'dynamic'
   */
  schedule?: Schedule;
  /**
   * Jobs that may wait while one runs; one more rejects with QUEUE_FULL.
   * @default Infinity
   */
  maxQueue?: number;
  /**
   * Resource limits for each worker thread (see node:worker_threads), in MB, each within the range V8 and
   * the OS accept (outside it Node would kill the process or fail to start the thread):
   * maxOldGenerationSizeMb 4 to 2^32, maxYoungGenerationSizeMb 1 to 2^32, codeRangeSizeMb above 0 up to
   * 2048, stackSizeMb 1 to 1024. Anything else is INVALID_ARGUMENT before a thread starts. A worker that
   * exceeds them dies and its job rejects with WORKER_CRASHED; the pool replaces it.
   * @default undefined (Node's defaults)
   */
  resourceLimits?: ResourceLimits;
  /**
   * The watchdog: a job step whose workers complete no tile and answer nothing for this long fails with
   * WORKER_UNRESPONSIVE, and those threads are terminated and replaced. It catches a kernel stuck in a tile
   * and a thread a user kernel broke, whether or not the job has a timeoutMs. A single tile (one call of a
   * kernel's `tile`) must finish within it, and so must a user kernel's first step on new threads, which
   * includes their start-up and the module's import: raise it for kernels with very long tiles. 1 to 2^31 − 1.
   * @default 60000
   */
  watchdogMs?: number;
  /**
   * How many steps of nice (Linux scheduling priority) the pool's worker threads run below the thread that
   * started them, 0 to 19 (capped at nice 19). A service's event loop then gets a core as soon as it has work,
   * instead of queueing behind the workers for its share: each worker lowers its own thread only, never the
   * process. The workers are as fast as before when the cores are otherwise free; under load from other
   * processes they get less of the machine. Results are the same bits at any value. Linux only; elsewhere, or
   * where the OS refuses, the workers keep the caller's priority. 0 leaves them at it.
   * @default 0
   */
  workerNice?: number;
  /**
   * Once the pool has allocated, or been handed, 16 MiB or more of shared memory (results, scratch; inputs it
   * reads in place and `out` matrices) and then stayed idle this
   * long, it runs a garbage collection on the calling thread (and again after 2×, 4× and 8× that while it
   * stays idle), so a service that goes quiet after a burst gives the burst's dropped results back instead of
   * holding them until it next allocates. Each is a major collection of this thread's heap, taken only while
   * no job runs or waits. 0 turns it off.
   * @default 1000
   */
  idleCollectMs?: number;
  /**
   * Jobs with less work than this run on the calling thread: for them, waking the workers costs more
   * than the work. Work counts the useful flops plus writing H and reading expp (`hermitianWork`), so a
   * job with no flops but a big H still goes to the workers. 0 sends every job to the workers.
   * @default 2e6
   */
  inlineFlops?: number;
  /**
   * The pair kernel: `'native-<path>'` for a path of kernel/native/src/paths.h (C behind Node-API, when the addon
   * loads and the CPU runs the path), `'native'` (the fastest native path this CPU runs),
   * `'wasm-relaxed-simd'` (fused multiply-add; Node ≥ 22, or Node 20 with --experimental-wasm-relaxed-simd),
   * `'wasm-simd'`, `'js'`, or `'auto'` for the fastest that runs here, in that order. Asking for one that
   * cannot run here throws INVALID_ARGUMENT saying why.
   * @default 'auto'
   */
  kernel?: KernelChoice;
  /**
   * How jobs sum, unless a job asks otherwise: `'default'` (blocked sums, at the level of numpy's
   * `(A / d) @ A.conj().T`, better for long sums) or `'compensated'` (each entry as if computed in twice the working precision and
   * rounded once; native and WebAssembly kernels: with `'js'` it throws INVALID_ARGUMENT). See
   * docs/kernels-and-accuracy.md.
   * @default 'default'
   */
  accuracy?: Accuracy;
  /**
   * Largest memory one job may take beyond the caller's own arrays: copies of non-shared inputs, the
   * packed panels and H. A larger job rejects with TOO_LARGE before anything is allocated.
   * @default half of os.totalmem()
   */
  maxBytes?: number;
  /**
   * hpair's worker entry, as a path or file: URL: for apps that bundle hpair, whose bundle has no
   * dist/worker.js beside it. Bundle the `hpair/worker` export as an entry of its own and name that file
   * here (README, "Bundling").
   * @default the worker.js beside hpair's own dist files
   */
  workerFile?: string | URL;
  /**
   * The native kernel's addon file (`hpair_native.node`), as a path or file: URL: for apps that bundle hpair
   * and ship the addon somewhere other than beside the bundle. This thread and the pool's workers load it;
   * one addon per process, so naming another file than an earlier pool's throws INVALID_ARGUMENT. If it
   * does not load, the pool runs WebAssembly and `whyNotNative` says why. `HPAIR_NATIVE_ADDON` does the same
   * from the environment (this option wins). docs/install.md, "Bundling".
   * @default the package's prebuilt addon for this platform, or the one built from source at install, or
   *   `hpair_native.node` beside the bundle
   */
  nativeAddon?: string | URL;
}

/** Options of `pool.hermitian` and `hermitian`. */
export interface HermitianOptions extends JobOptions {
  /**
   * Where to write H: an (N−1)×(N−1) matrix in shared memory, not overlapping the inputs. Without it a
   * new shared matrix is allocated. If the job fails after it started, out's contents are unspecified.
   * @default undefined
   */
  out?: ComplexMatrix;
  /**
   * Largest memory this job may take beyond the caller's arrays (H, scratch, copies): a service sets it
   * per request so a tiny request cannot make it allocate a huge H. Capped by the pool's maxBytes.
   * @default the pool's maxBytes
   */
  maxBytes?: number;
  /**
   * This job's accuracy (see PoolOptions.accuracy); 'compensated' with the js kernel rejects with
   * INVALID_ARGUMENT.
   * @default the pool's accuracy
   */
  accuracy?: Accuracy;
}

/** Per-call options shared by every job. */
export interface JobOptions {
  /**
   * Aborting rejects the job with ABORTED; workers stop at their next tile.
   * @default undefined
   */
  signal?: AbortSignal;
  /**
   * Deadline in milliseconds from the call (queue time included), 0 to 2^31 − 1 (Node's timer limit,
   * ~24.8 days); past it the job rejects with TIMEOUT.
   * @default undefined (no deadline)
   */
  timeoutMs?: number;
  /**
   * Called with (tiles done, tiles in all) at most every 50 ms, and once at the end. If it throws, or
   * returns a promise that rejects, the job goes on without further progress calls and the error is
   * reported as CALLBACK_FAILED on the pool's 'error' event (without a listener, as a process warning
   * with code HPAIR_PROGRESS_THREW).
   * @default undefined
   */
  onProgress?: (done: number, total: number) => void;
}

export interface PoolStats {
  /** Jobs that resolved. */
  readonly completed: number;
  /** Jobs that rejected after they were accepted. */
  readonly failed: number;
  /** Jobs answered on the calling thread because they were too small to wake the workers. */
  readonly inline: number;
  /** Bytes copied into shared memory because inputs were not shared already (0 for SAB inputs). */
  readonly copiedBytes: number;
  /** Worker threads started over the pool's life (workers + replacements). */
  readonly workersStarted: number;
  /** Run time of jobs, from their start to their settling, in ms. */
  readonly runMs: LatencySummary;
  /** Time jobs spent in the queue before they started, in ms. */
  readonly waitMs: LatencySummary;
  /** Fraction of the pool's life during which a job was running, 0…1. */
  readonly utilization: number;
}

/** A latency distribution, in milliseconds (from a node:perf_hooks histogram at microsecond resolution). */
export interface LatencySummary {
  readonly count: number;
  readonly mean: number;
  readonly p50: number;
  readonly p90: number;
  readonly p99: number;
  readonly max: number;
}

/** The most worker threads a pool may have: beyond this, threads only add memory and contention. */
export const MAX_WORKERS = 256;
/** Node's timers hold at most 2^31 − 1 ms; a longer delay would fire after 1 ms. */
const MAX_TIMEOUT_MS = 2 ** 31 - 1;
/**
 * Each limit's accepted range in MB, [low, high], low exclusive when it is 0. Outside it, Node fails in ways
 * a caller cannot catch: a code range V8 cannot reserve is a fatal OOM of the whole process, a stack the OS
 * will not map makes the Worker constructor throw a bare EAGAIN, a stack too small for Node's own start-up
 * throws in the process. Above 2048 MB a code range is of no use to V8 on x64 (pc-relative calls reach
 * that far), above 1024 MB a stack only reserves address space, and 2^32 MB of heap is beyond any machine.
 */
const RESOURCE_LIMITS = {
  maxOldGenerationSizeMb: [4, 2 ** 32],
  maxYoungGenerationSizeMb: [1, 2 ** 32],
  codeRangeSizeMb: [0, 2048],
  stackSizeMb: [1, 1024],
} as const;
const DEFAULT_WATCHDOG_MS = 60_000;

/** PoolOptions with every default applied, checked. */
export type ResolvedPoolOptions = Required<Omit<PoolOptions, 'resourceLimits' | 'workerFile' | 'nativeAddon'>> &
  Pick<PoolOptions, 'resourceLimits'> & { workerFile: URL | undefined; nativeAddon: string | undefined };

export function resolvePoolOptions(options: PoolOptions | undefined): ResolvedPoolOptions {
  if (options === undefined) options = {};
  if (typeof options !== 'object' || options === null) throw invalid(`pool options must be an object, got ${describe(options)}`);
  const {
    workers = availableParallelism(),
    schedule = 'dynamic',
    maxQueue = Infinity,
    resourceLimits,
    inlineFlops = 2e6,
    kernel = 'auto',
    accuracy = 'default',
    maxBytes = totalmem() / 2,
    workerFile,
    nativeAddon,
    watchdogMs = DEFAULT_WATCHDOG_MS,
    idleCollectMs = 1000,
    workerNice = 0,
  } = options;
  if (!Number.isSafeInteger(workers) || workers < 1 || workers > MAX_WORKERS) {
    throw invalid(`workers must be an integer from 1 to ${MAX_WORKERS}, got ${describe(workers)}`);
  }
  if (schedule !== 'strided' && schedule !== 'dynamic') throw invalid(`schedule must be 'strided' or 'dynamic', got ${describe(schedule)}`);
  if (!(maxQueue === Infinity || (Number.isSafeInteger(maxQueue) && maxQueue >= 0))) {
    throw invalid(`maxQueue must be a non-negative integer or Infinity, got ${describe(maxQueue)}`);
  }
  if (!(typeof inlineFlops === 'number' && inlineFlops >= 0 && !Number.isNaN(inlineFlops))) throw invalid(`inlineFlops must be a number ≥ 0, got ${describe(inlineFlops)}`);
  if (!isPositiveNumber(maxBytes)) throw invalid(`maxBytes must be a positive number, got ${describe(maxBytes)}`);
  if (typeof kernel !== 'string') throw invalid(`kernel must be a string, got ${describe(kernel)}`);
  if (!(typeof watchdogMs === 'number' && watchdogMs >= 1 && watchdogMs <= MAX_TIMEOUT_MS)) {
    throw invalid(`watchdogMs must be a number from 1 to 2^31 − 1 (${MAX_TIMEOUT_MS}), got ${describe(watchdogMs)}`);
  }
  if (!(typeof idleCollectMs === 'number' && idleCollectMs >= 0 && idleCollectMs <= MAX_TIMEOUT_MS)) {
    throw invalid(`idleCollectMs must be a number from 0 to 2^31 − 1 (${MAX_TIMEOUT_MS}), got ${describe(idleCollectMs)}`);
  }
  if (!(Number.isInteger(workerNice) && workerNice >= 0 && workerNice <= 19)) {
    throw invalid(`workerNice must be an integer from 0 to 19, got ${describe(workerNice)}`);
  }
  checkAccuracyOption(accuracy);
  return {
    workerNice,
    idleCollectMs,
    workers,
    schedule,
    maxQueue,
    resourceLimits: checkResourceLimits(resourceLimits),
    inlineFlops,
    kernel,
    accuracy,
    maxBytes,
    workerFile: fileUrl(workerFile),
    watchdogMs,
    nativeAddon: addonPath(nativeAddon),
  };
}

/** A path or file: URL as a file: URL; the file itself is checked when a worker starts from it. */
function fileUrl(file: string | URL | undefined): URL | undefined {
  if (file === undefined) return undefined;
  if (file instanceof URL) {
    if (file.protocol !== 'file:') throw invalid(`workerFile must be a path or a file: URL, got ${file.href}`);
    if (!existsSync(file)) throw invalid(`workerFile ${fileURLToPath(file)} does not exist`);
    return file;
  }
  if (typeof file !== 'string' || file === '') throw invalid(`workerFile must be a path or a file: URL, got ${describe(file)}`);
  const url = file.startsWith('file:') ? new URL(file) : pathToFileURL(resolve(file));
  if (!existsSync(url)) throw invalid(`workerFile ${fileURLToPath(url)} does not exist`);
  return url;
}

/** The nativeAddon option as an absolute path; whether it exists and loads is for whyNotNative to say. */
function addonPath(file: string | URL | undefined): string | undefined {
  if (file === undefined) return undefined;
  if (file instanceof URL) {
    if (file.protocol !== 'file:') throw invalid(`nativeAddon must be a path or a file: URL, got ${file.href}`);
    return fileURLToPath(file);
  }
  if (typeof file !== 'string' || file === '') throw invalid(`nativeAddon must be a path or a file: URL, got ${describe(file)}`);
  return file.startsWith('file:') ? fileURLToPath(file) : resolve(file);
}

/** Node starts a worker with nonsense limits and it dies at once, job after job: refuse them here instead. */
function checkResourceLimits(limits: ResourceLimits | undefined): ResourceLimits | undefined {
  if (limits === undefined) return undefined;
  if (typeof limits !== 'object' || limits === null) throw invalid(`resourceLimits must be an object, got ${describe(limits)}`);
  const checked: Record<string, number> = {};
  const known = Object.keys(RESOURCE_LIMITS);
  for (const [key, value] of Object.entries(limits)) {
    if (!known.includes(key)) throw invalid(`resourceLimits.${key} is not a worker limit (known: ${known.join(', ')})`);
    if (value === undefined) continue;
    const [low, high] = RESOURCE_LIMITS[key as keyof typeof RESOURCE_LIMITS];
    const inRange = typeof value === 'number' && (low === 0 ? value > 0 : value >= low) && value <= high;
    if (!inRange) throw invalid(`resourceLimits.${key} must be a number of MB ${low === 0 ? 'above 0' : `from ${low}`} up to ${high}, got ${describe(value)}`);
    checked[key] = value;
  }
  return checked;
}

function checkAccuracyOption(accuracy: unknown): void {
  if (accuracy !== 'default' && accuracy !== 'compensated') throw invalid(`accuracy must be 'default' or 'compensated', got ${describe(accuracy)}`);
}

export function validateJobOptions(options: JobOptions & { maxBytes?: unknown }): void {
  readJobOptions(options as HermitianOptions);
}

/**
 * The job options, each read once and checked: the runner then uses this copy, so a getter that answers
 * differently the second time (a valid signal when checked, something else when the job is queued) cannot
 * slip past the checks.
 */
export function readJobOptions(options: HermitianOptions): HermitianOptions {
  if (typeof options !== 'object' || options === null) throw invalid(`job options must be an object, got ${describe(options)}`);
  const { signal, timeoutMs, onProgress, out, maxBytes, accuracy } = options;
  if (signal !== undefined && !isAbortSignal(signal)) throw invalid('signal must be an AbortSignal (from an AbortController or AbortSignal.timeout())');
  if (timeoutMs !== undefined && !(typeof timeoutMs === 'number' && timeoutMs >= 0 && timeoutMs <= MAX_TIMEOUT_MS)) {
    throw invalid(`timeoutMs must be a number from 0 to 2^31 − 1 (${MAX_TIMEOUT_MS}), got ${describe(timeoutMs)}`);
  }
  if (onProgress !== undefined && typeof onProgress !== 'function') throw invalid('onProgress must be a function');
  if (maxBytes !== undefined && !isPositiveNumber(maxBytes)) throw invalid(`maxBytes must be a positive number, got ${describe(maxBytes)}`);
  if (accuracy !== undefined) checkAccuracyOption(accuracy);
  return { signal, timeoutMs, onProgress, out, maxBytes, accuracy };
}

/** A signal's state read with AbortSignal's own getters: an own property shadowing them on the object is ignored. */
export function signalState(signal: AbortSignal): { aborted: boolean; reason: unknown } {
  return { aborted: Reflect.apply(abortedGetter, signal, []) as boolean, reason: Reflect.apply(reasonGetter, signal, []) };
}

/**
 * A real AbortSignal, not only one by prototype: `Object.create(AbortSignal.prototype)` passes instanceof but
 * its `aborted` getter throws (no internal slots), and would throw again when the job is queued.
 */
function isAbortSignal(value: unknown): value is AbortSignal {
  if (!(value instanceof AbortSignal)) return false;
  try {
    return typeof Reflect.apply(abortedGetter, value, []) === 'boolean';
  } catch {
    return false;
  }
}
const abortedGetter = Reflect.getOwnPropertyDescriptor(AbortSignal.prototype, 'aborted')?.get as () => boolean;
const reasonGetter = Reflect.getOwnPropertyDescriptor(AbortSignal.prototype, 'reason')?.get as () => unknown;

function isPositiveNumber(value: unknown): value is number {
  return typeof value === 'number' && value > 0 && !Number.isNaN(value);
}

function invalid(message: string): HpairError {
  return new HpairError('INVALID_ARGUMENT', message);
}

/** A value for an error message: short, and never throwing (a Proxy or a hostile toString cannot break it). */
export function describe(value: unknown): string {
  try {
    if (typeof value === 'string') return `'${value.length > 40 ? `${value.slice(0, 40)}…` : value}'`;
    if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint' || value === undefined || value === null) return String(value);
    return typeof value === 'function' ? 'a function' : Array.isArray(value) ? 'an array' : `an ${typeof value}`;
  } catch {
    return 'an unreadable value';
  }
}
