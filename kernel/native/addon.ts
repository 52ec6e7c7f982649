// Loader and typings of the native kernel (kernel/native/src): a prebuilt addon shipped in the package's
// prebuilds/ folder, or one built from source at install time by install.mjs, or one named by the user (the
// `nativeAddon` pool option, HPAIR_NATIVE_ADDON), or one copied beside a bundle. The addon is optional:
// loadNativeAddon() says why it is unavailable instead of throwing.
import { closeSync, existsSync, openSync, readFileSync, readSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { HpairError } from '../../shared/errors.js';
import type { NativePathName } from '../kernel-names.js';

export type { NativePathName } from '../kernel-names.js';
/** A native path (kernel/native/src/paths.h); which ones run here is in `info().paths`. */
export type NativePath = NativePathName;

export interface NativePathInfo {
  readonly name: NativePathName;
  /** The CPU has the instructions and the OS saves their registers (checked at run time, not at build time). */
  readonly supported: boolean;
  /** Why it is unsupported, in a few words (only when `supported` is false). */
  readonly reason?: string;
  /** Micro-tile rows and columns, and the k-block length (the same for every path: the summation order). */
  readonly mr: number;
  readonly nr: number;
  readonly kc: number;
  /**
   * Rows per packed A block on this CPU (from its L2), a multiple of mr, at most `mcMaxPanels`·mr: the most a tile
   * uses. A tile whose packed B fits in L2 uses fewer (one A plane in L1d; kernel/native/README.md).
   */
  readonly mc: number;
  readonly mcMaxPanels: number;
  /** Rows × columns of one pass of the compensated kernel (its scratch is padded to them). */
  readonly compRows: number;
  readonly compCols: number;
  /** Columns of k per block of the compensated kernel's packs (HPAIR_COMP_KC; a blocking, not a result's bits). */
  readonly compKc: number;
  /** The tile edge a job schedules on this path (a grain of work, never a result's bits). */
  readonly tile: number;
  /** Columns of k per chunk of the summation order (HPAIR_CHUNK): beyond one chunk a tile keeps a second set of sums. */
  readonly chunk: number;
  /** Doubles per FMA instruction of the path's peak probe. */
  readonly lanes: number;
  /** Whether this build's FMA is one instruction (not a library call), so the path outruns WebAssembly. */
  readonly fastFma: boolean;
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
   * That path's packing alone, as a tile packs: H's rows [r0, r0 + rows) (rows of expp), k block [kb, kb + kc)
   * (1 ≤ kc ≤ the path's kc; expp's columns kb + 1 …), as side 'a' (planes Ar, Ai, Ar + Ai in mr-tall micro-panels) or
   * 'b' (Br, Bi, Br − Bi of B = A / distance, in nr-wide micro-panels), with A = expp[row] − expp[N − 1]; padding rows
   * are zeros. Into out: three planes of ceil(rows / w)·w·kc values, panel p, k, lane x at p·kc·w + k·w + x. Side
   * 'ab': both, as a tile on the diagonal packs one row block of those rows in one pass (A's planes with w = mr,
   * then B's with w = nr). A test export: absent from addons built before it existed.
   */
  packPanels?(
    path: NativePathName,
    side: 'a' | 'b' | 'ab',
    expp: Float64Array,
    distance: Float64Array,
    N: number,
    M: number,
    r0: number,
    rows: number,
    kb: number,
    kc: number,
    out: Float64Array,
  ): void;
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
  /**
   * Returns the free memory of every malloc arena of the process to the OS (glibc `malloc_trim(0)`): true if any
   * was released. Absent from addons built before it existed; false where the C library has no such call.
   */
  trimMemory?(): boolean;
  /** Double-precision flops/s this thread sustains on that path's FMA alone, measured for `seconds` (0 < seconds ≤ 10): the bench's peak (each path file's probe, src/peak_loop.h). */
  fmaPeak(path: NativePathName, seconds: number): number;
  /**
   * Bytes/s this thread writes over the whole of `values`, again and again for `seconds` (0 < seconds ≤ 10), after
   * one untimed pass: with ordinary stores, or with streaming (non-temporal) ones where the CPU has them (x86-64;
   * elsewhere ordinary ones). The bench's write-bandwidth limit (src/bandwidth.c). Overwrites `values`.
   */
  writeBandwidth(values: Float64Array, seconds: number, streaming: boolean): number;
}

/**
 * Where a loaded addon came from: the `nativeAddon` pool option, HPAIR_NATIVE_ADDON, the package's
 * build/Release (built from source at install), its prebuilds/ folder, or beside a bundle.
 */
export type NativeAddonOrigin = 'option' | 'env' | 'built' | 'prebuilt' | 'bundle';

export type NativeAddonLoad =
  | { readonly addon: NativeAddon; readonly file: string; readonly origin: NativeAddonOrigin; readonly reason?: undefined }
  | { readonly addon: undefined; readonly file?: undefined; readonly origin?: undefined; readonly reason: string };

/** The addon's file name stem, as binding.gyp's target names it. */
const NAME = 'hpair_native';
/** Node's name for this platform and CPU, as prebuilds/ folders are named (node-gyp-build's convention). */
const PLATFORM = `${process.platform}-${process.arch}`;

/**
 * The C library this Node runs on (Linux only): a prebuilt addon links against one of them, and one built for
 * musl does not load on glibc or the other way round. Node's own ELF interpreter says which, without running
 * anything; a Node that has none (linked statically) falls back on process.report, which knows glibc only.
 */
let libcFound: 'glibc' | 'musl' | undefined | null = null;
export function nativeLibc(): 'glibc' | 'musl' | undefined {
  if (libcFound !== null) return libcFound;
  libcFound = undefined;
  if (process.platform !== 'linux') return libcFound;
  try {
    const head = readHead(process.execPath, 4096);
    const text = head.toString('latin1');
    if (/ld-musl-/.test(text)) libcFound = 'musl';
    else if (/ld-linux[-.a-z0-9_]*\.so/.test(text)) libcFound = 'glibc';
  } catch {
    // unreadable: ask process.report below
  }
  if (libcFound === undefined) {
    const header = (process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined)?.header;
    libcFound = header?.glibcVersionRuntime ? 'glibc' : 'musl';
  }
  return libcFound;
}

function readHead(file: string, bytes: number): Buffer {
  const fd = openSync(file, 'r');
  try {
    const buffer = Buffer.alloc(bytes);
    return buffer.subarray(0, readSync(fd, buffer, 0, bytes, 0));
  } finally {
    closeSync(fd);
  }
}

/**
 * The prebuilt file for this platform, CPU and C library, under a prebuilds/ folder:
 * `prebuilds/linux-x64/hpair_native.napi.glibc.node` (Node-API, so one file serves every Node version).
 */
export function prebuiltAddonName(): string {
  const libc = nativeLibc();
  return `${PLATFORM}/${NAME}.napi${libc === undefined ? '' : `.${libc}`}.node`;
}

/**
 * The repository (package) root: the nearest folder above this module whose package.json is hpair's. This
 * module runs from kernel/native/ as source and from dist/ once bundled, so a fixed relative path would be
 * right in only one of them. Undefined inside a user's bundle (no hpair package.json above it).
 */
let rootFound: string | undefined | null = null;
function packageRoot(): string | undefined {
  if (rootFound !== null) return rootFound;
  let dir = moduleDir();
  for (;;) {
    const manifest = path.join(dir, 'package.json');
    if (existsSync(manifest)) {
      try {
        if ((JSON.parse(readFileSync(manifest, 'utf8')) as { name?: unknown }).name === 'hpair') return (rootFound = dir);
      } catch {
        // not a readable manifest: keep looking upwards
      }
    }
    const parent = path.dirname(dir);
    if (parent === dir) return (rootFound = undefined);
    dir = parent;
  }
}

const moduleDir = (): string => path.dirname(fileURLToPath(import.meta.url));

/** Set by the `nativeAddon` pool option: the file for every thread of this process. */
let configured: string | undefined;

/**
 * Makes `file` the native addon of this process (the `nativeAddon` pool option): this thread loads it, and
 * the pool's worker threads get it as HPAIR_NATIVE_ADDON. One addon per process: naming another file after
 * one was configured, or after the default one loaded, throws INVALID_ARGUMENT (two pools would disagree
 * about which kernels run).
 */
export function useNativeAddon(file: string | URL): void {
  const resolved = typeof file === 'string' ? path.resolve(file) : fileURLToPath(file);
  if (configured === resolved) return;
  if (configured !== undefined) {
    throw new HpairError('INVALID_ARGUMENT', `nativeAddon: this process already uses ${configured} (one native addon per process), not ${resolved}`);
  }
  const current = loads.get(loadKey());
  if (current?.addon !== undefined && current.file !== resolved) {
    throw new HpairError('INVALID_ARGUMENT', `nativeAddon: this process already loaded the native kernel from ${current.file}; name ${resolved} before the first pool starts, or set HPAIR_NATIVE_ADDON`);
  }
  configured = resolved;
}

/** The file the `nativeAddon` pool option named, for the environment of worker threads; undefined if none. */
export function configuredNativeAddon(): string | undefined {
  return configured;
}

interface Candidate {
  readonly file: string;
  readonly origin: NativeAddonOrigin;
}

/** The explicit file (option, then environment), or the places looked in, in order. */
function candidates(): { explicit: Candidate } | { explicit?: undefined; list: Candidate[]; root: string | undefined } {
  if (configured !== undefined) return { explicit: { file: configured, origin: 'option' } };
  const override = process.env.HPAIR_NATIVE_ADDON;
  if (override) return { explicit: { file: path.resolve(override), origin: 'env' } };
  const root = packageRoot();
  if (root !== undefined) {
    // A source build is there only when install.mjs built one (no prebuilt addon fitted, or it was asked to):
    // it wins, as in node-gyp-build. The prebuilt addon is not tried when install.mjs ran and did not choose it
    // (HPAIR_NO_NATIVE, a source checkout, C sources other than the ones it was built from): its reason stands.
    const status = nativeInstallStatus();
    const prebuiltAllowed = status === undefined || status.built === true || typeof status.prebuilt === 'string';
    return {
      list: [
        { file: path.join(root, 'kernel/native/build/Release', `${NAME}.node`), origin: 'built' },
        ...(prebuiltAllowed ? [{ file: path.join(root, 'prebuilds', prebuiltAddonName()), origin: 'prebuilt' as const }] : []),
      ],
      root,
    };
  }
  // Inside a bundle: the addon copied beside it, or a prebuilds/ folder copied beside it.
  const dir = moduleDir();
  return {
    list: [
      { file: path.join(dir, `${NAME}.node`), origin: 'bundle' },
      { file: path.join(dir, 'prebuilds', prebuiltAddonName()), origin: 'bundle' },
    ],
    root,
  };
}

/**
 * Where the addon is: the file this thread loaded, or else the first place it would be looked for
 * (the `nativeAddon` option, `HPAIR_NATIVE_ADDON`, the package's build/Release, its prebuilds/, or beside a bundle).
 */
export function nativeAddonPath(): string {
  const load = loadNativeAddon();
  if (load.addon !== undefined) return load.file;
  const found = candidates();
  return found.explicit !== undefined ? found.explicit.file : found.list[0].file;
}

const firstLine = (text: string): string => text.split('\n')[0].trim();

function isNativeAddon(value: unknown): value is NativeAddon {
  if (typeof value !== 'object' || value === null) return false;
  const exports = value as Record<string, unknown>;
  return ['info', 'scanNonFinite', 'hermitianTile', 'microKernel', 'adviseHugePages', 'adjustExternalMemory'].every((name) => typeof exports[name] === 'function');
}

/** Why install.mjs did not build the addon, from build/status.json; undefined if it did, or never ran. */
function buildFailure(root: string): string | undefined {
  const statusFile = path.join(root, 'kernel/native/build/status.json');
  if (!existsSync(statusFile)) return undefined;
  try {
    const status = JSON.parse(readFileSync(statusFile, 'utf8')) as { built?: unknown; reason?: unknown; prebuilt?: unknown };
    if (status.built === true) return undefined;
    if (typeof status.prebuilt === 'string') return `the install chose ${status.prebuilt}, which is no longer there`;
    return typeof status.reason === 'string' ? firstLine(status.reason) : 'the native kernel was not built';
  } catch {
    return undefined;
  }
}

const loads = new Map<string, NativeAddonLoad>();
const loadKey = (): string => `${configured ?? ''}\0${process.env.HPAIR_NATIVE_ADDON ?? ''}`;

/**
 * Loads the native addon (once per place and thread; Node-API addons load in every worker). Never throws:
 * when no addon fits this platform, none was found, or it fails to load, `reason` says why in one line.
 */
export function loadNativeAddon(): NativeAddonLoad {
  const key = loadKey();
  let load = loads.get(key);
  if (load === undefined) {
    load = find();
    loads.set(key, load);
  }
  return load;
}

function find(): NativeAddonLoad {
  const found = candidates();
  if (found.explicit !== undefined) {
    const { file, origin } = found.explicit;
    const via = origin === 'option' ? 'the nativeAddon option' : 'HPAIR_NATIVE_ADDON';
    if (!existsSync(file)) return { addon: undefined, reason: `native kernel not found at ${file} (named by ${via})` };
    return tryLoad(file, origin);
  }
  const failures: string[] = [];
  for (const { file, origin } of found.list) {
    if (!existsSync(file)) continue;
    const load = tryLoad(file, origin);
    if (load.addon !== undefined) return load;
    failures.push(load.reason);
  }
  if (failures.length > 0) return { addon: undefined, reason: failures.join('; ') };
  if (found.root === undefined) {
    const [beside, prebuilt] = found.list.map((candidate) => candidate.file);
    return {
      addon: undefined,
      reason: `native kernel not found beside the bundle (${beside}, or ${prebuilt}): copy it there, or name it with the nativeAddon pool option or HPAIR_NATIVE_ADDON`,
    };
  }
  // install.mjs's reason says why it chose no prebuilt addon and built none; without it, only what is here.
  const built = buildFailure(found.root);
  if (built !== undefined) return { addon: undefined, reason: `native kernel not available: ${built}` };
  const others = prebuiltPlatforms(path.join(found.root, 'prebuilds'));
  const prebuiltWhy =
    others.length === 0 ? 'the package has no prebuilt addons' : `no prebuilt addon for ${describePlatform()} (the package has ${others.join(', ')})`;
  return { addon: undefined, reason: `native kernel not available: ${prebuiltWhy}, and none was built from source (kernel/native/install.mjs has not run)` };
}

/** This platform as prebuilt addons are told apart: 'linux-x64 (glibc)'. */
export function describePlatform(): string {
  const libc = nativeLibc();
  return `${PLATFORM}${libc === undefined ? '' : ` (${libc})`}`;
}

/** The platforms a prebuilds/ folder holds addons for: ['linux-x64 (glibc)', 'linux-x64 (musl)']. */
export function prebuiltPlatforms(folder: string): string[] {
  const platforms: string[] = [];
  try {
    for (const platform of readdirSync(folder).sort()) {
      for (const file of safeList(path.join(folder, platform)).sort()) {
        const tags = /^[^.]+\.(.*)\.node$/.exec(file)?.[1]?.split('.') ?? [];
        const libc = tags.find((tag) => tag === 'glibc' || tag === 'musl');
        if (file.endsWith('.node')) platforms.push(`${platform}${libc === undefined ? '' : ` (${libc})`}`);
      }
    }
  } catch {
    // no folder: no platforms
  }
  return platforms;
}

function safeList(folder: string): string[] {
  try {
    return readdirSync(folder);
  } catch {
    return [];
  }
}

function tryLoad(file: string, origin: NativeAddonOrigin): NativeAddonLoad {
  const wrong = wrongPlatform(file);
  if (wrong !== undefined) return { addon: undefined, reason: `native kernel ${file} is for another platform: ${wrong}` };
  try {
    const loaded: unknown = createRequire(import.meta.url)(file);
    if (!isNativeAddon(loaded)) return { addon: undefined, reason: `${file} is not the hpair native kernel` };
    return { addon: loaded, file, origin };
  } catch (error) {
    const message = firstLine(error instanceof Error ? error.message : String(error));
    return { addon: undefined, reason: `native kernel ${file} failed to load: ${message}${libcHint(message)}` };
  }
}

/** ELF e_machine values of the CPUs Node runs on, for a file built for another one. */
const ELF_MACHINES: Record<number, string> = { 3: 'ia32', 40: 'arm', 62: 'x64', 183: 'arm64', 243: 'riscv64', 21: 'ppc64', 22: 's390x' };

/**
 * Why the file cannot be this platform's addon, from its first bytes, or undefined when it might be (then
 * loading it tells). dlopen's own message for a foreign binary ("invalid ELF header", "wrong ELF class")
 * does not say which platform the file is for.
 */
function wrongPlatform(file: string): string | undefined {
  let head: Buffer;
  try {
    head = readHead(file, 20);
  } catch {
    return undefined;
  }
  const here = describePlatform();
  if (head.length >= 20 && head.readUInt32BE(0) === 0x7f454c46) {
    if (process.platform !== 'linux') return `it is a Linux (ELF) file, this is ${here}`;
    const machine = head[5] === 1 ? head.readUInt16LE(18) : head.readUInt16BE(18);
    const arch = ELF_MACHINES[machine] ?? `ELF machine ${machine}`;
    return arch === process.arch ? undefined : `it is for linux-${arch}, this is ${here}`;
  }
  if (head.length >= 4 && [0xcffaedfe, 0xcefaedfe, 0xcafebabe].includes(head.readUInt32BE(0))) {
    return process.platform === 'darwin' ? undefined : `it is a macOS (Mach-O) file, this is ${here}`;
  }
  if (head.length >= 2 && head.toString('latin1', 0, 2) === 'MZ') return process.platform === 'win32' ? undefined : `it is a Windows file, this is ${here}`;
  return undefined;
}

/** A C-library mismatch that dlopen reports only by its symptom. */
function libcHint(message: string): string {
  const libc = nativeLibc();
  if (libc === 'glibc' && /libc\.so\b(?!\.6)|libc\.musl|ld-musl/.test(message)) return ' (it was built for musl libc; this Node runs on glibc)';
  if (libc === 'musl' && /GLIBC|libc\.so\.6|ld-linux/.test(message)) return ' (it was built for glibc; this Node runs on musl libc)';
  return '';
}

/**
 * The native addon file this process loads (prebuilt, built from source, or named by the `nativeAddon` option
 * or HPAIR_NATIVE_ADDON), or undefined when none loads here (`pool.whyNotNative` says why). A bundling
 * script copies it beside the bundle (docs/install.md, "Bundling").
 */
export function nativeAddonFile(): string | undefined {
  return loadNativeAddon().file;
}

/** What kernel/native/install.mjs decided at install time (build/status.json), when it ran in this package. */
export function nativeInstallStatus(): { readonly built?: boolean; readonly prebuilt?: string; readonly reason?: string } | undefined {
  const root = packageRoot();
  if (root === undefined) return undefined;
  try {
    return JSON.parse(readFileSync(path.join(root, 'kernel/native/build/status.json'), 'utf8')) as { built?: boolean; prebuilt?: string; reason?: string };
  } catch {
    return undefined;
  }
}

/** The package's prebuilds/ folder, or undefined inside a bundle. */
export function prebuildsFolder(): string | undefined {
  const root = packageRoot();
  return root === undefined ? undefined : path.join(root, 'prebuilds');
}
