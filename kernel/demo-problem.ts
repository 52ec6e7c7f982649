import { createComplexMatrix, createSharedFloat64, type ComplexMatrix } from '../shared/complex-matrix.js';
import { HpairError } from '../shared/errors.js';

/** An embedded problem: expp and distance in shared memory, generated deterministically from a seed. */
export interface DemoProblem {
  readonly expp: ComplexMatrix;
  readonly distance: Float64Array;
}

/**
 * Plane-wave phases, the kind of input the seed's users hold: N points scattered over the unit square
 * by a seeded generator, M wave vectors k_m on a spiral, expp[i, m] = exp(i k_m · r_i), and
 * distance[m] = |k_m| (never 0). The same (N, M, seed) always gives the same bits.
 */
export function demoProblem(N: number, M: number, seed = 1): DemoProblem {
  for (const [name, value] of [['N', N], ['M', M]] as const) {
    if (!Number.isSafeInteger(value) || value < 1) {
      throw new HpairError('INVALID_ARGUMENT', `demo ${name} must be a positive integer, got ${String(value)}`);
    }
  }
  const random = mulberry32(seed);
  const expp = createComplexMatrix(N, M);
  const distance = createSharedFloat64(M);
  const kx = new Float64Array(M);
  const ky = new Float64Array(M);
  for (let m = 0; m < M; m++) {
    const radius = 2 * Math.PI * (1 + (8 * m) / M);
    const angle = 2.399963229728653 * m; // golden angle: wave vectors spread evenly in direction
    kx[m] = radius * Math.cos(angle);
    ky[m] = radius * Math.sin(angle);
    distance[m] = radius;
  }
  for (let i = 0; i < N; i++) {
    const x = random();
    const y = random();
    for (let m = 0; m < M; m++) {
      const phase = kx[m] * x + ky[m] * y;
      expp.data[2 * (i * M + m)] = Math.cos(phase);
      expp.data[2 * (i * M + m) + 1] = Math.sin(phase);
    }
  }
  return { expp, distance };
}

/** A small, well-known 32-bit PRNG (uniform in [0, 1)): deterministic across platforms, which Math.random is
 * not. The one generator of the project's seeded inputs (demo, tests, accuracy bench). */
export function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * A position-sensitive checksum of a matrix, summed in one fixed order: equal for bit-identical
 * results, different when elements move or change.
 */
export function checksum(matrix: ComplexMatrix): number {
  let sum = 0;
  const { data, rows, cols } = matrix;
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      const at = 2 * (r * cols + c);
      sum += data[at] * (1 + ((r * 31 + c * 17) % 97) / 97) + data[at + 1] * (1 + ((r * 13 + c * 29) % 89) / 89);
    }
  }
  return sum;
}
