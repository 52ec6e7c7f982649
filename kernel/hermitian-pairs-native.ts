import { defineKernel } from '../shared/kernel-contract.js';
import { HpairError } from '../shared/errors.js';
import { hOverflow, type HWindow } from './hermitian-tile-store.js';
import { loadNativeAddon, type NativeAddon, type NativePath } from './native/addon.js';

/**
 * Step 2 of an H job on a native path: each tile goes to the addon whole, which packs, multiplies and
 * stores the tile with its mirror straight into the shared H (pointers into the SharedArrayBuffers, no
 * copy). The call is synchronous in this worker, so cancellation and progress stay per tile, as for the
 * other kernels.
 */
export interface PairsNativeBuffers {
  readonly [name: string]: Float64Array;
  readonly expp: Float64Array;
  readonly distance: Float64Array;
  readonly h: Float64Array;
}

export interface PairsNativeParams {
  readonly [name: string]: unknown;
  readonly path: NativePath;
  readonly N: number;
  readonly M: number;
  /** The part of H that `h` holds. */
  readonly window: HWindow;
  /** Accuracy 'compensated' (hermitianTileCompensated). */
  readonly compensated: boolean;
}

let addon: NativeAddon | undefined;

export const pairsNativeKernel = defineKernel<PairsNativeBuffers, PairsNativeParams>({
  setup() {
    const load = loadNativeAddon();
    if (load.addon === undefined) throw new HpairError('INVALID_ARGUMENT', `the native kernel cannot run in this thread: ${load.reason}`);
    addon = load.addon;
  },
  tile(t, { buffers: { expp, distance, h }, params: { path, N, M, window, compensated } }) {
    const bad = addon![compensated ? 'hermitianTileCompensated' : 'hermitianTile'](path, expp, distance, h, N, M, t.i0, t.i1, t.j0, t.j1, window.r0, window.c0, window.rows, window.cols);
    if (bad >= 0) {
      // (N−1)·i + j of the tile's first entry that overflowed.
      const i = Math.floor(bad / (N - 1));
      throw hOverflow(i, bad - i * (N - 1), Number.NaN, Number.NaN, window);
    }
  },
});
