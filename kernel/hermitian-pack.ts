import { defineKernel } from './contract.js';
import { firstNonFinite } from './hermitian-inputs.js';
import { Plane, planeOffset, type PanelLayout } from './panels.js';

/**
 * Step 1 of an H job, over `range(N)`: checks each expp row for non-finite values and packs difference
 * rows into the panels. Forming the differences here, once per row, is what the seed did once per pair.
 * Row N−1 is the reference row: it is checked but not packed.
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

export const NO_BAD_VALUE = 2n ** 62n;

export const packKernel = defineKernel<PackBuffers, PackParams>({
  tile(tile, { buffers, params }) {
    const { expp, distance, panels, badValue } = buffers;
    const { N, M, layout } = params;
    const { stride, planes } = layout;
    const ar = planeOffset(layout, Plane.AR);
    const ai = planeOffset(layout, Plane.AI);
    const br = planeOffset(layout, Plane.BR);
    const bi = planeOffset(layout, Plane.BI);
    const as = planeOffset(layout, Plane.AS);
    const bd = planeOffset(layout, Plane.BD);
    const ref = 2 * (N - 1) * M;
    for (let r = tile.i0; r < tile.i1; r++) {
      const bad = firstNonFinite(expp, 2 * r * M, 2 * (r + 1) * M);
      if (bad >= 0) {
        atomicMin(badValue, BigInt(bad));
        return; // the job fails; nothing after the first bad value in this tile matters
      }
      if (r === N - 1) continue;
      const row = r * stride;
      for (let m = 1; m < M; m++) {
        const dr = expp[2 * (r * M + m)] - expp[ref + 2 * m];
        const di = expp[2 * (r * M + m) + 1] - expp[ref + 2 * m + 1];
        const wr = dr / distance[m];
        const wi = di / distance[m];
        const at = row + m - 1;
        panels[ar + at] = dr;
        panels[ai + at] = di;
        panels[br + at] = wr;
        panels[bi + at] = wi;
        if (planes === 6) {
          panels[as + at] = dr + di;
          panels[bd + at] = wr - wi;
        }
      }
      // Panels are reused between jobs: the padding must be rewritten, not assumed zero.
      for (let k = layout.k; k < stride; k++) {
        for (let p = 0; p < planes; p++) panels[p * layout.rows * stride + row + k] = 0;
      }
    }
  },
});

function atomicMin(cell: BigInt64Array, value: bigint): void {
  let seen = Atomics.load(cell, 0);
  while (value < seen) {
    const previous = Atomics.compareExchange(cell, 0, seen, value);
    if (previous === seen) return;
    seen = previous;
  }
}
