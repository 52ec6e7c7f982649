// Accuracy of every kernel against an exact oracle (test/helpers/exact-oracle.ts: BigInt fixed point, rounded
// once). Two bounds, both per entry of H, with t_m = |a_i,m|·|a_j,m| / |d_m| the size of each term and u = 2^−53:
//
// - the worst-case bound of the kernel's summation order: |ΔH| ≤ 4·γ(L)·Σ_m t_m, γ(L) = L·u / (1 − L·u), with L
//   the longest chain of roundings any term goes through (block length, blocks per chunk, chunks, and the few
//   operations of packing and the 3M combination; the factor 4 covers 3M's P3 terms, up to 2·t_m each);
// - numpy's level on realistic inputs: the pooled error over every entry of several problems at most that of a
//   model of zgemm's order (helpers/zgemm-model.ts: 4M, FMA chains over blocks of 128, blocks in order), whose error
//   is numpy's level (bench/orders/compare.mjs --c zgemm-model measures it against numpy); and, per problem, a
//   maximum error at most twice that of a textbook blocked sum plus one ulp of max |H|. One FMA chain over all of k fails both: its error grows with M.
//
// Compensated accuracy (native and WebAssembly kernels; js refuses it with INVALID_ARGUMENT) is checked against
// its own per-entry bound, that of Dot2 (Ogita, Rump and Oishi) over the 2K products of each part plus the O(u²)
// errors of the pairs it keeps for differences and quotients: |ΔH| ≤ u·|H| + (4·γ(2K + 4)² + 16u²)·Σ_m t_m, and
// against max |ΔH| / max |H| ≤ 2.5e-16; integer-valued inputs with a representable H must come out exact.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import {
  computeToNpy,
  createComplexMatrix,
  createPool,
  encodeComplexMatrixNpy,
  encodeFloat64VectorNpy,
  kernelSupported,
  parseComplexMatrixNpy,
  type ComplexMatrix,
  type KernelVariant,
} from 'hpair';
import { exactHermitian, type ExactH } from './helpers/exact-oracle.js';
import { termPlanes, zgemmModel } from './helpers/zgemm-model.js';
import { testIf } from './helpers/children.js';
import { testRedisUrl } from './helpers/redis.js';
import { assertBitIdentical, cliPath, rejectionCode, seeded } from './helpers/support.js';
import { KERNEL_VARIANTS } from '../kernel/kernel-names.js';

const test = suite('accuracy');
const u = 2 ** -53;

const variants = KERNEL_VARIANTS.filter(kernelSupported);
const compensatedVariants: readonly KernelVariant[] = variants.filter((kernel) => kernel !== 'js');
const compensatedTest = testIf(test, 'accuracy', compensatedVariants.length > 0, () => 'no kernel with compensated accuracy runs here (neither the native addon nor WebAssembly SIMD)');

/** The longest rounding chain of a kernel's summation order for K summed columns (docs/kernels-and-accuracy.md). */
function chainLength(kernel: KernelVariant, K: number): number {
  // native: FMA chains of 32, a tree of 6 sub-blocks (depth 3), 16 blocks of 192 per chunk, the chunks; d, ±, 3M
  if (kernel.startsWith('native')) return 32 + 3 + 16 + Math.ceil(K / 3072) + 4;
  // wasm: two lanes of 32 joined, 16 blocks of 64 per chunk, the chunks; d, ±, 3M, the product's rounding
  if (kernel.startsWith('wasm')) return 32 + 1 + 16 + Math.ceil(K / 1024) + 5;
  return 32 + 32 + Math.ceil(K / 1024) + 3; // js: 4M, mul and add per term; 32 blocks of 32 per chunk; the chunks
}

type Scenario = 'mixed' | 'positive';

/** N×M: unit phases × amplitudes in [0.5, 2]; distance in [0.5, 2], mixed sign ('mixed') or positive with real,
 * positive expp ('positive': no cancellation, so partial sums grow with k, the hard case for one long chain). */
function problem(N: number, M: number, scenario: Scenario, seed: number): { expp: ComplexMatrix; distance: Float64Array } {
  const next = seeded(seed);
  const expp = createComplexMatrix(N, M);
  for (let x = 0; x < N * M; x++) {
    const amplitude = 1.25 + 0.75 * next();
    const phase = scenario === 'mixed' ? Math.PI * next() : 0;
    expp.data[2 * x] = amplitude * Math.cos(phase);
    expp.data[2 * x + 1] = amplitude * Math.sin(phase);
  }
  const distance = new Float64Array(new SharedArrayBuffer(8 * M));
  for (let m = 0; m < M; m++) {
    const v = next();
    distance[m] = (1.25 + 0.75 * Math.abs(v)) * (scenario === 'mixed' && v < 0 ? -1 : 1);
  }
  return { expp, distance };
}

/** A BLAS-style blocked sum of the same terms in plain double arithmetic: the numpy-level reference error. */
function blockedSum(expp: ComplexMatrix, distance: Float64Array): Float64Array {
  const n = expp.rows - 1;
  const K = expp.cols - 1;
  const { ar, ai, br, bi } = termPlanes(expp, distance);
  const h = new Float64Array(2 * n * n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j <= i; j++) {
      let re = 0;
      let im = 0;
      for (let k0 = 0; k0 < K; k0 += 256) {
        let sr = 0;
        let si = 0;
        for (let k = k0; k < Math.min(K, k0 + 256); k++) {
          sr += ar[i * K + k] * br[j * K + k] + ai[i * K + k] * bi[j * K + k];
          si += ai[i * K + k] * br[j * K + k] - ar[i * K + k] * bi[j * K + k];
        }
        re += sr;
        im += si;
      }
      h[2 * (i * n + j)] = h[2 * (j * n + i)] = re;
      h[2 * (i * n + j) + 1] = i === j ? 0 : im;
      h[2 * (j * n + i) + 1] = i === j ? 0 : -im;
    }
  }
  return h;
}

function maxAbs(values: Float64Array): number {
  let m = 0;
  for (const v of values) m = Math.max(m, Math.abs(v));
  return m;
}

function maxError(a: Float64Array, b: Float64Array): number {
  let m = 0;
  for (let x = 0; x < a.length; x++) m = Math.max(m, Math.abs(a[x] - b[x]));
  return m;
}

/** Every entry within 4·γ(L)·Σ t_m of the exact H. */
function assertWithinGamma(h: Float64Array, exact: ExactH, L: number, what: string): void {
  const gamma = (L * u) / (1 - L * u);
  const n = Math.round(Math.sqrt(exact.absSum.length));
  for (let x = 0; x < n * n; x++) {
    const bound = 4 * gamma * exact.absSum[x];
    for (const part of [0, 1]) {
      const error = Math.abs(h[2 * x + part] - exact.data[2 * x + part]);
      if (!(error <= bound)) assert.unreachable(`${what}: entry ${x} part ${part}: error ${error} above 4·γ(${L})·Σt = ${bound}`);
    }
  }
}

const gammaOf = (L: number): number => (L * u) / (1 - L * u);
const KC = 192;
/** The native compensated kernel's grid block (kernel.h HPAIR_COMP_GRID). */
const G = 32;

/**
 * The second term of a compensated kernel's per-entry bound, u·|H| + β·Σ t_m (docs/kernels-and-accuracy.md):
 * the native kernels sum each block of g = 32 terms on a power-of-two grid and the B = ⌈K / g⌉ block sums by
 * TwoSum, β = 2·γ(2g + 3)·(16g + 4)·u + 2·γ(B + 1)·(B + 16g + 4)·u + 16u²; the WebAssembly kernels are
 * Dot2 over the 2K products of each part, β = 4·γ(2K + 4)² + 16u².
 */
function compensatedBeta(kernel: KernelVariant, K: number): number {
  if (kernel.startsWith('native')) {
    const B = Math.ceil(K / G);
    return 2 * gammaOf(2 * G + 3) * (16 * G + 4) * u + 2 * gammaOf(B + 1) * (B + 16 * G + 4) * u + 16 * u * u;
  }
  const g = gammaOf(2 * K + 4);
  return 4 * g * g + 16 * u * u;
}

/** Every entry within u·|H| + β·Σ t_m of the exact H (compensated accuracy). */
function assertWithinCompensated(h: Float64Array, exact: ExactH, K: number, kernel: KernelVariant, what: string): void {
  const beta = compensatedBeta(kernel, K);
  const n = Math.round(Math.sqrt(exact.absSum.length));
  for (let x = 0; x < n * n; x++) {
    for (const part of [0, 1]) {
      const want = exact.data[2 * x + part];
      const bound = u * Math.abs(want) + beta * exact.absSum[x];
      const error = Math.abs(h[2 * x + part] - want);
      if (!(error <= bound)) assert.unreachable(`${what}: entry ${x} part ${part}: error ${error} above the compensated bound ${bound}`);
    }
  }
}

interface Case {
  readonly N: number;
  readonly M: number;
  readonly scenario: Scenario;
}
const cases: Case[] = [
  { N: 9, M: 1000, scenario: 'mixed' },
  { N: 6, M: 30000, scenario: 'mixed' },
  { N: 5, M: 100000, scenario: 'mixed' },
  { N: 5, M: 100000, scenario: 'positive' },
];

const pools = new Map<KernelVariant, ReturnType<typeof createPool>>();
test.before(() => {
  for (const kernel of variants) pools.set(kernel, createPool({ workers: 2, kernel, inlineFlops: 0 }));
});
test.after(async () => {
  await Promise.all([...pools.values()].map((pool) => pool.close()));
});

for (const { N, M, scenario } of cases) {
  test(`every kernel within its γ bound and at numpy's level: N = ${N}, M = ${M}, ${scenario}`, async () => {
    const { expp, distance } = problem(N, M, scenario, N * 7919 + M);
    const exact = exactHermitian(expp.data, distance, N, M);
    const scale = maxAbs(exact.data);
    const numpyLevel = 2 * maxError(blockedSum(expp, distance), exact.data) + scale * u;
    for (const kernel of variants) {
      const h = await pools.get(kernel)!.hermitian(expp, distance);
      assert.is(h.kernel, kernel);
      assertWithinGamma(h.data, exact, chainLength(kernel, M - 1), `${kernel} N ${N} M ${M} ${scenario}`);
      const error = maxError(h.data, exact.data);
      assert.ok(
        error <= numpyLevel,
        `${kernel} N ${N} M ${M} ${scenario}: max |ΔH| / max |H| = ${(error / scale).toExponential(2)}, above numpy's level ${(numpyLevel / scale).toExponential(2)}`,
      );
      if (!compensatedVariants.includes(kernel)) continue;
      const c = await pools.get(kernel)!.hermitian(expp, distance, { accuracy: 'compensated' });
      assertWithinCompensated(c.data, exact, M - 1, kernel, `${kernel} compensated N ${N} M ${M} ${scenario}`);
      const relative = maxError(c.data, exact.data) / scale;
      assert.ok(relative <= 2.5e-16, `${kernel} compensated N ${N} M ${M} ${scenario}: max |ΔH| / max |H| = ${relative}`);
      console.log(`  ${kernel} N ${N} M ${M} ${scenario}: default ${(error / scale).toExponential(2)}, compensated ${relative.toExponential(2)}, numpy level ${(numpyLevel / scale).toExponential(2)}`);
    }
  });
}

/** Σ over entries and parts of (|ΔH| / max |H|)²: pooled over many entries, a typical error that one draw's extreme
 * entry does not decide. */
function squaredErrors(h: Float64Array, exact: Float64Array): number {
  const scale = maxAbs(exact);
  let sum = 0;
  for (let x = 0; x < exact.length; x++) sum += ((h[x] - exact[x]) / scale) ** 2;
  return sum;
}

// The issue numpy users meet: a default kernel whose sums run in long chains loses digits numpy keeps at moderate M,
// where 3M's imaginary part adds three long sums. Pooled over every entry of several problems, each default kernel's
// error must be at most that of the zgemm model (helpers/zgemm-model.ts), whose error is numpy's level.
test('every default kernel at or below numpy\'s level: pooled error against the exact oracle, M = 1000 to 5000', async () => {
  const problems = [1000, 2000, 3000, 5000].map((M) => ({ M, ...problem(16, M, 'mixed', 4099 + M) }));
  let model = 0;
  const sums = new Map<KernelVariant, number>();
  for (const { M, expp, distance } of problems) {
    const exact = exactHermitian(expp.data, distance, 16, M).data;
    model += squaredErrors(zgemmModel(expp, distance), exact);
    for (const kernel of variants) {
      const h = await pools.get(kernel)!.hermitian(expp, distance);
      sums.set(kernel, (sums.get(kernel) ?? 0) + squaredErrors(h.data, exact));
    }
  }
  for (const kernel of variants) {
    const ratio = Math.sqrt(sums.get(kernel)! / model);
    console.log(`  ${kernel}: pooled error ${ratio.toFixed(2)}× the zgemm model's`);
    assert.ok(ratio <= 1, `${kernel}: pooled error ${ratio.toFixed(3)}× the zgemm model's (numpy's level)`);
  }
});

/** Columns 1, 2, … in pairs (d, −d) over the same expp values up to a nudge: big terms cancel to a small H. */
function cancelling(N: number, M: number, nudge: number, integer: boolean, seed: number): { expp: ComplexMatrix; distance: Float64Array } {
  const next = seeded(seed);
  const expp = createComplexMatrix(N, M);
  const distance = new Float64Array(new SharedArrayBuffer(8 * M));
  distance[0] = 1; // column 0 is not summed
  for (let m = 1; m < M; m += 2) {
    const d = integer ? 2 ** Math.floor(3 * Math.abs(next()) - 1) : 1.25 + 0.75 * next();
    distance[m] = d;
    if (m + 1 < M) distance[m + 1] = -d;
    for (let r = 0; r < N; r++) {
      for (const part of [0, 1]) {
        // integer: values up to 2^29, so products (up to 2^60) are not doubles and partial sums round
        const big = integer ? Math.round(next() * 2 ** 29) : next() * 1e4;
        expp.data[2 * (r * M + m) + part] = big;
        if (m + 1 < M) expp.data[2 * (r * M + m + 1) + part] = integer ? big + Math.round(next() * nudge) : big * (1 + nudge * next());
      }
    }
  }
  return { expp, distance };
}

compensatedTest('compensated: integer-valued inputs whose exact H is a double come out exact; default does not', async () => {
  const N = 7;
  const M = 4001;
  const { expp, distance } = cancelling(N, M, 8, true, 3);
  const exact = exactHermitian(expp.data, distance, N, M);
  // every entry a multiple of 1/2 below 2^50 (distances are 1/2, 1 or 2): a double, so the oracle returns it exactly
  assert.ok(exact.data.every((v) => Number.isInteger(2 * v) && Math.abs(v) < 2 ** 50), 'the exact H is representable');
  for (const kernel of compensatedVariants) {
    const c = await pools.get(kernel)!.hermitian(expp, distance, { accuracy: 'compensated' });
    // equal as numbers (the wasm kernel's store leaves the diagonal's imaginary part −0, the oracle +0)
    for (let x = 0; x < exact.data.length; x++) {
      if (c.data[x] !== exact.data[x]) assert.unreachable(`${kernel} compensated: value ${x} is ${c.data[x]}, the exact H ${exact.data[x]}`);
    }
    const d = await pools.get(kernel)!.hermitian(expp, distance);
    assert.ok(maxError(d.data, exact.data) > 0, `${kernel} default: expected rounding errors here (products of 2^29-sized integers)`);
  }
});

compensatedTest('compensated: an ill-conditioned H (terms cancelling to 1e-9 of their size) keeps its digits; default loses them', async () => {
  const N = 6;
  const M = 20001;
  const { expp, distance } = cancelling(N, M, 1e-9, false, 4);
  const exact = exactHermitian(expp.data, distance, N, M);
  const scale = maxAbs(exact.data);
  for (const kernel of compensatedVariants) {
    const d = await pools.get(kernel)!.hermitian(expp, distance);
    const c = await pools.get(kernel)!.hermitian(expp, distance, { accuracy: 'compensated' });
    const lost = maxError(d.data, exact.data) / scale;
    const kept = maxError(c.data, exact.data) / scale;
    assert.ok(lost > 1e-12, `${kernel} default: relative error ${lost} (expected digits lost)`);
    assert.ok(kept <= 2.5e-16, `${kernel} compensated: relative error ${kept}`);
    assertWithinCompensated(c.data, exact, M - 1, kernel, `${kernel} compensated, ill-conditioned`);
    console.log(`  ${kernel} ill-conditioned: default ${lost.toExponential(2)}, compensated ${kept.toExponential(2)}`);
  }
});

/** N×M with amplitudes 2^e, e uniform in [−60, 60] per value, and |distance| 2^e in [2^−20, 2^20], mixed sign:
 * terms spanning 2^±160 inside every k block, the case where a block's grid (set by its largest terms) is coarsest
 * for the rest. `cancelling`: columns in pairs (d, −d) over values equal up to 1e-9, so H is far below Σ|terms|. */
function wideProblem(N: number, M: number, cancelling: boolean, seed: number): { expp: ComplexMatrix; distance: Float64Array } {
  const next = seeded(seed);
  const scale = (): number => 2 ** Math.round(60 * next());
  const expp = createComplexMatrix(N, M);
  const distance = new Float64Array(new SharedArrayBuffer(8 * M));
  for (let m = 0; m < M; m++) {
    const pair = cancelling && m % 2 === 0 && m > 0;
    distance[m] = pair ? -distance[m - 1] : (next() < 0 ? -1 : 1) * (1.25 + 0.75 * next()) * 2 ** Math.round(20 * next());
    for (let r = 0; r < N; r++) {
      for (const part of [0, 1]) {
        const at = 2 * (r * M + m) + part;
        expp.data[at] = pair ? expp.data[at - 2] * (1 + 1e-9 * next()) : next() * scale();
      }
    }
  }
  return { expp, distance };
}

compensatedTest('compensated: terms spanning 2^±160 in every block, plain and cancelling: within the bound, and the same bits on every native path and worker count', async () => {
  for (const cancelling of [false, true]) {
    const N = 7;
    const M = 3 * KC + 58; // three whole blocks and a short one
    const { expp, distance } = wideProblem(N, M, cancelling, cancelling ? 12 : 11);
    const exact = exactHermitian(expp.data, distance, N, M);
    const scale = maxAbs(exact.data);
    let nativeBits: Float64Array | undefined;
    for (const kernel of compensatedVariants) {
      const c = await pools.get(kernel)!.hermitian(expp, distance, { accuracy: 'compensated' });
      const what = `${kernel} compensated, wide${cancelling ? ', cancelling' : ''}`;
      assertWithinCompensated(c.data, exact, M - 1, kernel, what);
      const relative = maxError(c.data, exact.data) / scale;
      assert.ok(relative <= 2.5e-16, `${what}: max |ΔH| / max |H| = ${relative}`);
      if (!kernel.startsWith('native')) continue;
      const one = createPool({ workers: 1, kernel, inlineFlops: 0, accuracy: 'compensated' });
      try {
        assertBitIdentical((await one.hermitian(expp, distance)).data, c.data, `${what}: 1 and 2 workers`);
      } finally {
        await one.close();
      }
      if (nativeBits) assertBitIdentical(c.data, nativeBits, `${what}: the same bits as the other native paths`);
      nativeBits = c.data;
      console.log(`  ${what}: max |ΔH| / max |H| = ${relative.toExponential(2)}`);
    }
  }
});

test('compensated: terms near the top of the double range fail with OVERFLOW or come out within the bound, never wrong', async () => {
  // Values of 2^510 in consecutive columns with distances +1, −1: each term is about 2^1021, H is exactly 0 and every
  // partial sum stays finite, but a native block's grid (eight times the block's Σ |terms|) does not exist.
  const N = 3;
  const M = 401;
  const expp = createComplexMatrix(N, M);
  const distance = new Float64Array(new SharedArrayBuffer(8 * M));
  for (let m = 0; m < M; m++) {
    distance[m] = m % 2 === 0 ? -1 : 1;
    const column = Math.floor((m + 1) / 2);
    for (let r = 0; r < N - 1; r++) for (const part of [0, 1]) expp.data[2 * (r * M + m) + part] = (1 + ((column * 7 + r * 3 + part) % 5) / 8) * 2 ** 510;
  }
  const exact = exactHermitian(expp.data, distance, N, M);
  assert.ok(exact.data.every((v) => v === 0), 'the exact H is 0');
  for (const kernel of compensatedVariants) {
    const job = pools.get(kernel)!.hermitian(expp, distance, { accuracy: 'compensated' });
    const outcome = await job.then((h) => h, (error: { code?: string }) => error.code ?? String(error));
    if (typeof outcome === 'string') {
      assert.is(outcome, 'OVERFLOW', `${kernel} compensated: rejected with ${outcome}`);
      continue;
    }
    assert.ok(!kernel.startsWith('native'), `${kernel} compensated: returned a result where its grid overflows (documented: OVERFLOW)`);
    assertWithinCompensated(outcome.data, exact, M - 1, kernel, `${kernel} compensated near overflow`);
  }
});

test('compensated: a job small enough to run inline gives the workers\' bits', async () => {
  const { expp, distance } = problem(5, 60, 'mixed', 21);
  for (const kernel of compensatedVariants) {
    const p = createPool({ workers: 1, kernel });
    try {
      const here = await p.hermitian(expp, distance, { accuracy: 'compensated' });
      const there = await pools.get(kernel)!.hermitian(expp, distance, { accuracy: 'compensated' });
      assert.is(p.stats().inline, 1, 'the job ran inline');
      assertBitIdentical(here.data, there.data, `${kernel}: inline and on the workers`);
    } finally {
      await p.close();
    }
  }
});

test('compensated: kernels without it refuse it (INVALID_ARGUMENT), never a plain result in its place', async () => {
  for (const kernel of variants.filter((v) => !compensatedVariants.includes(v))) {
    let code = '';
    try {
      createPool({ workers: 1, kernel, accuracy: 'compensated' });
    } catch (error) {
      code = (error as { code?: string }).code ?? String(error);
    }
    assert.is(code, 'INVALID_ARGUMENT', `${kernel}: createPool with accuracy 'compensated'`);
    const { expp, distance } = problem(5, 40, 'mixed', 1);
    assert.is(await rejectionCode(pools.get(kernel)!.hermitian(expp, distance, { accuracy: 'compensated' })), 'INVALID_ARGUMENT', `${kernel}: job option`);
  }
  const { expp, distance } = problem(5, 40, 'mixed', 1);
  const any = pools.get(variants[0])!;
  assert.is(await rejectionCode(any.hermitian(expp, distance, { accuracy: 'double' as never })), 'INVALID_ARGUMENT', 'an unknown accuracy');
  assert.throws(() => createPool({ workers: 1, accuracy: 'exact' as never }), (error: { code?: string }) => error.code === 'INVALID_ARGUMENT');
});

test('several chunks of k, both accuracies: the same bits on 1 and 2 workers, whole H and a block of it, every native path', async () => {
  const N = 40;
  const M = 2 * 3072 + 500; // several chunks of every kernel (1024 or 3072 columns), the last one ragged
  const { expp, distance } = problem(N, M, 'mixed', 5);
  const runs = [
    ...variants.map((kernel) => ({ kernel, accuracy: 'default' as const })),
    ...compensatedVariants.map((kernel) => ({ kernel, accuracy: 'compensated' as const })),
  ];
  const first = new Map<string, Float64Array>();
  for (const { kernel, accuracy } of runs) {
    const one = createPool({ workers: 1, kernel, inlineFlops: 0, accuracy });
    try {
      const a = await one.hermitian(expp, distance);
      if (kernel.startsWith('native')) {
        const other = first.get(accuracy);
        if (other) assertBitIdentical(a.data, other, `${kernel} ${accuracy}: the same bits as the other native path`);
        else first.set(accuracy, a.data);
      }
      const b = await pools.get(kernel)!.hermitian(expp, distance, { accuracy });
      assertBitIdentical(a.data, b.data, `${kernel} ${accuracy}: 1 and 2 workers`);
      const block = await pools.get(kernel)!.hermitianBlock(expp, distance, { rows: [3, 29], cols: [11, 37] }, { accuracy });
      for (let i = 3; i < 29; i++) {
        for (let j = 11; j < 37; j++) {
          for (const part of [0, 1]) {
            const got = block.data[2 * ((i - 3) * 26 + (j - 11)) + part];
            const want = a.data[2 * (i * (N - 1) + j) + part];
            if (!Object.is(got, want)) assert.unreachable(`${kernel} ${accuracy}: block entry (${i}, ${j}) part ${part}: ${got} vs ${want} in the whole H`);
          }
        }
      }
    } finally {
      await one.close();
    }
  }
});

compensatedTest('the CLI: --accuracy compensated gives the pool\'s bits in memory and out of core', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'hpair-accuracy-'));
  try {
    const N = 150;
    const M = 300;
    const { expp, distance } = problem(N, M, 'mixed', 9);
    writeFileSync(join(dir, 'e.npy'), encodeComplexMatrixNpy(expp));
    writeFileSync(join(dir, 'd.npy'), encodeFloat64VectorNpy(distance));
    const want = await pools.get(compensatedVariants[0])!.hermitian(expp, distance, { accuracy: 'compensated' });
    const plain = await pools.get(compensatedVariants[0])!.hermitian(expp, distance);
    const common = ['compute', '--expp', join(dir, 'e.npy'), '--distance', join(dir, 'd.npy'), '--workers', '2'];
    cli([...common, '--out', join(dir, 'h.npy'), '--accuracy', 'compensated']);
    assertBitIdentical(parseComplexMatrixNpy(readFileSync(join(dir, 'h.npy'))).data, want.data, 'in memory');
    // Out of core into the same file, default then compensated: each run gives its own accuracy's bits.
    const out = join(dir, 'o.npy');
    cli([...common, '--out', out, '--max-memory', '3M']);
    assertBitIdentical(parseComplexMatrixNpy(readFileSync(out)).data, plain.data, 'out of core, default');
    cli([...common, '--out', out, '--max-memory', '3M', '--accuracy', 'compensated']);
    assertBitIdentical(parseComplexMatrixNpy(readFileSync(out)).data, want.data, 'out of core, compensated');
    assert.not.ok(existsSync(`${out}.journal`), 'no journal left after a finished run');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

compensatedTest('out of core: a run of one accuracy never resumes the journal of the other', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'hpair-accuracy-journal-'));
  const kernel = compensatedVariants[0];
  const compensated = createPool({ workers: 2, kernel, accuracy: 'compensated' });
  try {
    const N = 121;
    const M = 90;
    const { expp, distance } = problem(N, M, 'mixed', 12);
    writeFileSync(join(dir, 'e.npy'), encodeComplexMatrixNpy(expp));
    writeFileSync(join(dir, 'd.npy'), encodeFloat64VectorNpy(distance));
    const out = join(dir, 'h.npy');
    const args = { expp: join(dir, 'e.npy'), distance: join(dir, 'd.npy'), out, blockSize: 20, commitIntervalMs: 0 };
    // A default run stopped after some blocks leaves its journal.
    const controller = new AbortController();
    const first = computeToNpy(pools.get(kernel)!, { ...args, signal: controller.signal, onProgress: (p) => (p.blocksDone >= 5 ? controller.abort() : undefined) });
    assert.is(await rejectionCode(first), 'ABORTED');
    assert.ok(existsSync(`${out}.journal`), 'the default run left a journal');
    // The compensated run must not take those blocks as its own.
    let code = '';
    try {
      const summary = await computeToNpy(compensated, args);
      assert.is(summary.skipped, 0, 'no default block was kept');
      code = 'finished';
    } catch (error) {
      code = (error as { code?: string }).code ?? String(error);
    }
    if (code === 'finished') {
      const want = await compensated.hermitian(expp, distance);
      assertBitIdentical(parseComplexMatrixNpy(readFileSync(out)).data, want.data, 'compensated out of core after a default journal');
    } else assert.is(code, 'INVALID_ARGUMENT', 'refused, or recomputed from scratch');
  } finally {
    await compensated.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('cluster: a compensated submission gives the pool\'s compensated bits; a bad accuracy is refused', async () => {
  const url = await testRedisUrl();
  if (url === undefined || compensatedVariants.length === 0) {
    console.log(`  skipped: ${url === undefined ? 'no Redis (redis-server is not installed and HPAIR_TEST_REDIS is not set)' : 'no kernel with compensated accuracy runs here'}`);
    return;
  }
  const { createClusterWorker, submitToCluster, connectRedis } = await import('hpair/cluster');
  const dir = mkdtempSync(join(tmpdir(), 'hpair-accuracy-cluster-'));
  const kernel = compensatedVariants[0];
  const client = await connectRedis(url);
  const queue = `acc${process.pid}-${Date.now().toString(36)}`;
  const worker = await createClusterWorker({ connection: client, queue, pool: pools.get(kernel)! });
  try {
    await worker.ready();
    const N = 121;
    const M = 90;
    const { expp, distance } = problem(N, M, 'mixed', 31);
    writeFileSync(join(dir, 'e.npy'), encodeComplexMatrixNpy(expp));
    writeFileSync(join(dir, 'd.npy'), encodeFloat64VectorNpy(distance));
    const out = join(dir, 'h.npy');
    const base = { connection: client, queue, expp: join(dir, 'e.npy'), distance: join(dir, 'd.npy'), out, blockSize: 40, kernel };
    await submitToCluster({ ...base, accuracy: 'compensated' });
    const want = await pools.get(kernel)!.hermitian(expp, distance, { accuracy: 'compensated' });
    assertBitIdentical(parseComplexMatrixNpy(readFileSync(out)).data, want.data, 'cluster, compensated');
    // Bad values and kernels without it are refused before anything is queued.
    for (const [options, why] of [[{ accuracy: 'exact' }, 'an unknown accuracy'], [{ accuracy: 'compensated', kernel: 'js' }, 'js']] as const) {
      const error = await submitToCluster({ ...base, out: join(dir, 'x.npy'), ...(options as object) }).then(() => undefined, (e: { code?: string }) => e);
      assert.is(error?.code, 'INVALID_ARGUMENT', why);
    }
  } finally {
    await worker.close();
    await client.quit();
    rmSync(dir, { recursive: true, force: true });
  }
});

function cli(args: string[]): void {
  execFileSync(process.execPath, [cliPath, ...args], { stdio: ['ignore', 'ignore', 'pipe'], timeout: 120_000 });
}

test.run();
