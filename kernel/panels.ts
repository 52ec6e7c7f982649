/**
 * Packed panels: the per-job rearrangement of the inputs that the pair kernels stream through.
 * Row r of every plane holds the K = M−1 summed columns of difference row r, zero-padded to
 * `stride` (a multiple of 2, so SIMD kernels read whole f64x2 pairs and the padding adds 0).
 *
 *   AR, AI: A = expp[r, 1:] − expp[N−1, 1:]           (the left factor)
 *   BR, BI: B = A / distance[1:]                       (the weighted right factor, conjugated in use)
 *   AS, BD: AR + AI and BR − BI, only for the 3M method (three real products instead of four)
 *
 * Planes are consecutive, each `rows × stride` float64 values.
 */
export const Plane = { AR: 0, AI: 1, BR: 2, BI: 3, AS: 4, BD: 5 } as const;

export interface PanelLayout {
  /** Difference rows: N − 1. */
  readonly rows: number;
  /** Summed columns: M − 1. */
  readonly k: number;
  /** Row stride in float64 values: k rounded up to even. */
  readonly stride: number;
  /** 4 (AR, AI, BR, BI) or 6 (plus AS, BD for the 3M method). */
  readonly planes: 4 | 6;
}

export function panelLayout(N: number, M: number, planes: 4 | 6): PanelLayout {
  const k = Math.max(0, M - 1);
  return { rows: Math.max(0, N - 1), k, stride: k + (k % 2), planes };
}

export function panelLength(layout: PanelLayout): number {
  return layout.rows * layout.stride * layout.planes;
}

export function planeOffset(layout: PanelLayout, plane: number): number {
  return plane * layout.rows * layout.stride;
}
