import type { KernelVariant } from './kernel-names.js';
import { triangleEdge } from './hermitian-tiling.js';
import { variantNamed } from './variants.js';

/** Useful floating-point operations of one H: 8 per complex multiply-add, over the lower triangle. */
export function hermitianFlops(N: number, M: number): number {
  return (8 * (N - 1) * N * Math.max(0, M - 1)) / 2;
}

/**
 * A job's whole work in flop-equivalents: the useful flops, plus writing H (both triangles) and reading
 * expp once. It decides whether a job runs inline, so a job with M ≤ 1 (no flops) but a big H does not.
 */
export function hermitianWork(N: number, M: number): number {
  const n = Math.max(0, N - 1);
  return hermitianFlops(N, M) + 8 * n * n + 2 * N * M;
}

/**
 * Bytes an H job allocates or borrows beyond its inputs on `threads` threads: H, and the variant's scratch
 * (job-wide packed panels for the js and wasm kernels, per-thread packs for the native ones, for the tile edge
 * the job is cut to: kernel/hermitian-tiling.ts, triangleEdge), as the pool counts them against maxBytes, at
 * accuracy 'default'.
 */
export function hermitianJobBytes(N: number, M: number, variant: KernelVariant, threads = 1): { h: number; panels: number } {
  const n = Math.max(0, N - 1);
  const v = variantNamed(variant);
  const scratch = v.scratchBytes(N, M, threads, triangleEdge(n, v.tileEdges(M, 'default'), v.tileStep, threads));
  return { h: 16 * n * n, panels: scratch.wasm + scratch.shared + scratch.native };
}
