import { defineKernel } from '../shared/kernel-contract.js';
import type { StepPlan } from '../shared/job.js';
import { atomicMin } from './hermitian-check.js';
import { firstNonFinite } from './hermitian-inputs.js';
import { builtinRef } from './kernel-names.js';
import { microOffset, pairChunk, planeStride } from './micro-panels.mjs';
import { DD_PLANES, PlanarPlane, planarPlaneOffset, type MicroLayout, type PairLayout, type PanelLayout, type PlanarLayout } from './panels.js';
import type { HermitianProblem } from './variant.js';

/**
 * Step 1 of an H job, over the rows: checks each expp row for non-finite values and packs difference
 * rows into the panels (layouts in panels.ts). Forming the differences here, once per row, is what the
 * seed did once per pair. Row N−1 is the reference row: checked, not packed. Padding rows and columns
 * are rewritten with zeros every time, because panels are reused between jobs.
 */
export interface PackBuffers {
  readonly [name: string]: Float64Array | BigInt64Array;
  readonly expp: Float64Array;
  readonly distance: Float64Array;
  readonly panels: Float64Array;
  /** [0]: smallest flat index of a non-finite value in expp, kept by atomic min; starts at NO_BAD_VALUE. */
  readonly badValue: BigInt64Array;
}

export interface PackParams {
  readonly [name: string]: unknown;
  readonly N: number;
  readonly M: number;
  readonly layout: PanelLayout;
}

/** Rows per pack tile: enough to amortise the per-tile overhead, small enough to spread N rows. */
const PACK_TILE = 32;

/** The pack step of a job: every input row, and every padding row of the panels. */
export function packStep({ N, M, expp, distance, badValue }: HermitianProblem, panels: Float64Array, layout: PanelLayout): StepPlan {
  return {
    kernel: builtinRef('hermitian/pack'),
    space: { kind: 'range', n: Math.max(N, layout.kind === 'micro' ? layout.paddedRows : 0), tile: PACK_TILE },
    buffers: { expp, distance, panels, badValue },
    params: { N, M, layout },
  };
}

export const packKernel = defineKernel<PackBuffers, PackParams>({
  tile(tile, { buffers, params }) {
    const { expp, badValue } = buffers;
    const { N, M, layout } = params;
    for (let r = tile.i0; r < tile.i1; r++) {
      if (r < N) {
        const bad = firstNonFinite(expp, 2 * r * M, 2 * (r + 1) * M);
        if (bad >= 0) {
          atomicMin(badValue, BigInt(bad));
          return; // the job fails; nothing after the first bad value in this tile matters
        }
      }
      if (layout.kind === 'pairs') {
        if (r < layout.rows) packPairRow(r, buffers, N, M, layout);
      } else if (layout.kind === 'planar') {
        if (r < layout.rows) packPlanarRow(r, buffers, N, M, layout);
      } else if (r < layout.paddedRows) {
        packMicroRow(r, buffers, N, M, layout); // rows ≥ N − 1 (the reference row's slot and beyond) become zeros
      }
    }
  },
});

/** Veltkamp's split factor for doubles: 2^27 + 1. */
const SPLIT = 134217729;

function packPairRow(r: number, { expp, distance, panels }: PackBuffers, N: number, M: number, layout: PairLayout): void {
  const { rows, stride } = layout;
  const plane = rows * stride;
  const base = r * stride - 1; // column m = k + 1 of expp is k of the panels
  const ref = 2 * (N - 1) * M;
  for (let m = 1; m < M; m++) {
    const d = distance[m];
    for (let part = 0; part < 2; part++) {
      // a = e − e_ref exactly as h + l (TwoSum)
      const e = expp[2 * (r * M + m) + part];
      const f = -expp[ref + 2 * m + part];
      const h = e + f;
      const z = h - e;
      const l = e - (h - z) + (f - z);
      // b = a / d as q + ql: q·d exactly as p + pe (Dekker's product), so h − q·d = (h − p) − pe exactly
      const q = h / d;
      const [qs, qt] = split(q);
      const [ds, dt] = split(d);
      const p = q * d;
      const pe = qs * ds - p + qs * dt + qt * ds + qt * dt;
      const ql = (h - p - pe + l) / d;
      const [hs, ht] = split(h);
      const a = (part * 4) * plane + base + m;
      panels[a] = h;
      panels[a + plane] = hs;
      panels[a + 2 * plane] = ht;
      panels[a + 3 * plane] = l;
      const b = (8 + part * 4) * plane + base + m;
      panels[b] = q;
      panels[b + plane] = qs;
      panels[b + 2 * plane] = qt;
      panels[b + 3 * plane] = ql;
    }
  }
  for (let q = 0; q < DD_PLANES; q++) for (let k = layout.k; k < stride; k++) panels[q * plane + r * stride + k] = 0;
}

function split(x: number): [number, number] {
  const c = SPLIT * x;
  const hi = c - (c - x);
  return [hi, x - hi];
}

function packPlanarRow(r: number, { expp, distance, panels }: PackBuffers, N: number, M: number, layout: PlanarLayout): void {
  const ar = planarPlaneOffset(layout, PlanarPlane.AR) + r * layout.stride - 1;
  const ai = planarPlaneOffset(layout, PlanarPlane.AI) + r * layout.stride - 1;
  const br = planarPlaneOffset(layout, PlanarPlane.BR) + r * layout.stride - 1;
  const bi = planarPlaneOffset(layout, PlanarPlane.BI) + r * layout.stride - 1;
  const ref = 2 * (N - 1) * M;
  for (let m = 1; m < M; m++) {
    const dr = expp[2 * (r * M + m)] - expp[ref + 2 * m];
    const di = expp[2 * (r * M + m) + 1] - expp[ref + 2 * m + 1];
    panels[ar + m] = dr;
    panels[ai + m] = di;
    panels[br + m] = dr / distance[m];
    panels[bi + m] = di / distance[m];
  }
  for (let m = layout.k + 1; m <= layout.stride; m++) {
    panels[ar + m] = 0;
    panels[ai + m] = 0;
    panels[br + m] = 0;
    panels[bi + m] = 0;
  }
}

function packMicroRow(r: number, { expp, distance, panels }: PackBuffers, N: number, M: number, layout: MicroLayout): void {
  const { mr, nr, kp, bOffset } = layout;
  const a = microOffset(kp, mr, r, 0);
  const b = bOffset + microOffset(kp, nr, r, 0);
  const aPlane = planeStride(mr);
  const bPlane = planeStride(nr);
  const aChunk = pairChunk(mr);
  const bChunk = pairChunk(nr);
  const ref = 2 * (N - 1) * M;
  const real = r < layout.rows;
  for (let k = 0; k < kp; k++) {
    // Within a micro-panel, consecutive k alternate lanes of one pair, then jump a whole k-pair chunk.
    const lane = k & 1;
    const at = a + (k >> 1) * aChunk + lane;
    const bt = b + (k >> 1) * bChunk + lane;
    let dr = 0;
    let di = 0;
    let wr = 0;
    let wi = 0;
    if (real && k < layout.k) {
      const m = k + 1;
      dr = expp[2 * (r * M + m)] - expp[ref + 2 * m];
      di = expp[2 * (r * M + m) + 1] - expp[ref + 2 * m + 1];
      wr = dr / distance[m];
      wi = di / distance[m];
    }
    panels[at] = dr;
    panels[at + aPlane] = di;
    panels[at + 2 * aPlane] = dr + di;
    panels[bt] = wr;
    panels[bt + bPlane] = wi;
    panels[bt + 2 * bPlane] = wr - wi;
  }
}
