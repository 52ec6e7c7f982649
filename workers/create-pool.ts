import type { HermitianResult } from '../kernel/hermitian-result.js';
import type { ComplexMatrixInput, RealVectorInput } from '../shared/array-inputs.js';
import { readArguments } from '../shared/errors.js';
import { validateJobOptions, type HermitianOptions, type PoolOptions } from './options.js';
import { Pool } from './pool.js';

/** Starts a pool of worker threads. Create it once, reuse it for every job, `close()` it at the end. */
export function createPool(options?: PoolOptions): Pool {
  return new Pool(options);
}

/**
 * One-shot H for scripts: starts a pool, computes, closes it. Services should keep one pool instead:
 * each call here pays worker start-up (tens of milliseconds).
 */
export async function hermitian(
  expp: ComplexMatrixInput,
  distance: RealVectorInput,
  options: HermitianOptions & Pick<PoolOptions, 'workers'> = {},
): Promise<HermitianResult> {
  const { workers, jobOptions } = readArguments('the options of hermitian()', () => {
    validateJobOptions(options);
    const { workers: count, ...rest } = options;
    return { workers: count, jobOptions: rest };
  });
  const pool = createPool(workers === undefined ? {} : { workers });
  try {
    return await pool.hermitian(expp, distance, jobOptions);
  } finally {
    await pool.close();
  }
}
