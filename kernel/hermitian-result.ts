import type { ComplexMatrix } from '../shared/complex-matrix.js';
import type { KernelVariant } from './kernel-names.js';

/** H as a job resolves it: the matrix, and the kernel variant that computed it. */
export interface HermitianResult extends ComplexMatrix {
  /** Which kernel ran: the pool's, or the one this job fell back to (e.g. when wasm memory would pass 4 GiB). */
  readonly kernel: KernelVariant;
}
