// Shared by the test suites (bundled into each): seeded inputs, fixtures, and comparisons.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import * as assert from 'uvu/assert';
import { createComplexMatrix, isHpairError, type ComplexMatrix, type HpairError } from 'hpair';

export const fixturesDir = fileURLToPath(new URL('../../test/fixtures/', import.meta.url));
export const cliPath = fileURLToPath(new URL('../cli.js', import.meta.url));

export function fixture(name: string): Uint8Array {
  return readFileSync(`${fixturesDir}${name}`);
}

/** Deterministic uniform values in [−1, 1). */
export function seeded(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = Math.imul(state ^ (state >>> 15), state | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (((t ^ (t >>> 14)) >>> 0) / 4294967296) * 2 - 1;
  };
}

/** A random problem; `shared: false` gives plain (non-shared) arrays. Distances avoid 0 and take both signs. */
export function randomProblem(N: number, M: number, seed: number, shared = true): { expp: ComplexMatrix; distance: Float64Array } {
  const next = seeded(seed);
  const expp = shared ? createComplexMatrix(N, M) : { rows: N, cols: M, data: new Float64Array(2 * N * M) };
  for (let i = 0; i < expp.data.length; i++) expp.data[i] = next() * 3;
  const distance = shared ? new Float64Array(new SharedArrayBuffer(8 * M)) : new Float64Array(M);
  for (let m = 0; m < M; m++) {
    const v = next();
    distance[m] = (0.5 + Math.abs(v)) * Math.sign(v || 1);
  }
  return { expp, distance };
}

/** max |a − b| / max |b| over every value; both must have the same shape. */
export function relativeError(actual: ComplexMatrix, expected: ComplexMatrix): number {
  assert.is(actual.rows, expected.rows, 'rows');
  assert.is(actual.cols, expected.cols, 'cols');
  assert.is(actual.data.length, expected.data.length, 'data length');
  let error = 0;
  let scale = 0;
  for (let i = 0; i < expected.data.length; i++) {
    error = Math.max(error, Math.abs(actual.data[i] - expected.data[i]));
    scale = Math.max(scale, Math.abs(expected.data[i]));
  }
  return scale === 0 ? error : error / scale;
}

/** H[j,i] is exactly conj(H[i,j]) and the diagonal is exactly real. */
export function assertExactlyHermitian(h: ComplexMatrix): void {
  const n = h.rows;
  for (let i = 0; i < n; i++) {
    assert.is(h.data[2 * (i * n + i) + 1], 0, `diagonal ${i} is not real`);
    for (let j = 0; j < i; j++) {
      const a = 2 * (i * n + j);
      const b = 2 * (j * n + i);
      if (h.data[a] !== h.data[b] || h.data[a + 1] !== -h.data[b + 1]) assert.unreachable(`H[${j},${i}] is not conj(H[${i},${j}])`);
    }
  }
}

export function assertBitIdentical(a: Float64Array, b: Float64Array, what: string): void {
  assert.is(a.length, b.length, `${what}: length`);
  const x = new BigUint64Array(a.buffer, a.byteOffset, a.length);
  const y = new BigUint64Array(b.buffer, b.byteOffset, b.length);
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) assert.unreachable(`${what}: value ${i} differs (${a[i]} vs ${b[i]})`);
}

/** Resolves with the HpairError code a promise rejects with; fails the test if it resolves. */
export async function rejectionCode(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (error) {
    assert.instance(error, Error);
    assert.ok(isHpairError(error), `expected an HpairError, got ${String(error)}`);
    if ((error as HpairError).code === 'ABORTED') assert.is((error as Error).name, 'AbortError');
    else assert.is((error as Error).name, 'HpairError');
    return (error as { code: string }).code;
  }
  assert.unreachable('expected a rejection');
  return '';
}

/** A .npy file with this header dict text (padded as NumPy pads it) and these data bytes. */
export function npyBytes(dict: string, data: Uint8Array, major: 1 | 2 = 1): Uint8Array {
  const prefix = major === 1 ? 10 : 12;
  const total = Math.ceil((prefix + dict.length + 1) / 64) * 64;
  const out = new Uint8Array(total + data.length);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, major, 0]);
  const view = new DataView(out.buffer);
  if (major === 1) view.setUint16(8, total - prefix, true);
  else view.setUint32(8, total - prefix, true);
  out.set(new TextEncoder().encode(dict.padEnd(total - prefix - 1, ' ') + '\n'), prefix);
  out.set(data, total);
  return out;
}
