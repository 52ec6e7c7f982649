// pool.run(): your own kernel over range / triangle / square index spaces, with H's guarantees.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { createPool, type Pool } from 'hpair';
import { rejectionCode } from './helpers/support.js';

const test = suite('user-kernels');
const module = new URL('./helpers/kernels.js', import.meta.url);
let pool: Pool;
test.before(() => {
  pool = createPool({ workers: 2 });
});
test.after(() => pool.close());

const sharedInt32 = (length: number): Int32Array => new Int32Array(new SharedArrayBuffer(4 * length));

for (const kind of ['range', 'triangle', 'square'] as const) {
  for (const schedule of ['strided', 'dynamic'] as const) {
    test(`${kind}, ${schedule}: every index or pair is visited exactly once, in place`, async () => {
      const p = createPool({ workers: 3, schedule });
      const n = kind === 'range' ? 10_001 : 203;
      const visits = sharedInt32(kind === 'range' ? n : n * n);
      const result = await p.run({ module, export: 'coverage', space: { kind, n, tile: 17 }, buffers: { visits }, params: { n, kind } });
      assert.is(result.visits, visits, 'outputs are the caller’s own views');
      for (let i = 0; i < n; i++) {
        if (kind === 'range') {
          if (visits[i] !== 1) assert.unreachable(`index ${i} visited ${visits[i]} times`);
          continue;
        }
        for (let j = 0; j < n; j++) {
          const expected = kind === 'square' || j <= i ? 1 : 0;
          if (visits[i * n + j] !== expected) assert.unreachable(`pair (${i}, ${j}) visited ${visits[i * n + j]} times`);
        }
      }
      await p.close();
    });
  }
}

test('strided: worker w takes tiles w, w + W, …; each worker imports once and runs setup once per job', async () => {
  const strided = createPool({ workers: 2, schedule: 'strided' });
  const owner = sharedInt32(40);
  const setups = sharedInt32(2);
  await strided.run({ module, export: 'whoDidIt', space: { kind: 'range', n: 40, tile: 1 }, buffers: { owner, setups } });
  await strided.run({ module: module.href, export: 'whoDidIt', space: { kind: 'range', n: 40, tile: 1 }, buffers: { owner, setups } });
  assert.equal([...owner], Array.from({ length: 40 }, (_, t) => t % 2));
  assert.equal([...setups], [2, 2]);
  await strided.close();
});

test('a kernel that throws → KERNEL_FAILED with its message and stack; the pool stays healthy', async () => {
  try {
    await pool.run({ module, export: 'throws', space: { kind: 'range', n: 100, tile: 1 }, buffers: {} });
    assert.unreachable('expected a rejection');
  } catch (error) {
    assert.is((error as { code?: string }).code, 'KERNEL_FAILED');
    assert.match((error as Error).message, /RangeError: tile 5 is cursed/);
    const cause = (error as Error).cause as Error;
    assert.is(cause.message, 'tile 5 is cursed');
    assert.match(String(cause.stack), /kernels\.js/);
  }
  const visits = sharedInt32(10);
  await pool.run({ module, export: 'coverage', space: { kind: 'range', n: 10 }, buffers: { visits }, params: { n: 10, kind: 'range' } });
  assert.ok(visits.every((v) => v === 1));
});

test('a kernel that kills its worker → WORKER_CRASHED; replaced; next job succeeds', async () => {
  assert.is(await rejectionCode(pool.run({ module, export: 'exits', space: { kind: 'range', n: 50, tile: 1 }, buffers: {} })), 'WORKER_CRASHED');
  const visits = sharedInt32(10);
  await pool.run({ module, export: 'coverage', space: { kind: 'range', n: 10 }, buffers: { visits }, params: { n: 10, kind: 'range' } });
  assert.ok(visits.every((v) => v === 1));
});

test('cancel, timeout and progress work for user kernels', async () => {
  const done = sharedInt32(1);
  const spec = { module, export: 'slow', space: { kind: 'range' as const, n: 400, tile: 1 }, buffers: { done }, params: { ms: 5 } };
  const controller = new AbortController();
  const aborted = rejectionCode(pool.run(spec, { signal: controller.signal }));
  setTimeout(() => controller.abort(), 100);
  assert.is(await aborted, 'ABORTED');
  assert.is(await rejectionCode(pool.run(spec, { timeoutMs: 100 })), 'TIMEOUT');
  const seen: number[] = [];
  await pool.run({ ...spec, space: { kind: 'range', n: 60, tile: 1 } }, { onProgress: (d) => seen.push(d) });
  assert.is(seen[seen.length - 1], 60);
  assert.ok(Atomics.load(done, 0) < 400 + 400 + 60, 'cancelled jobs stopped early');
});

test('bad specs: INVALID_ARGUMENT before any work; bad modules and exports: KERNEL_FAILED', async () => {
  const visits = sharedInt32(4);
  const base = { module, export: 'coverage', space: { kind: 'range' as const, n: 4 }, buffers: { visits }, params: { n: 4, kind: 'range' } };
  for (const bad of [
    { ...base, module: 'kernels.js' },
    { ...base, module: 'https://example.com/k.js' },
    { ...base, space: { kind: 'diagonal' as 'range', n: 4 } },
    { ...base, space: { kind: 'range' as const, n: -1 } },
    { ...base, space: { kind: 'range' as const, n: 4, tile: 0 } },
    { ...base, buffers: { visits: new Int32Array(4) } },
    { ...base, buffers: { visits: [1, 2] as unknown as Int32Array } },
    { ...base, params: { f: (() => 1) as unknown as number } },
  ]) {
    assert.is(await rejectionCode(pool.run(bad)), 'INVALID_ARGUMENT', JSON.stringify(bad, (_, v) => (typeof v === 'function' ? 'fn' : v)));
  }
  assert.is(await rejectionCode(pool.run({ ...base, module: new URL('./helpers/missing.js', import.meta.url) })), 'KERNEL_FAILED');
  assert.is(await rejectionCode(pool.run({ ...base, export: 'notAKernel' })), 'KERNEL_FAILED');
  assert.is(await rejectionCode(pool.run({ ...base, export: 'nothing' })), 'KERNEL_FAILED');
});

test.run();
