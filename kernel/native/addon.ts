// Loader and typings of the native kernel (kernel/native/src, built at install time by install.mjs).
// The addon is optional: loadNativeAddon() says why it is unavailable instead of throwing.
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The two architecture paths; which ones run here is in `info().paths`. */
export type NativePathName = 'avx512' | 'avx2';
export type NativePath = NativePathName;

export interface NativePathInfo {
  readonly name: NativePathName;
  /** The CPU has the instructions and the OS saves their registers (checked at run time, not at build time). */
  readonly supported: boolean;
  /** Why it is unsupported, in a few words (only when `supported` is false). */
  readonly reason?: string;
  /** Micro-tile rows and columns, and the k-block length (the same for every path). */
  readonly mr: number;
  readonly nr: number;
  readonly kc: number;
}

export interface NativeInfo {
  readonly paths: readonly NativePathInfo[];
  /** Bytes per core: L1 data, L2, and this core's share of L3 (the L3 size over the CPUs that share it). */
  readonly cache: { readonly l1d: number; readonly l2: number; readonly l3: number };
  /** The compiler that built the addon, e.g. 'gcc 12.2.0'. */
  readonly compiler: string;
}

/**
 * The addon's exports. Every function validates its arguments and throws a TypeError, RangeError or Error with
 * `code: 'ERR_HPAIR_NATIVE'` instead of touching memory it should not; a path the CPU lacks throws too.
 * Typed arrays may be views (any byteOffset) over ArrayBuffers, SharedArrayBuffers or WebAssembly memory.
 */
export interface NativeAddon {
  info(): NativeInfo;
  /** Index of the first NaN or ±Infinity in values[start, end), or −1. */
  scanNonFinite(values: Float64Array, start: number, end: number): number;
  /**
   * Computes H[i, j] for the tile's rows [i0, i1) and columns [j0, j1) with j ≤ i, and stores each with its
   * mirror H[j, i] = conj(H[i, j]) (the diagonal exactly real) into h, in place. expp is N×M complex
   * (interleaved), distance has M values; tile bounds lie in [0, N−1]. Results do not depend on the tile grid,
   * and are the same bits on every path.
   *
   * h is the whole (N−1)×(N−1) H (complex, interleaved), or, with the optional window, rows [r0, r0 + rows) ×
   * columns [c0, c0 + cols) of H, row stride `cols`: entries and mirrors outside the window are not stored.
   *
   * Returns −1, or (N−1)·i + j of the first entry of the tile (row-major, j ≤ i) that came out non-finite from
   * finite inputs (an overflow: |expp| near 1e154 or more, a subnormal distance); it is stored as computed.
   */
  hermitianTile(
    path: NativePathName,
    expp: Float64Array,
    distance: Float64Array,
    h: Float64Array,
    N: number,
    M: number,
    i0: number,
    i1: number,
    j0: number,
    j1: number,
    r0?: number,
    c0?: number,
    rows?: number,
    cols?: number,
  ): number;
  /** hermitianTile with compensated accuracy: each entry as if computed in twice the working precision. */
  hermitianTileCompensated: NativeAddon['hermitianTile'];
  /**
   * That path's micro-kernel alone: s = Σ_{k} a[k·mr + i] · b[k·nr + j], one fused multiply-add chain per
   * element in k order from 0; then c[i·nr + j] = c[i·nr + j] + s when `accumulate`, else s.
   */
  microKernel(path: NativePathName, k: number, a: Float64Array, b: Float64Array, c: Float64Array, accumulate: boolean): void;
  /**
   * Asks the OS to back the view's memory with transparent huge pages (Linux MADV_HUGEPAGE on its 2 MiB-aligned
   * part), before anything touches it. Returns the bytes advised: 0 when the view holds no aligned 2 MiB or the
   * OS has no such advice. A hint only; it changes no value.
   */
  adviseHugePages(view: Float64Array | Uint8Array): number;
  /**
   * Tells this thread's V8 that JavaScript objects keep `bytes` more (or, negative, fewer) bytes of memory alive
   * outside its heap (napi_adjust_external_memory), so that it collects sooner. Returns the thread's new total.
   */
  adjustExternalMemory(bytes: number): number;
}

export type NativeAddonLoad = { readonly addon: NativeAddon; readonly reason?: undefined } | { readonly addon: undefined; readonly reason: string };

/**
 * The repository (package) root: the nearest folder above this module whose package.json is hpair's. This
 * module runs from kernel/native/ as source and from dist/ once bundled, so a fixed relative path would be
 * right in only one of them.
 */
function packageRoot(): string | undefined {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const manifest = path.join(dir, 'package.json');
    if (existsSync(manifest)) {
      try {
        if ((JSON.parse(readFileSync(manifest, 'utf8')) as { name?: unknown }).name === 'hpair') return dir;
      } catch {
        // not a readable manifest: keep looking upwards
      }
    }
    const parent = path.dirname(dir);
    if (parent === dir) return undefined;
    dir = parent;
  }
}

/** The package root's addon path, found once: every job asks, and walking the file system costs ~0.1 ms. */
let defaultPath: string | undefined;

/** Where the built addon is: `HPAIR_NATIVE_ADDON` if set, else kernel/native/build/Release/ under the package root. */
export function nativeAddonPath(): string {
  const override = process.env.HPAIR_NATIVE_ADDON;
  if (override) return path.resolve(override);
  defaultPath ??= path.join(packageRoot() ?? path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..'), 'kernel/native/build/Release/hpair_native.node');
  return defaultPath;
}

const firstLine = (text: string): string => text.split('\n')[0].trim();

function isNativeAddon(value: unknown): value is NativeAddon {
  if (typeof value !== 'object' || value === null) return false;
  const exports = value as Record<string, unknown>;
  return ['info', 'scanNonFinite', 'hermitianTile', 'microKernel', 'adviseHugePages', 'adjustExternalMemory'].every((name) => typeof exports[name] === 'function');
}

/** Why install.mjs did not build the addon, from build/status.json, or undefined if it did (or never ran). */
function buildFailure(addonFile: string): string | undefined {
  const statusFile = path.resolve(addonFile, '../../status.json');
  if (!existsSync(statusFile)) return undefined;
  try {
    const status = JSON.parse(readFileSync(statusFile, 'utf8')) as { built?: unknown; reason?: unknown };
    if (status.built === true) return undefined;
    return typeof status.reason === 'string' ? firstLine(status.reason) : 'the native kernel was not built';
  } catch {
    return undefined;
  }
}

const loads = new Map<string, NativeAddonLoad>();

/**
 * Loads the native addon (once per file and thread; Node-API addons load in every worker). Never throws: when
 * the addon is missing, was not built, or fails to load, `reason` says why in one line.
 */
export function loadNativeAddon(): NativeAddonLoad {
  const file = nativeAddonPath();
  let load = loads.get(file);
  if (load === undefined) {
    load = tryLoad(file);
    loads.set(file, load);
  }
  return load;
}

function tryLoad(file: string): NativeAddonLoad {
  if (process.arch !== 'x64') return { addon: undefined, reason: `the native kernels are for x86-64 CPUs; this one is ${process.arch}` };
  if (!process.env.HPAIR_NATIVE_ADDON) {
    const failure = buildFailure(file);
    if (failure !== undefined) return { addon: undefined, reason: `native kernel not built: ${failure}` };
  }
  if (!existsSync(file)) return { addon: undefined, reason: `native kernel not found at ${file} (install.mjs has not built it)` };
  try {
    const loaded: unknown = createRequire(import.meta.url)(file);
    if (!isNativeAddon(loaded)) return { addon: undefined, reason: `${file} is not the hpair native kernel` };
    return { addon: loaded };
  } catch (error) {
    return { addon: undefined, reason: `native kernel failed to load: ${firstLine(error instanceof Error ? error.message : String(error))}` };
  }
}
