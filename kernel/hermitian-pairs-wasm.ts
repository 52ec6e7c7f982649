import { defineKernel } from '../shared/kernel-contract.js';
import type { MicroLayout } from './panels.js';
import { storeTile, type HWindow } from './hermitian-tile-store.js';

/**
 * Step 2 of an H job with a WebAssembly SIMD kernel. WebAssembly reads only its own linear memory, so
 * the panels live in a shared WebAssembly.Memory (packed there by step 1) and each thread computes its
 * tile into its own scratch slot of that memory; storeTile then copies the tile into the caller's shared
 * H and mirrors it, so H never lives in wasm memory and the next job cannot overwrite a returned result.
 */
export interface PairsWasmBuffers {
  readonly [name: string]: Float64Array;
  readonly h: Float64Array;
}

export interface PairsWasmParams {
  readonly [name: string]: unknown;
  readonly layout: MicroLayout;
  readonly module: WebAssembly.Module;
  readonly memory: WebAssembly.Memory;
  /** Tile edge of the triangle index space (a multiple of mr and nr). */
  readonly tile: number;
  /** k block length (even). */
  readonly kc: number;
  /** Byte offset of the A side (the B side follows at layout.bOffset float64 values). */
  readonly panelsByte: number;
  /** Byte offset of thread 0's tile scratch; thread w's is `tile² · 16` bytes further per w. */
  readonly scratchByte: number;
  /** The part of H that `h` holds. */
  readonly window: HWindow;
}

type TileFunction = (pA: number, pB: number, Kp: number, i0: number, i1: number, j0: number, j1: number, kc: number, pOut: number, ldo: number) => void;

/** One instance per (module, memory) in this thread: instantiating costs more than a small job. */
const instances = new WeakMap<WebAssembly.Memory, { module: WebAssembly.Module; tile: TileFunction }>();
let tileFn: TileFunction = () => undefined;
let scratch: Float64Array = new Float64Array(0);

export const pairsWasmKernel = defineKernel<PairsWasmBuffers, PairsWasmParams>({
  setup({ params, worker }) {
    const { module, memory, tile, scratchByte } = params;
    let instance = instances.get(memory);
    if (instance === undefined || instance.module !== module) {
      const exports = new WebAssembly.Instance(module, { env: { memory } }).exports as { tile: TileFunction };
      instance = { module, tile: exports.tile };
      instances.set(memory, instance);
    }
    tileFn = instance.tile;
    // The memory may have grown since the last job: views are rebuilt every job.
    scratch = new Float64Array(memory.buffer, scratchByte + worker * tile * tile * 16, 2 * tile * tile);
  },
  tile(t, { buffers, params }) {
    const { layout, tile, kc, panelsByte } = params;
    const { mr, nr } = layout;
    const i1 = Math.ceil(t.i1 / mr) * mr;
    const j1 = Math.ceil(t.j1 / nr) * nr;
    if (layout.kp === 0) scratch.fill(0);
    else tileFn(panelsByte, panelsByte + layout.bOffset * 8, layout.kp, t.i0, i1, t.j0, j1, kc, scratch.byteOffset, tile);
    storeTile(t, scratch, buffers.h, params.window, tile);
  },
});
