import { loadNativeAddon } from '../kernel/native/addon.js';

/**
 * V8 schedules collections by what a thread allocates, and counts a non-shared ArrayBuffer's bytes but not a
 * SharedArrayBuffer's (`npm run bench:release`, sab-drop, shows dropped ones never collected). So a service that
 * took a new H per job and dropped it held every dropped H (scenario new-h-2048 shows the resident memory with
 * and without this module), and mapped each new H from fresh pages rather than the ones just freed.
 *
 * Each buffer's size is reported to this thread's V8 while the buffer is reachable from it:
 * - where the native addon loads, through Node-API's napi_adjust_external_memory, which exists for exactly
 *   this and is taken back when the buffer is collected (below EXACT_FROM_BYTES, after the next full collection
 *   instead: see there);
 * - otherwise by tying to the buffer (a WeakMap entry lives as long as its key) an ArrayBuffer of the same
 *   size that is never touched: V8 counts its bytes. A large one (glibc maps large blocks fresh) has no page
 *   until touched, so it costs no resident memory; a small one comes from the heap, whose reused memory is
 *   resident, so it does (scenario new-h-64 compares it with the addon's way and with no counting at all). It also counts twice where the OS counts commitments (vm.overcommit_memory = 2)
 *   and in process.memoryUsage().arrayBuffers. If it cannot be had, the buffer is collected at V8's ordinary pace.
 *
 * Every buffer the pool allocates gets this, small ones too: results allocated on the caller's thread were
 * not collected at all without it (test/helpers/memory-scenarios.ts, 'fresh', counts them).
 */
interface NativeWeight {
  readonly adjust: (bytes: number) => void;
  readonly released: FinalizationRegistry<number>;
  /** Calls back after the full collection that finds an epoch's sentinel dead (small buffers, below). */
  readonly epochs: FinalizationRegistry<number>;
}

/**
 * New bytes are told to V8 once per turn of the event loop (or at once past REPORT_AT_BYTES), not per buffer:
 * while V8 marks its heap incrementally, every call that raises the count runs a marking step there and then,
 * so a turn that allocated for each of dozens of requests took dozens of steps in a row. Releases go at once:
 * lowering the count runs none.
 */
const REPORT_AT_BYTES = 64 * 2 ** 20;
let unreported = 0;
let reportTurn: ReturnType<typeof setImmediate> | undefined;

function reportUnreported(): void {
  if (reportTurn !== undefined) clearImmediate(reportTurn);
  reportTurn = undefined;
  const bytes = unreported;
  unreported = 0;
  if (bytes > 0 && native) native.adjust(bytes);
}

function reportLater(bytes: number): void {
  unreported += bytes;
  if (unreported >= REPORT_AT_BYTES) return reportUnreported();
  if (reportTurn === undefined) {
    reportTurn = setImmediate(reportUnreported);
    reportTurn.unref(); // a count for the collector never keeps a process alive
  }
}

/**
 * From this size a buffer's count is taken back when that buffer is collected; below it, by epochs. A buffer
 * registered with a FinalizationRegistry survives every young-generation collection until a full one, however
 * soon it is dropped: a run of small jobs, each with a new H, then kept every dropped H allocated until V8's next
 * full collection, and each new H came from fresh pages instead of the ones the last H had just freed. So small
 * buffers are counted as they are allocated (the count still brings on a full collection after enough of them)
 * and the bytes of an epoch are taken back together, once a full collection has run since it began: one
 * sentinel per epoch instead of one registration per buffer. A small buffer the caller keeps past its epoch is
 * no longer counted, as V8 counts none; what the count is for, a collection soon after many dropped buffers, is
 * unchanged. The memory thread maps the buffers from this size (memory-thread.ts).
 */
const EXACT_FROM_BYTES = 2 * 2 ** 20;
/** Small buffers' bytes counted since the open epoch began. */
let epochBytes = 0;
let epochOpen = false;

function closeEpoch(): void {
  reportUnreported(); // the epoch's bytes not yet told to V8 are told first: never a count below what was added
  const bytes = epochBytes;
  epochBytes = 0;
  epochOpen = false;
  if (bytes > 0) native?.adjust(-bytes);
}

/** The native way, looked up on first use (not when hpair is imported); null where the addon does not load. */
let native: NativeWeight | null | undefined;

function nativeWeight(): NativeWeight | null {
  if (native === undefined) {
    const { addon } = loadNativeAddon();
    if (addon === undefined) native = null;
    else {
      const adjust = (bytes: number): void => void addon.adjustExternalMemory(bytes);
      native = { adjust, released: new FinalizationRegistry<number>((bytes) => adjust(-bytes)), epochs: new FinalizationRegistry<number>(closeEpoch) };
    }
  }
  return native;
}

const ballast = new WeakMap<SharedArrayBuffer, ArrayBuffer>();

/** Counts `buffer`'s bytes toward this thread's garbage-collection schedule for as long as it is reachable. */
export function addGcWeight(buffer: SharedArrayBuffer): void {
  const bytes = buffer.byteLength;
  if (bytes === 0) return;
  const way = nativeWeight();
  if (way !== null) {
    reportLater(bytes);
    if (bytes >= EXACT_FROM_BYTES) way.released.register(buffer, bytes);
    else {
      epochBytes += bytes;
      if (!epochOpen) {
        epochOpen = true;
        way.epochs.register({}, 0); // a sentinel nothing references: only a full collection finds it dead
      }
    }
    return;
  }
  try {
    ballast.set(buffer, new ArrayBuffer(bytes));
  } catch {
    // No address space for it: the buffer is still freed, at V8's ordinary pace.
  }
}
