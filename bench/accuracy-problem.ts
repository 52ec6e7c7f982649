// The accuracy bench's inputs, also drawn by bench/orders/compare.mjs (from dist/bench) so that its simulated orders
// are judged on the very problems the bench publishes: unit phases times amplitudes in [0.5, 2], and a distance of
// mixed sign with |d| in [0.5, 2] (numpy's line and the kernels then sum terms of both signs, as users' data do).
import { createComplexMatrix, type ComplexMatrix } from 'hpair';
import { mulberry32 } from '../kernel/demo-problem.js';

export function accuracyProblem(n: number, m: number, seed: number): { expp: ComplexMatrix; distance: Float64Array } {
  const next = mulberry32(seed);
  const expp = createComplexMatrix(n, m);
  for (let x = 0; x < n * m; x++) {
    const amplitude = 0.5 + 1.5 * next();
    const phase = 2 * Math.PI * next();
    expp.data[2 * x] = amplitude * Math.cos(phase);
    expp.data[2 * x + 1] = amplitude * Math.sin(phase);
  }
  const distance = new Float64Array(new SharedArrayBuffer(8 * m));
  for (let k = 0; k < m; k++) distance[k] = (0.5 + 1.5 * next()) * (next() < 0.5 ? -1 : 1);
  return { expp, distance };
}
