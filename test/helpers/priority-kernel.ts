// A user kernel that records the nice value of the thread each worker runs it on (Linux /proc). Run it with the
// 'strided' schedule: with 'dynamic' one worker may claim every tile before another starts.
import { readFileSync } from 'node:fs';
import { defineKernel } from 'hpair';

/** The nice value of the calling thread: field 19 of /proc/thread-self/stat, counted after the name's ')'. */
export function threadNice(stat = readFileSync('/proc/thread-self/stat', 'latin1')): number {
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16]);
}

/** nices[worker] = that worker's thread's nice value, from every tile it runs. */
export const niceness = defineKernel<{ nices: Int32Array }, Record<string, never>>({
  tile(_, { buffers: { nices }, worker }) {
    nices[worker] = threadNice();
  },
});
