import type { SharedView } from '../shared/kernel-contract.js';
import { HpairError } from '../shared/errors.js';
import { tileCount, validateIndexSpace, type IndexSpace } from '../shared/index-space.js';
import type { PreparedJob, StepPlan } from '../shared/job.js';

/** Scalars a kernel may receive as parameters (they are structured-cloned to every worker). */
export type KernelParam = number | string | boolean | bigint;

/** A user kernel job: which module, over which index space, with which shared views. */
export interface RunSpec<Buffers extends Record<string, SharedView> = Record<string, SharedView>> {
  /** The ES module exporting the kernel, as a `file:` URL (e.g. `import.meta.url`, or `pathToFileURL(path)`). */
  module: string | URL;
  /**
   * Name of the export holding the kernel (an object with `tile(tile, context)`, see `defineKernel`).
   * @default 'default'
   */
  export?: string;
  /**
   * The loop: `{ kind: 'range', n }` (indices 0…n−1), `{ kind: 'triangle', n }` (pairs j ≤ i < n) or
   * `{ kind: 'square', n }` (all n×n pairs), cut into tiles of `tile` (indices, or `tile`×`tile` pairs).
   * Tiles are dealt to workers as for H. On diagonal tiles of a triangle, skip pairs with j > i.
   * @default tile: 4096 for a range, 64 for pairs
   */
  space: { kind: 'range' | 'triangle' | 'square'; n: number; tile?: number };
  /** Named inputs and outputs, each a typed array over a SharedArrayBuffer: workers read and write them in place. */
  buffers: Buffers;
  /**
   * Small scalar parameters, passed to every call as `context.params`.
   * @default {}
   */
  params?: Record<string, KernelParam>;
}

const DEFAULT_TILE = { range: 4096, triangle: 64, square: 64 } as const;
const VIEW_TYPES = [Float64Array, Float32Array, Int32Array, Uint32Array, Int16Array, Uint16Array, Int8Array, Uint8Array, BigInt64Array, BigUint64Array];

/** Validates a RunSpec and turns it into a one-step job on the same machinery as H. */
export function prepareUserJob<Buffers extends Record<string, SharedView>>(spec: RunSpec<Buffers>): PreparedJob<Buffers> {
  if (typeof spec !== 'object' || spec === null) throw new HpairError('INVALID_ARGUMENT', 'run() needs a spec { module, space, buffers }');
  const url = moduleUrl(spec.module);
  const exportName = spec.export ?? 'default';
  if (typeof exportName !== 'string' || exportName === '') throw new HpairError('INVALID_ARGUMENT', 'export must be a non-empty string');
  const kind = spec.space?.kind;
  const space: IndexSpace = { kind, n: spec.space?.n, tile: spec.space?.tile ?? (DEFAULT_TILE as Record<string, number>)[kind] ?? 1 };
  validateIndexSpace(space);
  if (typeof spec.buffers !== 'object' || spec.buffers === null) throw new HpairError('INVALID_ARGUMENT', 'buffers must be an object of typed arrays');
  for (const [name, view] of Object.entries(spec.buffers)) {
    if (!VIEW_TYPES.some((type) => view instanceof type)) {
      throw new HpairError('INVALID_ARGUMENT', `buffer '${name}' must be a typed array (Float64Array, Int32Array, …)`);
    }
    if (!(view.buffer instanceof SharedArrayBuffer)) {
      throw new HpairError('INVALID_ARGUMENT', `buffer '${name}' must be over a SharedArrayBuffer: kernels write in place, and a copy would lose their writes`);
    }
  }
  const params = spec.params ?? {};
  for (const [name, value] of Object.entries(params)) {
    if (!['number', 'string', 'boolean', 'bigint'].includes(typeof value)) {
      throw new HpairError('INVALID_ARGUMENT', `param '${name}' must be a number, string, boolean or bigint`);
    }
  }
  if (tileCount(space) > 2 ** 31 - 1) throw new HpairError('TOO_LARGE', 'the index space has more than 2^31 tiles; use larger tiles');
  const steps: readonly StepPlan[] = [{ kernel: { kind: 'module', url, exportName }, space, buffers: spec.buffers, params }];
  return { inline: false, start: () => steps, result: () => spec.buffers };
}

function moduleUrl(module: string | URL): string {
  let url: URL;
  try {
    url = new URL(String(module));
  } catch {
    throw new HpairError('INVALID_ARGUMENT', `module must be a file: URL (try pathToFileURL(path) or import.meta.url), got '${String(module)}'`);
  }
  if (url.protocol !== 'file:') throw new HpairError('INVALID_ARGUMENT', `module must be a file: URL, got '${url.href}'`);
  return url.href;
}
