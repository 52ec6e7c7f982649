import { HpairError } from '../shared/errors.js';
import { complexMatrixLength, type ComplexMatrix } from '../shared/complex-matrix.js';
import { allocateShared } from './memory-thread.js';

/**
 * A zeroed rows×cols complex matrix in shared memory, laid out as `createComplexMatrix` lays it out, for a big
 * matrix a caller keeps: an `out` reused job after job, or inputs filled in place. From 2 MiB it is mapped on
 * hpair's memory thread, with transparent huge pages asked for before anything touches it where the native
 * addon loads and the host gains from them (workers/huge-pages.ts; `HPAIR_NO_HUGE_PAGES=1` turns that off, `0`
 * on), and freed there once dropped; at any size it is counted
 * toward this thread's collection schedule, as a new H is (V8 does not count a SharedArrayBuffer's bytes, so a
 * dropped one from `createComplexMatrix` waits for a collection something else causes). The gain is mostly that
 * freeing and counting, not speed (`npm run bench:release`, out-pages, compares the two kinds of `out`).
 *
 * Rejects with INVALID_ARGUMENT for a shape that is not two non-negative integers, TOO_LARGE past 2^32 values
 * or when the memory cannot be had.
 */
export async function allocateComplexMatrix(rows: number, cols: number): Promise<ComplexMatrix> {
  const length = complexMatrixLength(rows, cols);
  let buffer: SharedArrayBuffer;
  try {
    buffer = await allocateShared(8 * length);
  } catch (error) {
    throw new HpairError('TOO_LARGE', `cannot allocate a ${rows}×${cols} complex matrix: ${(error as Error).message}`, { cause: error });
  }
  return { rows, cols, data: new Float64Array(buffer) };
}
