import type { StepPlan } from '../shared/job.js';
import { CHECK_TILE } from './hermitian-check.js';
import { loadNativeAddon, type NativeAddonLoad, type NativePath } from './native/addon.js';
import type { HermitianVariant, Support } from './variant.js';

/**
 * C micro-kernels behind Node-API (kernel/native/), one variant per instruction set, picked by CPUID in the
 * addon. Each tile packs its own A and B blocks per k block into the thread's native scratch (as BLIS
 * does), so no job-wide panels exist: a job needs its inputs, H and a few MB per thread. The micro-tile
 * and kc are registered per path in C (kernel/native/src/path_*.c); the tile edge only sets the scheduling
 * and cancellation grain (~40 ms of work at M = 4096) and never changes a result.
 */
const TILE = 240;
/** HPAIR_CHUNK of kernel/native/src/kernel.h: columns of k per chunk of the summation order. */
const NATIVE_CHUNK = 12288;

/**
 * A thread's packs and partial products for its largest tile of a job of R rows and M columns: A and B panels
 * of 3 planes × kc (kc ≤ M − 1) and P1..P3 (twice when k spans more than one chunk of NATIVE_CHUNK columns: the
 * sums and the current chunk's, kernel/native/src/kernel.h), with the tile's edge padded as the C side pads it.
 * The C side grows its scratch to what a tile needs and keeps it, so this is what a worker holds for such jobs.
 */
function scratchPerThread(R: number, M: number, tileEdge = TILE): number {
  const kc = Math.max(1, Math.min(loadNativeAddon().addon?.info().paths[0]?.kc ?? 256, M - 1));
  // Rounded up to 48, a multiple of every path's micro-tile rows and columns (6 and 8; 12 and 16), as C pads them.
  const edge = Math.ceil(Math.min(TILE, tileEdge, R) / 48) * 48;
  const pSets = M - 1 > NATIVE_CHUNK ? 2 : 1;
  // Compensated accuracy (driver.h): A and B packs of 4 planes × kc and 4 sums per entry.
  return Math.max(3 * (2 * edge * kc + pSets * edge * edge), 4 * (2 * edge * kc + edge * edge)) * 8;
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
    tile: TILE,
    anyOrigin: true,
    compensated: true,
    scratchBytes: (N, M, threads, tileEdge) => ({ wasm: 0, shared: 0, native: threads * scratchPerThread(N, M, tileEdge) }),
    steps({ N, M, expp, distance, h, badValue, window, pairSpace, accuracy }) {
      const steps: StepPlan[] = [
        {
          kernel: { kind: 'builtin', name: 'hermitian/check' },
          space: { kind: 'range', n: N, tile: CHECK_TILE },
          buffers: { expp, badValue },
          params: { M },
        },
        {
          kernel: { kind: 'builtin', name: 'hermitian/pairs-native' },
          space: pairSpace(TILE),
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
  const info = addon.info().paths.find((candidate) => candidate.name === path);
  if (info === undefined) return { ok: false, reason: `the native addon has no ${path} path` };
  return info.supported ? { ok: true } : { ok: false, reason: info.reason ?? `this CPU cannot run the ${path} path` };
}

export const nativeAvx512Variant = nativeVariant('avx512');
export const nativeAvx2Variant = nativeVariant('avx2');
