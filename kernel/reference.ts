import type { ComplexMatrix } from '../shared/complex-matrix.js';
import { checkHermitianInputs, firstNonFinite, nonFiniteExppError } from './hermitian-inputs.js';

/**
 * The seed's `get_H`, ported line for line: one element at a time, differences formed per pair,
 * serial, on the calling thread. It is the oracle the fast kernels are tested against, not a tool
 * for real sizes. The result is a plain (non-shared) Float64Array.
 */
export function hermitianReference(expp: ComplexMatrix, distance: Float64Array): ComplexMatrix {
  const { N, M } = checkHermitianInputs(expp, distance);
  const bad = firstNonFinite(expp.data, 0, expp.data.length);
  if (bad >= 0) throw nonFiniteExppError(expp.data, M, bad);
  const e = expp.data;
  const n = N - 1;
  const h = new Float64Array(2 * n * n);
  const last = 2 * (N - 1) * M;
  for (let i = 0; i < n; i++) {
    for (let j = 0; j <= i; j++) {
      let re = 0;
      let im = 0;
      for (let m = 1; m < M; m++) {
        // eppi = expp[i, m] − expp[−1, m]; eppj = conj(expp[j, m]) − conj(expp[−1, m])
        const pr = e[2 * (i * M + m)] - e[last + 2 * m];
        const pi = e[2 * (i * M + m) + 1] - e[last + 2 * m + 1];
        const qr = e[2 * (j * M + m)] - e[last + 2 * m];
        const qi = -e[2 * (j * M + m) + 1] - -e[last + 2 * m + 1];
        // Hijm += eppi * eppj / distance[m]  (complex product, then both parts divided)
        re += (pr * qr - pi * qi) / distance[m];
        im += (pr * qi + pi * qr) / distance[m];
      }
      h[2 * (i * n + j)] = re;
      h[2 * (i * n + j) + 1] = im;
      h[2 * (j * n + i)] = re;
      h[2 * (j * n + i) + 1] = -im;
    }
  }
  return { rows: n, cols: n, data: h };
}
