import { loadNativeAddon } from '../kernel/native/addon.js';

/**
 * V8 schedules collections by what a thread allocates, and counts a non-shared ArrayBuffer's bytes but not a
 * SharedArrayBuffer's. Measured (Node 20): twenty 64 MiB SharedArrayBuffers dropped in a row were none of them
 * collected; with their size reported to V8, every second one was. So a service that took a new H per job
 * and dropped it held every dropped H (1.2 GB of them at N = 2048 after 16 jobs), and each new H was mapped
 * from fresh pages rather than the ones just freed, which on a VM cost a fresh H about 60 ms more at that
 * size (bench: the "new H" row).
 *
 * Each big buffer's size is reported to this thread's V8 while the buffer is reachable from it:
 * - where the native addon loads, through Node-API's napi_adjust_external_memory, which exists for exactly
 *   this and is taken back when the buffer is collected;
 * - otherwise by tying to the buffer (a WeakMap entry lives as long as its key) an ArrayBuffer of the same
 *   size that is never touched: V8 counts its bytes. A large one (from 32 MiB glibc always maps it fresh) has
 *   no page until touched, so it costs no resident memory; a small one comes from the heap, whose reused memory
 *   is resident, so it does (measured: RSS 201 MB after 5000 jobs at N = 64 with a new H each, against 150 MB
 *   with the addon, and 481 MB after 15 000 with no counting at all). It also counts twice where the OS counts
 *   commitments (vm.overcommit_memory = 2) and in process.memoryUsage().arrayBuffers. If it cannot be had, the
 *   buffer is collected at V8's ordinary pace.
 *
 * Every buffer the pool allocates gets this, small ones too: at N = 363 (an H just under 2 MiB, allocated on
 * the caller's thread) 100 dropped results were none of them collected without it.
 */
interface NativeWeight {
  readonly adjust: (bytes: number) => void;
  readonly released: FinalizationRegistry<number>;
}

/** The native way, looked up on first use (not when hpair is imported); null where the addon does not load. */
let native: NativeWeight | null | undefined;

function nativeWeight(): NativeWeight | null {
  if (native === undefined) {
    const { addon } = loadNativeAddon();
    if (addon === undefined) native = null;
    else {
      const adjust = (bytes: number): void => void addon.adjustExternalMemory(bytes);
      native = { adjust, released: new FinalizationRegistry<number>((bytes) => adjust(-bytes)) };
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
    way.adjust(bytes);
    way.released.register(buffer, bytes);
    return;
  }
  try {
    ballast.set(buffer, new ArrayBuffer(bytes));
  } catch {
    // No address space for it: the buffer is still freed, at V8's ordinary pace.
  }
}
