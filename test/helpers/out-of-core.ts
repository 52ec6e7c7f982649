// Shared by the out-of-core suites: .npy files of every dtype and layout, problems on disk, journals.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeFloat64VectorNpy, type ComplexMatrix } from 'hpair';
import { npyBytes, randomProblem } from './support.js';

export interface NpyLayout {
  kind?: 'c16' | 'c8' | 'f8';
  bigEndian?: boolean;
  fortran?: boolean;
}

/** A complex matrix as a .npy of the given dtype, byte order and memory order (as NumPy would write it). */
export function encodeMatrixNpy(matrix: ComplexMatrix, layout: NpyLayout = {}): Uint8Array {
  const { kind = 'c16', bigEndian = false, fortran = false } = layout;
  const { rows, cols, data } = matrix;
  const item = kind === 'c16' ? 16 : 8;
  const bytes = new Uint8Array(rows * cols * item);
  const view = new DataView(bytes.buffer);
  const little = !bigEndian;
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      const at = (fortran ? c * rows + r : r * cols + c) * item;
      const re = data[2 * (r * cols + c)];
      const im = data[2 * (r * cols + c) + 1];
      if (kind === 'c16') {
        view.setFloat64(at, re, little);
        view.setFloat64(at + 8, im, little);
      } else if (kind === 'c8') {
        view.setFloat32(at, re, little);
        view.setFloat32(at + 4, im, little);
      } else {
        view.setFloat64(at, re, little);
      }
    }
  }
  const descr = `${bigEndian ? '>' : '<'}${kind}`;
  return npyBytes(`{'descr': '${descr}', 'fortran_order': ${fortran ? 'True' : 'False'}, 'shape': (${rows}, ${cols}), }`, bytes);
}

/** What the file holds once read as complex128 (complex64 rounds; float64 drops the imaginary part). */
export function asStored(matrix: ComplexMatrix, layout: NpyLayout = {}): ComplexMatrix {
  const data = new Float64Array(new SharedArrayBuffer(matrix.data.byteLength));
  for (let i = 0; i < data.length; i++) {
    const value = layout.kind === 'f8' && i % 2 === 1 ? 0 : matrix.data[i];
    data[i] = layout.kind === 'c8' ? Math.fround(value) : value;
  }
  return { rows: matrix.rows, cols: matrix.cols, data };
}

export function workDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), `hpair-${prefix}-`));
}

export interface ProblemOnDisk {
  dir: string;
  expp: string;
  distance: string;
  /** The values as stored (what the in-memory H is computed from). */
  values: { expp: ComplexMatrix; distance: Float64Array };
}

/** A random problem written as E.npy and D.npy in `dir`. */
export function problemOnDisk(dir: string, N: number, M: number, seed: number, layout: NpyLayout = {}, prefix = ''): ProblemOnDisk {
  const { expp, distance } = randomProblem(N, M, seed);
  const exppPath = join(dir, `${prefix}E.npy`);
  const distancePath = join(dir, `${prefix}D.npy`);
  writeFileSync(exppPath, encodeMatrixNpy(expp, layout));
  writeFileSync(distancePath, encodeFloat64VectorNpy(distance));
  return { dir, expp: exppPath, distance: distancePath, values: { expp: asStored(expp, layout), distance } };
}

/** Block ids in a journal file (the first word of each whole line after the header). */
export function journalIds(path: string): number[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return [];
  }
  const lines = text.split('\n');
  lines.pop(); // the part after the last newline: empty, or a torn line
  return lines.slice(1).map((line) => Number(line.split(' ')[0]));
}
