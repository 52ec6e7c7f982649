import { defineKernel } from '../shared/kernel-contract.js';
import type { MicroLayout, PairLayout } from './panels.js';
import { storeTile, type HWindow } from './hermitian-tile-store.js';

/**
 * Step 2 of an H job with a WebAssembly SIMD kernel. WebAssembly reads only its own linear memory, so
 * the panels live in a shared WebAssembly.Memory (packed there by step 1) and each thread computes its
 * tile into its own scratch slot of that memory; storeTile then copies the tile into the caller's shared
 * H and mirrors it, so H never lives in wasm memory and the next job cannot overwrite a returned result.
 *
 * Summation order of every entry, whatever the tile grid or worker count: k in blocks of kc, each summed from
 * zero (in two lanes, even and odd k, joined at the block's end); the blocks of a chunk of WASM_CHUNK columns
 * added in order; the chunks' sums added in order, starting from the first chunk's. Adding chunks instead of
 * continuing one sum over every block keeps the error of a long sum from growing with M/kc.
 */

/** Columns of k per chunk: a multiple of every kc the variant uses. */
export const WASM_CHUNK = 1024;
export interface PairsWasmBuffers {
  readonly [name: string]: Float64Array;
  readonly h: Float64Array;
}

export interface PairsWasmParams {
  readonly [name: string]: unknown;
  /** Micro-panels, or `pairs` panels for compensated accuracy (tile_comp). */
  readonly layout: MicroLayout | PairLayout;
  readonly module: WebAssembly.Module;
  readonly memory: WebAssembly.Memory;
  /** Tile edge of the triangle index space (a multiple of mr and nr). */
  readonly tile: number;
  /** k block length (even). */
  readonly kc: number;
  /** Byte offset of the A side (the B side follows at layout.bOffset float64 values). */
  readonly panelsByte: number;
  /** Byte offset of thread 0's tile scratch (two tiles: the sum and a chunk's sum); thread w's is `tile² · 32` bytes further per w. */
  readonly scratchByte: number;
  /** The part of H that `h` holds. */
  readonly window: HWindow;
}

type TileFunction = (
  pA: number,
  pB: number,
  Kp: number,
  kFrom: number,
  kTo: number,
  i0: number,
  i1: number,
  j0: number,
  j1: number,
  kc: number,
  pOut: number,
  ldo: number,
) => void;

type CompensatedTileFunction = (pP: number, rows: number, stride: number, i0: number, i1: number, j0: number, j1: number, pOut: number, ldo: number) => void;

/** One instance per (module, memory) in this thread: instantiating costs more than a small job. */
const instances = new WeakMap<WebAssembly.Memory, { module: WebAssembly.Module; tile: TileFunction; tileComp: CompensatedTileFunction }>();
let tileFn: TileFunction = () => undefined;
let tileCompFn: CompensatedTileFunction = () => undefined;
let scratch: Float64Array = new Float64Array(0);
let chunkScratch: Float64Array = new Float64Array(0);

export const pairsWasmKernel = defineKernel<PairsWasmBuffers, PairsWasmParams>({
  setup({ params, worker }) {
    const { module, memory, tile, scratchByte } = params;
    let instance = instances.get(memory);
    if (instance === undefined || instance.module !== module) {
      const exports = new WebAssembly.Instance(module, { env: { memory } }).exports as { tile: TileFunction; tile_comp: CompensatedTileFunction };
      instance = { module, tile: exports.tile, tileComp: exports.tile_comp };
      instances.set(memory, instance);
    }
    tileFn = instance.tile;
    tileCompFn = instance.tileComp;
    // The memory may have grown since the last job: views are rebuilt every job.
    scratch = new Float64Array(memory.buffer, scratchByte + worker * tile * tile * 32, 2 * tile * tile);
    chunkScratch = new Float64Array(memory.buffer, scratchByte + worker * tile * tile * 32 + tile * tile * 16, 2 * tile * tile);
  },
  tile(t, { buffers, params }) {
    const { layout, tile, kc, panelsByte } = params;
    if (layout.kind === 'pairs') {
      tileCompFn(panelsByte, layout.rows, layout.stride, t.i0, t.i1, t.j0, t.j1, scratch.byteOffset, tile);
      storeTile(t, scratch, buffers.h, params.window, tile);
      return;
    }
    const { mr, nr } = layout;
    const i1 = Math.ceil(t.i1 / mr) * mr;
    const j1 = Math.ceil(t.j1 / nr) * nr;
    const { kp } = layout;
    const pB = panelsByte + layout.bOffset * 8;
    if (kp === 0) scratch.fill(0);
    else tileFn(panelsByte, pB, kp, 0, Math.min(kp, WASM_CHUNK), t.i0, i1, t.j0, j1, kc, scratch.byteOffset, tile);
    for (let k0 = WASM_CHUNK; k0 < kp; k0 += WASM_CHUNK) {
      tileFn(panelsByte, pB, kp, k0, Math.min(kp, k0 + WASM_CHUNK), t.i0, i1, t.j0, j1, kc, chunkScratch.byteOffset, tile);
      // Rows of the tile, columns up to the diagonal: the entries storeTile reads.
      for (let i = t.i0; i < t.i1; i++) {
        const end = 2 * ((i - t.i0) * tile + Math.min(t.j1, i + 1) - t.j0);
        for (let x = 2 * (i - t.i0) * tile; x < end; x++) scratch[x] += chunkScratch[x];
      }
    }
    storeTile(t, scratch, buffers.h, params.window, tile);
  },
});
