import { defineKernel } from '../shared/kernel-contract.js';
import type { Tile } from '../shared/index-space.js';
import { storeTile, type HWindow } from './hermitian-tile-store.js';
import { PlanarPlane as Plane, planarPlaneOffset as planeOffset, type PlanarLayout } from './panels.js';

/**
 * Step 2 of an H job in plain JavaScript (the fallback where WebAssembly SIMD is missing), over the
 * triangle of (N−1)×(N−1) pairs. Each tile sums over k in blocks of `kc` so the rows it touches stay
 * in L2, with a 2×2 register block of pairs per inner loop (8 loads feed 16 multiply-adds).
 *
 * Summation order for H[i,j] depends only on k and the pair — never on the tile's owner or kc — so
 * results are bit-identical for any worker count: k in blocks of JS_BLOCK columns, each summed from zero; the
 * blocks of a chunk of JS_CHUNK columns added in order; the chunks' sums added in order, starting from the first
 * chunk's. Short blocks and chunks keep the error at or below numpy's at every M (docs/kernels-and-accuracy.md);
 * kc, the columns a tile's rows are read over at a time (a multiple of JS_BLOCK), is only the cache blocking.
 */

/** Columns of k per block of the summation order. */
export const JS_BLOCK = 32;
/** Columns of k per chunk: 32 blocks, a multiple of every kc. */
export const JS_CHUNK = 1024;
export interface PairsBuffers {
  readonly [name: string]: Float64Array;
  readonly panels: Float64Array;
  readonly h: Float64Array;
}

export interface PairsParams {
  readonly [name: string]: unknown;
  readonly layout: PlanarLayout;
  /** Tile edge of the triangle index space: sizes the per-worker accumulator. */
  readonly tile: number;
  /** k block length. */
  readonly kc: number;
  /** The part of H that `h` holds. */
  readonly window: HWindow;
}

let acc = new Float64Array(0);
let chunkAcc = new Float64Array(0);

export const pairsJsKernel = defineKernel<PairsBuffers, PairsParams>({
  setup({ params }) {
    const need = 2 * params.tile * params.tile;
    if (acc.length < need) acc = new Float64Array(need);
    if (chunkAcc.length < need) chunkAcc = new Float64Array(need);
  },
  tile(tile, { buffers, params }) {
    const { panels, h } = buffers;
    const { layout, kc } = params;
    const K = layout.k;
    const cols = tile.j1 - tile.j0;
    const size = 2 * (tile.i1 - tile.i0) * cols;
    acc.fill(0, 0, size);
    for (let c0 = 0; c0 < K || c0 === 0; c0 += JS_CHUNK) {
      const sum = c0 === 0 ? acc : chunkAcc;
      if (c0 > 0) sum.fill(0, 0, size);
      blocks(tile, panels, layout, kc, c0, Math.min(K, c0 + JS_CHUNK), sum);
      if (c0 > 0) for (let x = 0; x < size; x++) acc[x] += sum[x];
    }
    storeTile(tile, acc, h, params.window);
  },
});

/** Adds the block sums of k in [kFrom, kTo) (blocks of kc from kFrom) into `sum`, block by block. */
function blocks(tile: Tile, panels: Float64Array, layout: PlanarLayout, kc: number, kFrom: number, kTo: number, acc: Float64Array): void {
  const { stride } = layout;
  const AR = planeOffset(layout, Plane.AR);
  const AI = planeOffset(layout, Plane.AI);
  const BR = planeOffset(layout, Plane.BR);
  const BI = planeOffset(layout, Plane.BI);
  const cols = tile.j1 - tile.j0;
  // A tile that reaches above the diagonal computes each row only up to it (+1 for the 2×2 block).
  const straddles = tile.j1 > tile.i0 + 1;
  for (let k0 = kFrom; k0 < kTo; k0 += kc) {
    const k1 = Math.min(kTo, k0 + kc);
    for (let i = tile.i0; i < tile.i1; i += 2) {
      // An odd last row or column is computed twice in the 2×2 block and stored once.
      const iB = i + 1 < tile.i1 ? i + 1 : i;
      const jEnd = straddles ? Math.min(tile.j1, i + 2) : tile.j1;
      for (let j = tile.j0; j < jEnd; j += 2) {
        const jB = j + 1 < jEnd ? j + 1 : j;
        const a0 = i * stride;
        const a1 = iB * stride;
        const b0 = j * stride;
        const b1 = jB * stride;
        const r0 = 2 * ((i - tile.i0) * cols + (j - tile.j0));
        const r1 = r0 + 2 * cols;
        for (let s0 = k0; s0 < k1; s0 += JS_BLOCK) {
          let re00 = 0, im00 = 0, re01 = 0, im01 = 0, re10 = 0, im10 = 0, re11 = 0, im11 = 0;
          for (let k = s0, s1 = Math.min(k1, s0 + JS_BLOCK); k < s1; k++) {
            const ar0 = panels[AR + a0 + k], ai0 = panels[AI + a0 + k];
            const ar1 = panels[AR + a1 + k], ai1 = panels[AI + a1 + k];
            const br0 = panels[BR + b0 + k], bi0 = panels[BI + b0 + k];
            const br1 = panels[BR + b1 + k], bi1 = panels[BI + b1 + k];
            // a · conj(b) = (ar·br + ai·bi) + i(ai·br − ar·bi)
            re00 += ar0 * br0 + ai0 * bi0;
            im00 += ai0 * br0 - ar0 * bi0;
            re01 += ar0 * br1 + ai0 * bi1;
            im01 += ai0 * br1 - ar0 * bi1;
            re10 += ar1 * br0 + ai1 * bi0;
            im10 += ai1 * br0 - ar1 * bi0;
            re11 += ar1 * br1 + ai1 * bi1;
            im11 += ai1 * br1 - ar1 * bi1;
          }
          acc[r0] += re00;
          acc[r0 + 1] += im00;
          if (jB !== j) {
            acc[r0 + 2] += re01;
            acc[r0 + 3] += im01;
          }
          if (iB !== i) {
            acc[r1] += re10;
            acc[r1 + 1] += im10;
            if (jB !== j) {
              acc[r1 + 2] += re11;
              acc[r1 + 3] += im11;
            }
          }
        }
      }
    }
  }
}
