// Kernels for the user-kernel tests, loaded by the workers from dist/test/helpers/kernels.js.
import { HpairError, defineKernel } from 'hpair';

/** Counts every visit of every index or pair with Atomics, so double or missed coverage shows. */
export const coverage = defineKernel<{ visits: Int32Array }, { n: number; kind: string }>({
  tile({ i0, i1, j0, j1 }, { buffers: { visits }, params: { n, kind } }) {
    for (let i = i0; i < i1; i++) {
      if (kind === 'range') {
        Atomics.add(visits, i, 1);
        continue;
      }
      const end = kind === 'triangle' ? Math.min(j1, i + 1) : j1;
      for (let j = j0; j < end; j++) Atomics.add(visits, i * n + j, 1);
    }
  },
});

/** Records which worker took each tile, and how many times setup ran per worker. */
export const whoDidIt = defineKernel<{ owner: Int32Array; setups: Int32Array }, Record<string, never>>({
  setup({ buffers: { setups }, worker }) {
    Atomics.add(setups, worker, 1);
  },
  tile({ index }, { buffers: { owner }, worker }) {
    owner[index] = worker;
  },
});

/** Throws on tile 5. */
export const throws = defineKernel({
  tile({ index }) {
    if (index === 5) throw new RangeError('tile 5 is cursed');
  },
});

/** Ends its thread on tile 3. */
export const exits = defineKernel({
  tile({ index }) {
    if (index === 3) process.exit(9);
  },
});

/** Busy for `ms` per tile: a long job to cancel or time out. */
export const slow = defineKernel<{ done: Int32Array }, { ms: number }>({
  tile(_tile, { buffers: { done }, params: { ms } }) {
    const until = performance.now() + ms;
    while (performance.now() < until);
    Atomics.add(done, 0, 1);
  },
});

export const notAKernel = { run() {} };

/** Replaces a built-in hpair's own kernels use, as a careless kernel might. */
export const poisons = defineKernel({
  tile() {
    Math.ceil = () => 0;
  },
});

/** Throws errors dressed as hpair's own, to check a kernel cannot forge a code. */
export const forges = defineKernel<Record<string, never>, { how: string }>({
  tile({ index }, { params: { how } }) {
    if (index !== 0) return;
    if (how === 'real') throw new HpairError('POOL_CLOSED', 'forged with the real class');
    throw Object.assign(new Error('forged by hand'), { name: 'HpairError', code: 'POOL_CLOSED' });
  },
});
