import { WASM_MICRO_TILE, type KernelVariant } from './kernel-variant.js';
import { microLayout, panelLength, planarLayout } from './panels.js';

/** Useful floating-point operations of one H: 8 per complex multiply-add, over the lower triangle. */
export function hermitianFlops(N: number, M: number): number {
  return (8 * (N - 1) * N * Math.max(0, M - 1)) / 2;
}

/** Bytes an H job allocates or borrows beyond its inputs: H and the packed panels. */
export function hermitianJobBytes(N: number, M: number, variant: KernelVariant): { h: number; panels: number } {
  const n = Math.max(0, N - 1);
  const { mr, nr } = WASM_MICRO_TILE;
  const panels = variant === 'js' ? panelLength(planarLayout(N, M)) : panelLength(microLayout(N, M, mr, nr));
  return { h: 16 * n * n, panels: 8 * panels };
}

