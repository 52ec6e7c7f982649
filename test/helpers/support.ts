// Shared by the test suites (bundled into each): seeded inputs, fixtures, and comparisons.
import { readFileSync } from 'node:fs';
import { crc32, deflateRawSync } from 'node:zlib';
import { fileURLToPath } from 'node:url';
import * as assert from 'uvu/assert';
import { createComplexMatrix, demoProblem, isHpairError, type ComplexMatrix, type DemoProblem, type HpairError, type KernelVariant } from 'hpair';
import { KERNEL_VARIANTS } from '../../kernel/kernel-names.js';
import { mulberry32 } from '../../kernel/demo-problem.js';

export const fixturesDir = fileURLToPath(new URL('../../test/fixtures/', import.meta.url));
export const cliPath = fileURLToPath(new URL('../cli.js', import.meta.url));
/** Every native variant, one per line of kernel/native/src/paths.h in its order: a test that covers native paths takes them from here, so each registered path gets the same coverage. */
export const NATIVE_VARIANTS: readonly KernelVariant[] = KERNEL_VARIANTS.filter((variant) => variant.startsWith('native-'));
/** A pattern matching exactly one kernel variant's name. */
export const KERNEL_VARIANT_PATTERN = new RegExp(`^(${KERNEL_VARIANTS.join('|')})$`);

export function fixture(name: string): Uint8Array {
  return readFileSync(`${fixturesDir}${name}`);
}

let long: DemoProblem | undefined;
/**
 * A job still running a few hundred ms after it starts on any kernel and CPU we meet: 116 GFLOP, far more than
 * two cores do in that time with any kernel. For tests that abort, destroy or close mid-job (it is never run to
 * the end). Made once per process.
 */
export function longJob(): DemoProblem {
  return (long ??= demoProblem(3072, 3072));
}

/** Deterministic uniform values in [−1, 1). */
export function seeded(seed: number): () => number {
  const next = mulberry32(seed);
  return () => next() * 2 - 1;
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

export interface ZipEntrySpec {
  name: string;
  /** The uncompressed bytes. */
  data: Uint8Array;
  /** 0 (stored, default), 8 (deflated), or any other number written as is (with the data stored). */
  method?: number;
  flags?: number;
  /** A different name in the local header than in the central directory. */
  localName?: string;
  /** Write no local record: the central entry points at this offset (to make entries overlap). */
  localOffset?: number;
  /** Override what the central directory declares. */
  crc32?: number;
  uncompressedSize?: number;
}

/**
 * A ZIP archive as np.savez writes one (names, stored or deflated data, CRC-32), optionally with every
 * ZIP64 structure (extra fields, ZIP64 end record and locator) and a comment; entries can be made to lie.
 */
export function zipBytes(entries: ZipEntrySpec[], { zip64 = false, comment = '' }: { zip64?: boolean; comment?: string } = {}): Uint8Array {
  const parts: Uint8Array[] = [];
  let offset = 0;
  const push = (bytes: Uint8Array): void => {
    parts.push(bytes);
    offset += bytes.length;
  };
  const record = (size: number, fill: (view: DataView) => void): Uint8Array => {
    const bytes = new Uint8Array(size);
    fill(new DataView(bytes.buffer));
    return bytes;
  };
  const text = (value: string): Uint8Array => new TextEncoder().encode(value);
  const central: Uint8Array[] = [];
  for (const entry of entries) {
    const method = entry.method ?? 0;
    const stored = method === 8 ? new Uint8Array(deflateRawSync(entry.data)) : entry.data;
    const crc = entry.crc32 ?? crc32(entry.data) >>> 0;
    const size = entry.uncompressedSize ?? entry.data.length;
    const name = text(entry.name);
    const local = entry.localOffset ?? offset;
    const zip64Extra = (fields: number[]): Uint8Array =>
      record(4 + 8 * fields.length, (v) => {
        v.setUint16(0, 1, true);
        v.setUint16(2, 8 * fields.length, true);
        fields.forEach((value, i) => v.setBigUint64(4 + 8 * i, BigInt(value), true));
      });
    if (entry.localOffset === undefined) {
      const localName = text(entry.localName ?? entry.name);
      const extra = zip64 ? zip64Extra([size, stored.length]) : new Uint8Array(0);
      push(
        record(30, (v) => {
          v.setUint32(0, 0x04034b50, true);
          v.setUint16(4, 45, true);
          v.setUint16(6, entry.flags ?? 0, true);
          v.setUint16(8, method, true);
          v.setUint32(14, crc, true);
          v.setUint32(18, zip64 ? 0xffffffff : stored.length, true);
          v.setUint32(22, zip64 ? 0xffffffff : size, true);
          v.setUint16(26, localName.length, true);
          v.setUint16(28, extra.length, true);
        }),
      );
      push(localName);
      push(extra);
      push(stored);
    }
    const extra = zip64 ? zip64Extra([size, stored.length, local]) : new Uint8Array(0);
    central.push(
      record(46, (v) => {
        v.setUint32(0, 0x02014b50, true);
        v.setUint16(4, 45, true);
        v.setUint16(6, 45, true);
        v.setUint16(8, entry.flags ?? 0, true);
        v.setUint16(10, method, true);
        v.setUint32(16, crc, true);
        v.setUint32(20, zip64 ? 0xffffffff : stored.length, true);
        v.setUint32(24, zip64 ? 0xffffffff : size, true);
        v.setUint16(28, name.length, true);
        v.setUint16(30, extra.length, true);
        v.setUint32(42, zip64 ? 0xffffffff : local, true);
      }),
      name,
      extra,
    );
  }
  const directoryOffset = offset;
  for (const part of central) push(part);
  const directorySize = offset - directoryOffset;
  if (zip64) {
    const end64 = offset;
    push(
      record(56, (v) => {
        v.setUint32(0, 0x06064b50, true);
        v.setBigUint64(4, 44n, true);
        v.setUint16(12, 45, true);
        v.setUint16(14, 45, true);
        v.setBigUint64(24, BigInt(entries.length), true);
        v.setBigUint64(32, BigInt(entries.length), true);
        v.setBigUint64(40, BigInt(directorySize), true);
        v.setBigUint64(48, BigInt(directoryOffset), true);
      }),
    );
    push(
      record(20, (v) => {
        v.setUint32(0, 0x07064b50, true);
        v.setBigUint64(8, BigInt(end64), true);
        v.setUint32(16, 1, true);
      }),
    );
  }
  const commentBytes = text(comment);
  push(
    record(22, (v) => {
      v.setUint32(0, 0x06054b50, true);
      v.setUint16(8, zip64 ? 0xffff : entries.length, true);
      v.setUint16(10, zip64 ? 0xffff : entries.length, true);
      v.setUint32(12, zip64 ? 0xffffffff : directorySize, true);
      v.setUint32(16, zip64 ? 0xffffffff : directoryOffset, true);
      v.setUint16(20, commentBytes.length, true);
    }),
  );
  push(commentBytes);
  const out = new Uint8Array(offset);
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}
