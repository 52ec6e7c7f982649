import type { StepPlan } from '../shared/job.js';
import { CHECK_TILE } from './hermitian-check.js';
import { builtinRef, NATIVE_PATHS } from './kernel-names.js';
import { loadNativeAddon, type NativeAddonLoad, type NativePath, type NativePathInfo } from './native/addon.js';
import type { HermitianVariant, Support } from './variant.js';

/**
 * C micro-kernels behind Node-API (kernel/native/), one variant per path of kernel/native/src/paths.h. Each tile
 * packs its own A and B blocks per k block into the thread's native scratch (as BLIS does), so no job-wide panels
 * exist: a job needs its inputs, H and a few MB per thread. Every size here (micro-tile, kc, mc, the compensated
 * pass, the tile edge, the chunk) is the path's record from the addon's info(), registered once in the path's C file.
 */
/** The tile edge when no addon loads (the variant then never runs; the planner still asks). */
const NO_ADDON_TILE = 240;

/** info() once per loaded addon (it builds new objects on every call). */
const infos = new WeakMap<object, readonly NativePathInfo[]>();
function pathInfo(path: NativePath): NativePathInfo | undefined {
  const addon = loadNativeAddon().addon;
  if (addon === undefined) return undefined;
  let paths = infos.get(addon);
  if (paths === undefined) infos.set(addon, (paths = addon.info().paths));
  return paths.find((candidate) => candidate.name === path);
}
const tileOf = (path: NativePath): number => pathInfo(path)?.tile ?? NO_ADDON_TILE;

/**
 * Each tile packs its rows (A) and columns (B, with the division by distance) once per k block, so a tile of
 * twice the edge packs each row of expp half as often for four times the work; the job takes it when its
 * workers still finish sooner (kernel/hermitian-tiling.ts). The larger tile's sums leave L2, but driver.h keeps
 * them in column panels that each k block's pass streams through in the order the micro-kernel visits them, so
 * they cost less than the packing saves (bench/orders/pool-ab.mjs at N = M = 4096, a build that takes only the
 * path's tile against this one). Only when k spans LARGE_TILE_MIN_BLOCKS k blocks or more: below, storing H weighs
 * as much as the packing. Never for accuracy 'compensated': its kernel reads and writes its four sums per entry,
 * row-major, once per k block, so a larger tile's sums leave the caches and cost more than its packing saves.
 */
const LARGE_TILE_FACTOR = 2;
const LARGE_TILE_MIN_BLOCKS = 2;

const padTo = (x: number, step: number): number => Math.ceil(x / step) * step;

/**
 * A thread's packs and sums for its largest tile of a job of R rows and M columns, as driver.h reserves them:
 * default accuracy, A packs of 3 planes × min(mc, rows) × kc, B packs of 3 planes × cols × kc, and P1..P3 over the
 * padded tile (twice when k spans more than one chunk); compensated, A and B packs of 5 planes × its k block (compKc)
 * and 4 sums per entry, padded to the compensated pass. The C side grows its scratch to what a tile needs and keeps
 * it, so this is what a worker holds for such jobs, or a little more than it: info.mc is the most rows a tile's A
 * block has (a tile whose packed B fits in L2 takes fewer, kernel/native/README.md).
 */
function scratchPerThread(info: NativePathInfo | undefined, R: number, M: number, tileEdge: number | undefined): number {
  if (info === undefined) return 0;
  const edge = Math.max(1, Math.min(tileEdge ?? info.tile, R));
  const kc = Math.max(1, Math.min(info.kc, M - 1));
  const prow = padTo(edge, info.mr), pcol = padTo(edge, info.nr);
  const pSets = M - 1 > info.chunk ? 2 : 1;
  const plain = 3 * Math.min(info.mc, prow) * kc + 3 * pcol * kc + 3 * pSets * prow * pcol;
  const crow = padTo(edge, info.compRows), ccol = padTo(edge, info.compCols);
  // an addon built before compKc was published blocked the compensated kernel by kc
  const ckc = Math.max(1, Math.min(info.compKc ?? info.kc, M - 1));
  const compensated = 5 * crow * ckc + 5 * ccol * ckc + 4 * crow * ccol;
  return Math.max(plain, compensated) * 8;
}

function nativeVariant(path: NativePath): HermitianVariant {
  // Recomputed when the load changes: the nativeAddon option (or HPAIR_NATIVE_ADDON) may name another file later.
  let support: { load: NativeAddonLoad; support: Support } | undefined;
  return {
    name: `native-${path}`,
    support: () => {
      const load = loadNativeAddon();
      if (support?.load !== load) support = { load, support: supportOf(path) };
      return support.support;
    },
    get tile() {
      return tileOf(path);
    },
    tileEdges: (M, accuracy) => {
      const tile = tileOf(path), kc = pathInfo(path)?.kc;
      return accuracy === 'default' && kc !== undefined && M - 1 >= LARGE_TILE_MIN_BLOCKS * kc ? [tile, LARGE_TILE_FACTOR * tile] : [tile];
    },
    // Rows of a micro-tile: a cut elsewhere leaves a part-empty row panel on either side.
    get tileStep() {
      return pathInfo(path)?.mr ?? 1;
    },
    anyOrigin: true,
    compensated: true,
    scratchBytes: (N, M, threads, tileEdge) => ({ wasm: 0, shared: 0, native: threads * scratchPerThread(pathInfo(path), N, M, tileEdge) }),
    steps({ N, M, expp, distance, h, badValue, window, pairSpace, accuracy }) {
      const steps: StepPlan[] = [
        {
          kernel: builtinRef('hermitian/check'),
          space: { kind: 'range', n: N, tile: CHECK_TILE },
          buffers: { expp, badValue },
          params: { M },
        },
        {
          kernel: builtinRef('hermitian/pairs-native'),
          space: pairSpace,
          buffers: { expp, distance, h },
          params: { path, N, M, window, compensated: accuracy === 'compensated' },
        },
      ];
      return steps;
    },
  };
}

function supportOf(path: NativePath): Support {
  const { addon, reason } = loadNativeAddon();
  if (addon === undefined) return { ok: false, reason };
  const info = pathInfo(path);
  if (info === undefined) return { ok: false, reason: `the native addon has no ${path} path` };
  return info.supported ? { ok: true } : { ok: false, reason: info.reason ?? `this CPU cannot run the ${path} path` };
}

/** One variant per native path, in paths.h's order. */
export const NATIVE_VARIANTS: readonly HermitianVariant[] = NATIVE_PATHS.map(nativeVariant);

/** Whether the path's FMA is one instruction in this build (else fma() is a library call, slower than WebAssembly). */
export function nativeFastFma(path: NativePath): boolean {
  return pathInfo(path)?.fastFma ?? false;
}
