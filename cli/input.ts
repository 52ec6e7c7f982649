import { stat } from 'node:fs/promises';
import { isZip, listNpz, npzEntryBytes, npzEntryHeader, type NpzEntry } from '../io/npz.js';
import { COMPLEX_DTYPES, parseComplexMatrixNpy, parseFloat64VectorNpy, parseNpyHeader, REAL_DTYPES, type NpyDtypes, type NpyHeader } from '../io/npy.js';
import type { ComplexMatrix } from '../shared/complex-matrix.js';
import { HpairError } from '../shared/errors.js';
import { about, CliFailure, errnoText, type Flag } from './errors.js';
import { FifoTimeout, readInputFile } from './streams.js';

/**
 * An input flag's value: a `.npy` or `.npz` file (told apart by their first bytes, not by their names, so
 * `<(python …)` works), and for a `.npz` an optional key: `FILE:KEY` picks the array `KEY` (saved by
 * `np.savez(FILE, KEY=…)` as `KEY.npy`). The value is first taken whole as a path; only when no such
 * path exists and the text up to its last ':' does, is the rest a key.
 */
export interface InputSpec {
  readonly flag: Flag;
  /** The value as given, for messages. */
  readonly arg: string;
  readonly file: string;
  readonly key?: string;
}

export async function inputSpec(flag: Flag, arg: string): Promise<InputSpec> {
  if (await exists(arg)) return { flag, arg, file: arg };
  const colon = arg.lastIndexOf(':');
  const key = arg.slice(colon + 1);
  if (colon > 0 && key !== '' && !key.includes('/') && (await exists(arg.slice(0, colon)))) {
    return { flag, arg, file: arg.slice(0, colon), key };
  }
  return { flag, arg, file: arg };
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

/** Reads every input at once (two FIFOs may be fed in either order); the first failure cancels the rest. */
export async function readInputs(specs: readonly InputSpec[], fifoTimeoutMs: number): Promise<Uint8Array[]> {
  const cancel = new AbortController();
  try {
    return await Promise.all(
      specs.map((spec) =>
        readInputFile(spec.file, fifoTimeoutMs, cancel.signal).catch((error: unknown) => {
          cancel.abort();
          if (error instanceof FifoTimeout) throw new CliFailure('IO_ERROR', `${error.message} (see --fifo-timeout)`, 2, spec.flag, spec.arg);
          if (error instanceof HpairError) throw about(spec.flag, spec.arg, error);
          throw new CliFailure('IO_ERROR', `cannot read it: ${errnoText(error)}`, 2, spec.flag, spec.arg, { cause: error });
        }),
      ),
    );
  } finally {
    cancel.abort();
  }
}

/** The `.npy` an input names: the file itself, or one entry of a `.npz` (not inflated yet). */
function npySource(spec: InputSpec, bytes: Uint8Array): { bytes: Uint8Array; entry?: NpzEntry } {
  if (!isZip(bytes)) {
    if (spec.key !== undefined) throw new CliFailure('INVALID_ARGUMENT', `${spec.file} is not a .npz archive, so ':${spec.key}' picks nothing`, 2, spec.flag, spec.arg);
    if (bytes.length < 6 || bytes[0] !== 0x93 || String.fromCharCode(...bytes.subarray(1, 6)) !== 'NUMPY') {
      throw new CliFailure('BAD_NPY', 'not a .npy or .npz file (it starts with neither \\x93NUMPY nor PK)', 2, spec.flag, spec.arg);
    }
    return { bytes };
  }
  const entries = listNpz(bytes);
  const keyOf = (name: string): string => name.replace(/\.npy$/, '');
  const keys = entries.map((entry) => keyOf(entry.name)).join(', ');
  let entry;
  if (spec.key === undefined) {
    if (entries.length !== 1) {
      const what = entries.length === 0 ? 'holds no arrays' : `holds ${entries.length} arrays (${keys}); pick one as ${spec.file}:KEY`;
      throw new CliFailure('INVALID_ARGUMENT', what, 2, spec.flag, spec.arg);
    }
    entry = entries[0];
  } else {
    entry = entries.find((candidate) => candidate.name === `${spec.key}.npy`) ?? entries.find((candidate) => candidate.name === spec.key);
    if (entry === undefined) throw new CliFailure('INVALID_ARGUMENT', `no array '${spec.key}' in ${spec.file} (it holds: ${keys || 'nothing'})`, 2, spec.flag, spec.arg);
  }
  return { bytes, entry };
}

/** The `.npy` bytes an input names: the file itself, or one array of a `.npz`, inflated. */
async function npyBytes(spec: InputSpec, bytes: Uint8Array): Promise<Uint8Array> {
  const source = npySource(spec, bytes);
  if (source.entry === undefined) return source.bytes;
  await npzEntryHeader(source.bytes, source.entry); // the size inflation is held to is the header's promise
  return npzEntryBytes(source.bytes, source.entry);
}

async function headerOf(spec: InputSpec, bytes: Uint8Array, accepted: NpyDtypes): Promise<NpyHeader> {
  const source = npySource(spec, bytes);
  return source.entry === undefined ? parseNpyHeader(source.bytes, 'header', accepted) : npzEntryHeader(source.bytes, source.entry, accepted);
}

/**
 * When either input is a `.npz`, both inputs' shapes and dtypes from their headers alone, before either is
 * decoded or an entry inflated:
 * expp 2-D complex (or float64) with N ≥ 1, distance 1-D real of length M. A `.npz` whose entry would inflate
 * to gigabytes is refused here, in the bytes of its headers, when they show it cannot be used.
 */
export async function checkInputHeaders(specs: readonly [InputSpec, InputSpec], bytes: readonly [Uint8Array, Uint8Array]): Promise<void> {
  // Two .npy files are already whole in memory and decode to at most their own size: their errors keep the
  // order decoding finds them in. Only an archive can promise far more than it holds.
  if (!bytes.some((input) => isZip(input))) return;
  const [exppSpec, distanceSpec] = specs;
  const expp = await headerOf(exppSpec, bytes[0], COMPLEX_DTYPES).catch((error: unknown) => Promise.reject(about(exppSpec.flag, exppSpec.arg, error)));
  if (expp.shape.length !== 2) throw about(exppSpec.flag, exppSpec.arg, new HpairError('BAD_NPY', `expected a 2-D array, got shape (${expp.shape.join(', ')})`));
  if (expp.shape[0] < 1) throw about(exppSpec.flag, exppSpec.arg, new HpairError('EMPTY_INPUT', 'it has no rows (N = 0); H needs row N−1 as its reference row'));
  const distance = await headerOf(distanceSpec, bytes[1], REAL_DTYPES).catch((error: unknown) => Promise.reject(about(distanceSpec.flag, distanceSpec.arg, error)));
  if (distance.shape.length !== 1) throw about(distanceSpec.flag, distanceSpec.arg, new HpairError('BAD_NPY', `expected a 1-D array, got shape (${distance.shape.join(', ')})`));
  const M = expp.shape[1];
  if (distance.shape[0] !== M) {
    throw about(distanceSpec.flag, distanceSpec.arg, new HpairError('SHAPE_MISMATCH', `it has length ${distance.shape[0]} but --expp ${exppSpec.arg} has M = ${M} columns`));
  }
}

export async function loadExpp(spec: InputSpec, bytes: Uint8Array): Promise<ComplexMatrix> {
  try {
    return parseComplexMatrixNpy(await npyBytes(spec, bytes));
  } catch (error) {
    throw about(spec.flag, spec.arg, error);
  }
}

export async function loadDistance(spec: InputSpec, bytes: Uint8Array): Promise<Float64Array> {
  try {
    return parseFloat64VectorNpy(await npyBytes(spec, bytes));
  } catch (error) {
    throw about(spec.flag, spec.arg, error);
  }
}
