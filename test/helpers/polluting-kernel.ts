// A kernel module that changes a built-in when it is imported (its top-level code), for test/isolation.test.ts.
import { defineKernel } from 'hpair';

Math.floor = (x: number): number => Math.round(x);

/** Would count its tiles; it must never run on a thread its own import changed. */
export default defineKernel<{ ran: Int32Array }, Record<string, never>>({
  tile(_tile, { buffers: { ran } }) {
    Atomics.add(ran, 0, 1);
  },
});
