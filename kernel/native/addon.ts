import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';

/** A native micro-kernel path, as the addon registers it (kernel/native/src/path_*.c). */
export type NativePath = 'avx512' | 'avx2';

export interface NativePathInfo {
  readonly name: NativePath;
  readonly supported: boolean;
  /** Why not, when unsupported (e.g. "this CPU has no AVX-512F"). */
  readonly reason?: string;
  readonly mr: number;
  readonly nr: number;
  readonly kc: number;
}

/** The exports of hpair_native.node (kernel/native/src/addon.c). Every call validates its arguments. */
export interface NativeAddon {
  info(): { readonly paths: readonly NativePathInfo[]; readonly cache: { readonly l1d: number; readonly l2: number; readonly l3: number }; readonly compiler: string };
  /** First index in [start, end) holding NaN or ±Infinity, or −1. */
  scanNonFinite(values: Float64Array, start: number, end: number): number;
  /**
   * H's lower-triangle entries of rows [i0, i1) × columns [j0, j1) (j ≤ i), with their mirrors, stored in
   * place into `out`, which holds rows [r0, r0 + rows) × columns [c0, c0 + cols) of H.
   */
  hermitianTile(
    path: NativePath, expp: Float64Array, distance: Float64Array, out: Float64Array, N: number, M: number,
    i0: number, i1: number, j0: number, j1: number, r0: number, c0: number, rows: number, cols: number,
  ): void;
  /** The path's micro-kernel alone, on packed panels (for tests). */
  microKernel(path: NativePath, k: number, a: Float64Array, b: Float64Array, c: Float64Array, accumulate: boolean): void;
}

export type NativeLoad = { readonly addon: NativeAddon; readonly reason?: undefined } | { readonly addon: undefined; readonly reason: string };

/** Where the addon is looked for: $HPAIR_NATIVE_ADDON, else the build beside the package's dist/. */
export function nativeAddonPath(): string {
  return process.env.HPAIR_NATIVE_ADDON ?? fileURLToPath(new URL('../kernel/native/build/Release/hpair_native.node', import.meta.url));
}

let loaded: NativeLoad | undefined;

/** Loads the addon once per thread (Node-API addons load in every worker). Never throws. */
export function loadNativeAddon(): NativeLoad {
  if (loaded !== undefined) return loaded;
  if (process.arch !== 'x64') return (loaded = { addon: undefined, reason: `the native kernels are for x86-64; this CPU is ${process.arch}` });
  const path = nativeAddonPath();
  try {
    loaded = { addon: createRequire(import.meta.url)(path) as NativeAddon };
  } catch (error) {
    loaded = { addon: undefined, reason: whyNotBuilt(path) ?? `the native addon did not load: ${oneLine((error as Error).message)}` };
  }
  return loaded;
}

/** The install's own account of a build that did not happen (kernel/native/install.mjs writes it). */
function whyNotBuilt(addonPath: string): string | undefined {
  try {
    const status = JSON.parse(readFileSync(new URL('../status.json', pathToFileURL(addonPath)), 'utf8')) as { built?: boolean; reason?: string };
    return status.built === false && typeof status.reason === 'string' ? `the native addon was not built: ${oneLine(status.reason)}` : undefined;
  } catch {
    return undefined;
  }
}

function oneLine(text: string): string {
  return text.split('\n')[0].trim();
}
