import { MICRO_PLANES } from './micro-panels.mjs';

/**
 * Packed panels: the per-job rearrangement of the inputs that the pair kernels stream through, built
 * once per job by the workers (hermitian-pack.ts). With A = expp[r, 1:] − expp[N−1, 1:] (difference
 * rows r < N−1) and B = A / distance[1:]:
 *
 * - `planar` (the JavaScript kernel): four planes AR, AI, BR, BI, each `rows × stride` float64, row-major,
 *   K zero-padded to an even `stride`.
 * - `micro` (the WebAssembly kernels, see kernel/wasm/generate-wat.mjs): an A side and a B side, each with
 *   planes re, im and re ± im (A: Ar + Ai, B: Br − Bi, for the 3M method), interleaved in micro-panels of
 *   `mr` (A) or `nr` (B) rows as kernel/micro-panels.mjs lays them out. Rows are zero-padded to
 *   `paddedRows` (a multiple of mr and nr) and K to `kp` (even).
 *
 * Offsets are in float64 elements from the start of the panels view.
 */
export type PanelLayout = PlanarLayout | MicroLayout | PairLayout;

export interface PlanarLayout {
  readonly kind: 'planar';
  /** Difference rows: N − 1. */
  readonly rows: number;
  /** Summed columns: M − 1. */
  readonly k: number;
  /** Row stride: k rounded up to even. */
  readonly stride: number;
}

export interface MicroLayout {
  readonly kind: 'micro';
  readonly rows: number;
  readonly k: number;
  /** k zero-padded to even. */
  readonly kp: number;
  readonly mr: number;
  readonly nr: number;
  /** rows zero-padded to a multiple of mr and nr. */
  readonly paddedRows: number;
  /** Where the B side starts (the A side starts at 0). */
  readonly bOffset: number;
}

/**
 * `pairs` (the WebAssembly kernels' compensated accuracy): DD_PLANES planes of `rows × stride` float64, row-major,
 * K zero-padded to an even `stride`. For each of ar, ai (A side, planes 0–7) and br, bi (B = A / d, planes 8–15):
 * the value's high part x, its Veltkamp split x = xs + xt (26 and 27 bits, so products of splits are exact), and its
 * low part (A: the rounding error of the difference, exact by TwoSum; B: the quotient's next digits), in that order.
 */
export interface PairLayout {
  readonly kind: 'pairs';
  readonly rows: number;
  readonly k: number;
  readonly stride: number;
}

export const DD_PLANES = 16;

export function pairLayout(N: number, M: number): PairLayout {
  const k = Math.max(0, M - 1);
  return { kind: 'pairs', rows: Math.max(0, N - 1), k, stride: k + (k % 2) };
}

export const PlanarPlane = { AR: 0, AI: 1, BR: 2, BI: 3 } as const;

export function planarLayout(N: number, M: number): PlanarLayout {
  const k = Math.max(0, M - 1);
  return { kind: 'planar', rows: Math.max(0, N - 1), k, stride: k + (k % 2) };
}

export function microLayout(N: number, M: number, mr: number, nr: number): MicroLayout {
  const rows = Math.max(0, N - 1);
  const k = Math.max(0, M - 1);
  const kp = k + (k % 2);
  const unit = lcm(mr, nr);
  const paddedRows = Math.ceil(rows / unit) * unit;
  return { kind: 'micro', rows, k, kp, mr, nr, paddedRows, bOffset: paddedRows * kp * MICRO_PLANES };
}

/** float64 values the panels occupy. */
export function panelLength(layout: PanelLayout): number {
  if (layout.kind === 'pairs') return DD_PLANES * layout.rows * layout.stride;
  return layout.kind === 'planar' ? 4 * layout.rows * layout.stride : 2 * layout.bOffset;
}

export function planarPlaneOffset(layout: PlanarLayout, plane: number): number {
  return plane * layout.rows * layout.stride;
}

function lcm(a: number, b: number): number {
  const gcd = (x: number, y: number): number => (y === 0 ? x : gcd(y, x % y));
  return (a * b) / gcd(a, b);
}
