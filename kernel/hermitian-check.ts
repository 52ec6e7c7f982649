import { defineKernel } from '../shared/kernel-contract.js';
import { firstNonFinite } from './hermitian-inputs.js';
import { loadNativeAddon, type NativeAddon } from './native/addon.js';

/**
 * Step 1 of an H job for kernels that pack per tile (native): scans expp's rows for NaN and ±Infinity
 * and keeps the smallest bad index by atomic min, so the job fails naming the first one, before any
 * pair is computed. Packing kernels (js, wasm) scan while they pack instead (hermitian-pack.ts).
 */
export interface CheckBuffers {
  readonly [name: string]: Float64Array | BigInt64Array;
  readonly expp: Float64Array;
  readonly badValue: BigInt64Array;
}

export interface CheckParams {
  readonly [name: string]: unknown;
  readonly M: number;
}

/** Rows per check tile: ~1 MB of expp at M = 4096, small enough to spread N rows over the workers. */
export const CHECK_TILE = 32;

/** badValue's start: larger than any flat index of expp (typed arrays hold at most 2^32 values). */
export const NO_BAD_VALUE = 2n ** 62n;

/** The addon this step's tiles scan with, looked up once per step (setup), not per tile. */
let scanner: NativeAddon | undefined;

export const checkKernel = defineKernel<CheckBuffers, CheckParams>({
  setup() {
    scanner = loadNativeAddon().addon;
  },
  tile(tile, { buffers: { expp, badValue }, params: { M } }) {
    const start = 2 * tile.i0 * M;
    const end = 2 * tile.i1 * M;
    const bad = scanner === undefined ? firstNonFinite(expp, start, end) : scanner.scanNonFinite(expp, start, end);
    if (bad >= 0) atomicMin(badValue, BigInt(bad));
  },
});

export function atomicMin(cell: BigInt64Array, value: bigint): void {
  let seen = Atomics.load(cell, 0);
  while (value < seen) {
    const previous = Atomics.compareExchange(cell, 0, seen, value);
    if (previous === seen) return;
    seen = previous;
  }
}
