/**
 * A model of how a BLAS zgemm sums numpy's line `(A / d) @ A.conj().T`, as the yardstick for "at least as accurate
 * as numpy" where numpy is not installed: four real products (4M), each of Re·Re, Im·Im, Re·Im and Im·Re its own
 * fused-multiply-add chain over a block of k from zero, Re = rr + ii and Im = ir − ri per block, the blocks added in
 * order. With blocks of 128 columns its error against the exact oracle is numpy's (OpenBLAS) level on the accuracy
 * tests' inputs: `node bench/orders/compare.mjs --n 24 --m 1000,3000 --seeds 3 --c zgemm-model` measures it.
 *
 * JavaScript has no fused multiply-add: fma() below adds the exact product (Dekker's split, TwoProduct) to s and
 * rounds the sum of the two error terms once more, which rounds like a hardware FMA except in rare double-rounding
 * cases: the same error statistics, not the same bits.
 */
import type { ComplexMatrix } from 'hpair';

const SPLIT = 2 ** 27 + 1;

function fma(x: number, y: number, s: number): number {
  const p = x * y;
  let c = SPLIT * x;
  const xh = c - (c - x), xl = x - xh;
  c = SPLIT * y;
  const yh = c - (c - y), yl = y - yh;
  const e = xh * yh - p + xh * yl + xl * yh + xl * yl;
  const t = s + p;
  const z = t - s;
  const f = s - (t - z) + (p - z);
  return t + (e + f);
}

/** The terms' factors as numpy forms them, row i's k-th at i·K + k: A = e − e_ref, B = A / d by true division. */
export function termPlanes(expp: ComplexMatrix, distance: Float64Array): { ar: Float64Array; ai: Float64Array; br: Float64Array; bi: Float64Array } {
  const N = expp.rows, M = expp.cols, n = N - 1, K = M - 1, e = expp.data;
  const ar = new Float64Array(n * K), ai = new Float64Array(n * K), br = new Float64Array(n * K), bi = new Float64Array(n * K);
  for (let i = 0; i < n; i++) {
    for (let k = 0; k < K; k++) {
      const m = k + 1;
      ar[i * K + k] = e[2 * (i * M + m)] - e[2 * ((N - 1) * M + m)];
      ai[i * K + k] = e[2 * (i * M + m) + 1] - e[2 * ((N - 1) * M + m) + 1];
      br[i * K + k] = ar[i * K + k] / distance[m];
      bi[i * K + k] = ai[i * K + k] / distance[m];
    }
  }
  return { ar, ai, br, bi };
}

/** H by the model, (N − 1)² complex interleaved, blocks of `block` columns of k. */
export function zgemmModel(expp: ComplexMatrix, distance: Float64Array, block = 128): Float64Array {
  const n = expp.rows - 1, K = expp.cols - 1;
  const { ar, ai, br, bi } = termPlanes(expp, distance);
  const h = new Float64Array(2 * n * n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j <= i; j++) {
      let re = 0, im = 0;
      for (let k0 = 0; k0 < K; k0 += block) {
        let rr = 0, ii = 0, ri = 0, ir = 0;
        for (let k = k0; k < Math.min(K, k0 + block); k++) {
          const a = i * K + k, b = j * K + k;
          rr = fma(ar[a], br[b], rr);
          ii = fma(ai[a], bi[b], ii);
          ri = fma(ar[a], bi[b], ri);
          ir = fma(ai[a], br[b], ir);
        }
        re += rr + ii;
        im += ir - ri;
      }
      h[2 * (i * n + j)] = re;
      h[2 * (i * n + j) + 1] = i === j ? 0 : im;
      h[2 * (j * n + i)] = re;
      h[2 * (j * n + i) + 1] = i === j ? 0 : -im;
    }
  }
  return h;
}
