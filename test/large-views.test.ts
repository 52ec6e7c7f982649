// Views past 4 GiB, or starting 4 GiB or more into their buffer, reach the workers whole. Structured clone
// writes a view's offset and length as 32-bit numbers, so such a view used to arrive cut short or shifted and
// the job succeeded with a wrong H. Inputs here are small integers and distances powers of two, so every
// product and sum is exact in double: each entry must equal, exactly, a formula computed on this thread.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { createPool, hermitianReference, kernelSupported, type ComplexMatrix, type KernelVariant } from 'hpair';
import { NATIVE_VARIANTS, rejectionCode } from './helpers/support.js';

const test = suite('large-views');
const FOUR_GIB = 2 ** 32;

/** A small integer in [−1000, 1000] for flat index k (a hash, so neighbours differ). */
function integerAt(k: number, salt: number): number {
  let t = Math.imul((k + salt) ^ 0x9e3779b9, 0x85ebca6b);
  t ^= t >>> 13;
  t = Math.imul(t, 0xc2b2ae35);
  t ^= t >>> 16;
  return ((t >>> 0) % 2001) - 1000;
}

function fillExpp(data: Float64Array, salt: number): void {
  for (let k = 0; k < data.length; k++) data[k] = integerAt(k, salt);
}

/** ±2^k: dividing by it is exact. */
function powerOfTwoDistance(distance: Float64Array): void {
  for (let m = 0; m < distance.length; m++) distance[m] = (m % 2 === 0 ? 1 : -1) * 2 ** ((m % 5) - 2);
}

/** Every value equal (so NaN never passes); the sign of a zero is each kernel's own, so 0 and −0 are equal. */
function assertSameValues(actual: Float64Array, expected: Float64Array, what: string): void {
  assert.is(actual.length, expected.length, `${what}: length`);
  for (let k = 0; k < actual.length; k++) if (actual[k] !== expected[k]) assert.unreachable(`${what}: value ${k} is ${actual[k]}, the reference ${expected[k]}`);
}

/** Every entry of an M = 2 H against (a_i − a_L)·conj(a_j − a_L)/d[1], bit for bit; the first mismatch is named. */
function assertExactM2(h: ComplexMatrix, expp: Float64Array, distance: Float64Array): void {
  const n = h.rows;
  assert.is(h.cols, n);
  assert.is(h.data.length, 2 * n * n, 'H holds every entry');
  const lr = expp[2 * (n * 2 + 1)];
  const li = expp[2 * (n * 2 + 1) + 1];
  const d = distance[1];
  const data = h.data;
  for (let i = 0; i < n; i++) {
    const pr = expp[2 * (i * 2 + 1)] - lr;
    const pi = expp[2 * (i * 2 + 1) + 1] - li;
    const row = 2 * i * n;
    for (let j = 0; j < n; j++) {
      const qr = expp[2 * (j * 2 + 1)] - lr;
      const qi = -(expp[2 * (j * 2 + 1) + 1] - li);
      const re = (pr * qr - pi * qi) / d;
      const im = (pr * qi + pi * qr) / d;
      // A NaN left in an entry nothing wrote fails; the sign of a zero is each kernel's own.
      if (data[row + 2 * j] !== re || data[row + 2 * j + 1] !== im) {
        assert.unreachable(`H[${i}, ${j}] is ${data[row + 2 * j]} + ${data[row + 2 * j + 1]}i, the formula gives ${re} + ${im}i`);
      }
    }
  }
}

const native: KernelVariant | undefined = NATIVE_VARIANTS.find((k) => kernelSupported(k));

test('in memory, N = 16 500, M = 2 (H past 4 GiB): every entry of H is exact, on WebAssembly and native', async () => {
  const N = 16_500;
  const M = 2;
  const expp = new Float64Array(new SharedArrayBuffer(16 * N * M));
  fillExpp(expp, 1);
  const distance = new Float64Array(new SharedArrayBuffer(8 * M));
  powerOfTwoDistance(distance);
  const input = { rows: N, cols: M, data: expp };
  const wasm = createPool({ workers: 2, kernel: 'wasm-simd' });
  let h: ComplexMatrix;
  try {
    h = await wasm.hermitian(input, distance);
    assert.ok(h.data.byteLength > FOUR_GIB, 'H spans more than 4 GiB');
    assertExactM2(h, expp, distance);
  } finally {
    await wasm.close();
  }
  if (native === undefined) {
    console.log('  skipped (native half): no native kernel runs here (the addon is not built, or the CPU lacks AVX2)');
    return;
  }
  // The same H again as `out`, poisoned first, so an entry the native kernel does not reach stays NaN.
  h.data.fill(NaN);
  const pool = createPool({ workers: 2, kernel: native });
  try {
    const again = await pool.hermitian(input, distance, { out: h });
    assert.is(again.data, h.data, 'written into out');
    assertExactM2(again, expp, distance);
  } finally {
    await pool.close();
  }
});

test('expp and distance viewed 4 GiB into a SharedArrayBuffer: H equals the reference exactly, on every kernel', async () => {
  const N = 300;
  const M = 64;
  const exppBytes = 16 * N * M;
  // Only the views' pages and the decoy's are ever touched: the rest of the buffer costs no memory.
  const sab = new SharedArrayBuffer(FOUR_GIB + exppBytes + 8 * M + 64);
  const expp = new Float64Array(sab, FOUR_GIB + 8, 2 * N * M);
  const distance = new Float64Array(sab, FOUR_GIB + 8 + exppBytes, M);
  fillExpp(expp, 2);
  powerOfTwoDistance(distance);
  // Where a view cut to 32 bits would point: other values, so a shifted read cannot pass.
  const decoy = new Float64Array(sab, 8, 2 * N * M + M);
  fillExpp(decoy, 3);
  const expected = hermitianReference({ rows: N, cols: M, data: Float64Array.from(expp) }, Float64Array.from(distance));
  const kernels: KernelVariant[] = ['wasm-simd', 'js', ...(native === undefined ? [] : [native])];
  if (native === undefined) console.log('  skipped (native kernel): no native kernel runs here');
  for (const kernel of kernels) {
    const pool = createPool({ workers: 2, kernel, inlineFlops: 0 });
    try {
      const h = await pool.hermitian({ rows: N, cols: M, data: expp }, distance);
      assertSameValues(h.data, expected.data, `${kernel}: H`);
      const stats = pool.stats();
      assert.is(stats.inline, 0, `${kernel}: the job ran on the workers`);
    } finally {
      await pool.close();
    }
  }
});

test('a user kernel sees a view 4 GiB into its buffer where it is, and writes only there', async () => {
  const n = 5000;
  const sab = new SharedArrayBuffer(FOUR_GIB + 4 * n + 64);
  const visits = new Int32Array(sab, FOUR_GIB + 4, n);
  const shifted = new Int32Array(sab, 4, n);
  const pool = createPool({ workers: 2 });
  try {
    await pool.run({ module: new URL('./helpers/kernels.js', import.meta.url), export: 'coverage', space: { kind: 'range', n, tile: 64 }, buffers: { visits }, params: { n, kind: 'range' } });
    assert.ok(visits.every((v) => v === 1), 'every index visited exactly once, in the view');
    assert.ok(shifted.every((v) => v === 0), 'nothing written 4 GiB lower');
  } finally {
    await pool.close();
  }
});

test('H past 2^32 values (no typed array holds it) is TOO_LARGE before any work, and the pool stays usable', async () => {
  const N = 46_342; // 2·46 341² > 2^32
  const expp = new Float64Array(new SharedArrayBuffer(16 * N));
  const distance = new Float64Array([1]);
  const pool = createPool({ workers: 2 });
  try {
    assert.is(await rejectionCode(pool.hermitian({ rows: N, cols: 1, data: expp }, distance)), 'TOO_LARGE');
    const stats = pool.stats();
    assert.is(stats.completed + stats.failed, 0, 'the job was refused before it was queued');
    const small = new Float64Array(new SharedArrayBuffer(16 * 3 * 2));
    fillExpp(small, 4);
    const d = new Float64Array([1, 1]);
    const h = await pool.hermitian({ rows: 3, cols: 2, data: small }, d);
    assertSameValues(h.data, hermitianReference({ rows: 3, cols: 2, data: small }, d).data, 'the next H');
  } finally {
    await pool.close();
  }
});

test.run();
