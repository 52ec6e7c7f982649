import type { ComplexMatrix } from '../shared/complex-matrix.js';
import type { KernelVariant } from './kernel-names.js';

/** H as a job resolves it: the matrix, and the kernel variant that computed it. */
export interface HermitianResult extends ComplexMatrix {
  /** Which kernel ran: the pool's, or the one this job fell back to (e.g. when wasm memory would pass 4 GiB). */
  readonly kernel: KernelVariant;
}

/** A rectangle of H: rows [rows[0], rows[1]) × columns [cols[0], cols[1]) of the (N−1)×(N−1) H. */
export interface HermitianBlock {
  readonly rows: readonly [number, number];
  readonly cols: readonly [number, number];
}
