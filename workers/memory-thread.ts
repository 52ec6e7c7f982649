import type { Worker } from 'node:worker_threads';
import { loadNativeAddon, nativeAddonPath } from '../kernel/native/addon.js';
import { addGcWeight } from './gc-weight.js';
import { hugePagesDecision } from './huge-pages.js';
import { obtainGc } from './obtain-gc.js';
import { startWorker } from './worker-handle.js';

/**
 * How long the memory thread waits after a trim request before it trims: past its own collection of dropped
 * buffers (20 ms after a drop) and V8's sweeping of the array buffers the caller's collection found dead, which
 * frees their memory on a background thread shortly after the collection returns.
 */
const TRIM_DELAY_MS = 200;

/**
 * Big buffers are mapped and unmapped on a thread of their own, never on the caller's: freeing the touched pages
 * of a big H takes a long pause in the garbage collector of whichever thread dropped the last reference, and a
 * `new SharedArrayBuffer` on another thread meanwhile waits for the kernel's memory-map lock just as long
 * (`npm run bench:event-loop`, amplification, shows the stalls this keeps off the event loop). So every large
 * H comes from the memory thread, which keeps a second reference to it: when the caller's last reference is
 * collected (a FinalizationRegistry tells), the memory thread drops its own and the pages are freed there, off
 * the event loop.
 *
 * One memory thread per process (results outlive pools), started on first use, ref'd only while a request
 * is pending, so it never keeps the process alive. Its code is inline, so a bundled app needs no extra file.
 * If it cannot start, buffers are allocated and freed the ordinary way.
 *
 * Where the native addon loads, the memory thread also asks for transparent huge pages on each buffer it maps
 * (kernel/native/src/advise.c says why; HPAIR_NO_HUGE_PAGES=1 turns it off: the bench run with and without it
 * gives the difference on a machine). It is also where malloc's arenas are trimmed after an idle collection
 * (trimFreedMemory).
 */
const SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
let advise;
let trim;
try {
  const addon = workerData && workerData.addon ? require(workerData.addon) : undefined;
  if (addon && workerData.hugePages && typeof addon.adviseHugePages === 'function') advise = addon.adviseHugePages;
  if (addon && typeof addon.trimMemory === 'function') trim = addon.trimMemory;
} catch {}
// Not named gc: under node --expose-gc that global exists, and a script's top-level const may not shadow it.
const collectNow = (${obtainGc.toString()})({ setFlagsFromString: require('node:v8').setFlagsFromString, runInNewContext: require('node:vm').runInNewContext });
const kept = new Map();
let collecting = false;
let trimTimer;
parentPort.on('message', (message) => {
  if (message.ping !== undefined) return parentPort.postMessage({ id: message.ping, pong: true });
  if (message.trim !== undefined) {
    // Later than the drops' collection below, so that what it frees is free when the arenas are trimmed.
    if (trim && trimTimer === undefined) trimTimer = setTimeout(() => { trimTimer = undefined; try { trim(); } catch {} }, ${TRIM_DELAY_MS});
    return;
  }
  if (message.allocate !== undefined) {
    let buffer;
    try { buffer = new SharedArrayBuffer(message.bytes); } catch (error) { return parentPort.postMessage({ id: message.allocate, error: String(error) }); }
    // Before anything touches it (madvise takes the memory-map lock, so here rather than on the caller's thread).
    if (advise) try { advise(new Uint8Array(buffer)); } catch {}
    kept.set(message.allocate, buffer);
    return parentPort.postMessage({ id: message.allocate, buffer });
  }
  kept.delete(message.drop);
  if (collecting) return;
  collecting = true;
  // One collection for a burst of drops; V8 frees an array buffer's memory on the pass after it finds it dead.
  setTimeout(() => { collecting = false; if (collectNow) { collectNow(); collectNow(); } }, 20);
});
`;

/**
 * Below this, mapping and freeing are cheap enough for any thread, and a round trip would cost more. From 2 MiB
 * a buffer can hold an aligned huge page. (Small H gain nothing measurable from the advice; it pays from tens of
 * MB: the bench's square shapes with and without HPAIR_NO_HUGE_PAGES show where.)
 */
const DELEGATE_ABOVE_BYTES = 2 * 2 ** 20;

interface Pending {
  readonly bytes: number;
  resolve(buffer: SharedArrayBuffer): void;
  reject(error: Error): void;
}

let thread: Worker | undefined;
let broken = false;
/** The thread has answered: its code and the addon are loaded. */
let online = false;
const pending = new Map<number, Pending>();
/** Requests to answer once the thread is up (or has failed): they resolve either way. */
const pings = new Map<number, () => void>();
let nextId = 0;

function start(): Worker | undefined {
  if (thread !== undefined || broken) return thread;
  try {
    const addon = loadNativeAddon().addon !== undefined ? nativeAddonPath() : undefined;
    const worker = startWorker(SOURCE, { eval: true, workerData: { addon, hugePages: hugePagesDecision().wanted } });
    worker.unref();
    const registry = new FinalizationRegistry<number>((id) => {
      if (!broken) worker.postMessage({ drop: id });
    });
    worker.on('message', (message: { id: number; buffer?: SharedArrayBuffer; error?: string; pong?: true }) => {
      online = true;
      if (message.pong === true) {
        pings.get(message.id)?.();
        pings.delete(message.id);
        if (pending.size === 0 && pings.size === 0) worker.unref();
        return;
      }
      const request = pending.get(message.id);
      if (request === undefined) return;
      pending.delete(message.id);
      if (pending.size === 0 && pings.size === 0) worker.unref();
      if (message.buffer === undefined) return request.reject(new RangeError(message.error ?? 'allocation failed'));
      registry.register(message.buffer, message.id);
      request.resolve(message.buffer);
    });
    const fail = (): void => {
      broken = true;
      online = false;
      thread = undefined;
      for (const answered of pings.values()) answered();
      pings.clear();
      // Whatever was asked of it is allocated here instead.
      for (const [id, request] of pending) {
        pending.delete(id);
        allocateHere(request.bytes).then(request.resolve, request.reject);
      }
    };
    worker.on('error', fail);
    worker.on('exit', fail);
    thread = worker;
  } catch {
    broken = true;
  }
  return thread;
}

function allocateHere(bytes: number): Promise<SharedArrayBuffer> {
  try {
    return Promise.resolve(new SharedArrayBuffer(bytes));
  } catch (error) {
    return Promise.reject(error as Error);
  }
}

/**
 * A zero-filled SharedArrayBuffer of `bytes`, mapped (and later freed) off this thread when it is large, and
 * counted toward this thread's collection schedule (gc-weight.ts), so that V8 finds it dead soon after the
 * caller drops it, whichever way it was allocated.
 */
export async function allocateShared(bytes: number): Promise<SharedArrayBuffer> {
  const buffer = await allocateUncounted(bytes);
  try {
    addGcWeight(buffer);
  } catch {
    // Counting is a hint to the collector: a failure to count never fails the job.
  }
  return buffer;
}

/**
 * Starts the memory thread if it is not running and resolves once it has answered, so the first large buffer
 * does not wait for a thread to start and load its code (pool.ready() calls this). Never rejects: a thread that
 * cannot start leaves buffers to be allocated on the caller's thread, as for any allocation.
 */
export function warmMemoryThread(): Promise<void> {
  const worker = start();
  if (worker === undefined || online) return Promise.resolve();
  const id = nextId++;
  return new Promise<void>((resolve) => {
    pings.set(id, resolve);
    worker.ref(); // an answer is awaited: keep the process alive for it, as for an allocation
    worker.postMessage({ ping: id });
  });
}

/** Whether the memory thread runs and has answered (its code and the addon are loaded). */
export function memoryThreadOnline(): boolean {
  return online && !broken;
}

function allocateUncounted(bytes: number): Promise<SharedArrayBuffer> {
  const worker = bytes >= DELEGATE_ABOVE_BYTES ? start() : undefined;
  if (worker === undefined) return allocateHere(bytes);
  const id = nextId++;
  return new Promise<SharedArrayBuffer>((resolve, reject) => {
    pending.set(id, { bytes, resolve, reject });
    worker.ref(); // a pending allocation is work in progress: keep the process alive for it
    worker.postMessage({ allocate: id, bytes });
  });
}

/**
 * Asks for the memory freed since the last trim to go back to the OS (trimMemory, where the native addon loads and
 * has it), TRIM_DELAY_MS from now, on the memory thread when it runs (the walk over the arenas is then off this
 * thread's event loop), else on this thread. Buffers below DELEGATE_ABOVE_BYTES, and any H under the mmap
 * threshold the addon pins, come from malloc's arenas: without this, a process idle after a burst kept the
 * burst's peak resident although every buffer was freed. Requests within the delay share one trim. Best effort:
 * without the addon nothing is trimmed, and nothing throws.
 */
export function trimFreedMemory(): void {
  if (thread !== undefined && online && !broken) {
    thread.postMessage({ trim: true });
    return;
  }
  if (localTrim !== undefined) return;
  const trim = loadNativeAddon().addon?.trimMemory;
  if (typeof trim !== 'function') return;
  localTrim = setTimeout(() => {
    localTrim = undefined;
    try {
      trim();
    } catch {
      // a hint to the allocator: nothing depends on it
    }
  }, TRIM_DELAY_MS);
  localTrim.unref();
}

let localTrim: NodeJS.Timeout | undefined;
