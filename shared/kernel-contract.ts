import type { Tile } from '../shared/index-space.js';

/**
 * The typed arrays a kernel may receive; over a SharedArrayBuffer they are shared, never copied. A view reaches
 * every worker whole, whatever its size or its offset in the buffer (shared/protocol.ts says how).
 */
export type SharedView =
  | Float64Array
  | Float32Array
  | Int32Array
  | Uint32Array
  | Int16Array
  | Uint16Array
  | Int8Array
  | Uint8Array
  | BigInt64Array
  | BigUint64Array;

/** What a kernel sees on every call: the job's shared views, its parameters, and who it runs as. */
export interface KernelContext<
  Buffers extends Readonly<Record<string, SharedView>> = Readonly<Record<string, SharedView>>,
  Params extends Readonly<Record<string, unknown>> = Readonly<Record<string, unknown>>,
> {
  readonly buffers: Buffers;
  readonly params: Params;
  /** This worker's number, 0…workers−1 (0 when the job runs inline on the calling thread). */
  readonly worker: number;
  readonly workers: number;
}

/**
 * A tile kernel: `tile` is called once per tile of the job's index space, on whichever worker takes it.
 * It must write only to the outputs of its own tile, so results do not depend on the split.
 */
export interface Kernel<
  Buffers extends Readonly<Record<string, SharedView>> = Readonly<Record<string, SharedView>>,
  Params extends Readonly<Record<string, unknown>> = Readonly<Record<string, unknown>>,
> {
  /** Called once per job on each worker before its first tile: build per-worker scratch here. */
  setup?(context: KernelContext<Buffers, Params>): void;
  tile(tile: Tile, context: KernelContext<Buffers, Params>): void;
}

/** Identity helper that gives a kernel object literal its types. */
export function defineKernel<
  Buffers extends Readonly<Record<string, SharedView>>,
  Params extends Readonly<Record<string, unknown>>,
>(kernel: Kernel<Buffers, Params>): Kernel<Buffers, Params> {
  return kernel;
}
