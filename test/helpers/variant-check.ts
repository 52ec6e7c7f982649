// Run as a child process (so it can get V8 flags such as --experimental-wasm-relaxed-simd): checks one
// kernel variant against the reference and across worker counts, then prints "<variant> ok".
import { createPool, hermitianReference, type KernelVariant } from 'hpair';
import { assertBitIdentical, assertExactlyHermitian, randomProblem, relativeError } from './support.js';

const kernel = process.argv[2] as KernelVariant;
const { expp, distance } = randomProblem(203, 151, 4);
const expected = hermitianReference(expp, distance);
let first: Float64Array | undefined;
for (const workers of [1, 2, 3]) {
  const pool = createPool({ workers, kernel, inlineFlops: 0 });
  if (pool.kernel !== kernel) throw new Error(`pool runs ${pool.kernel}, not ${kernel}`);
  const h = await pool.hermitian(expp, distance);
  await pool.close();
  const error = relativeError(h, expected);
  if (!(error < 1e-12)) throw new Error(`${kernel} with ${workers} workers: relative error ${error}`);
  assertExactlyHermitian(h);
  if (first === undefined) first = h.data;
  else assertBitIdentical(h.data, first, `${kernel} ${workers} workers`);
}
process.stdout.write(`${kernel} ok\n`);
