// `hpair doctor` and doctor(): what runs here and why, the first thing to look at when hpair is slower than
// expected. Everything it reports is read from the running process (no network, no files written).
import { readFileSync } from 'node:fs';
import { availableParallelism, cpus } from 'node:os';
import { kernelStatus } from '../kernel/kernel-status.js';
import type { KernelVariant } from '../kernel/kernel-names.js';
import { resolveKernel } from '../kernel/variants.js';
import {
  describePlatform,
  loadNativeAddon,
  nativeInstallStatus,
  prebuildsFolder,
  prebuiltAddonName,
  prebuiltPlatforms,
  type NativeAddon,
  type NativeAddonOrigin,
} from '../kernel/native/addon.js';
import { usage } from './errors.js';
import { parseCommand, type CommandSpec } from './help.js';
import { packageVersion } from './version.js';

/** What `hpair doctor` prints, as data. */
export interface DoctorReport {
  /** hpair's version, or undefined inside a bundle that has no package.json of hpair's. */
  readonly hpair: string | undefined;
  readonly node: {
    readonly version: string;
    /** The highest Node-API version this Node offers (the addon needs 8). */
    readonly napi: string | undefined;
    /** e.g. 'linux-x64 (glibc)': what a prebuilt addon must be built for. */
    readonly platform: string;
  };
  readonly cpu: {
    readonly model: string;
    readonly logicalCpus: number;
    /**
     * Instruction sets the kernels use, as the OS lists them (Linux /proc/cpuinfo); undefined where it does not.
     * Whether a native path really runs (the OS must also save the registers) is in `kernels`.
     */
    readonly features: { readonly avx2: boolean; readonly fma: boolean; readonly avx512f: boolean } | undefined;
    /** Bytes per core (L3: this core's share), as the native addon measures them; undefined without the addon. */
    readonly caches: { readonly l1d: number; readonly l2: number; readonly l3: number } | undefined;
  };
  readonly addon: {
    readonly loaded: boolean;
    /** The file loaded, and where it came from: 'prebuilt', 'built' (from source at install), 'option' or 'env' (HPAIR_NATIVE_ADDON), 'bundle'. */
    readonly file?: string;
    readonly origin?: NativeAddonOrigin;
    /** The compiler that built it. */
    readonly compiler?: string;
    /** Why none loads, in one line. */
    readonly reason?: string;
    /** The prebuilt file this platform would use, and the platforms the package has prebuilt addons for. */
    readonly prebuiltName: string;
    readonly prebuiltPlatforms: readonly string[];
    /** What the install script decided (built from source, chose a prebuilt addon, or why neither). */
    readonly install: { readonly built?: boolean; readonly prebuilt?: string; readonly reason?: string } | undefined;
  };
  /** Every H kernel, fastest first, whether it runs here and, when not, why. */
  readonly kernels: ReadonlyArray<{ readonly kernel: KernelVariant; readonly supported: boolean; readonly reason?: string }>;
  /** What `kernel: 'auto'` picks, and why it is not native when it is not. */
  readonly auto: { readonly kernel: KernelVariant; readonly whyNotNative?: string };
  /**
   * One core's fused multiply-add peak on the fastest native path here (GFLOP/s), measured by the addon's probe
   * (`fmaPeak`); `measured: false` with the reason when no addon loads or no native path runs.
   */
  readonly fmaPeak: { readonly measured: true; readonly gflops: number; readonly path: string } | { readonly measured: false; readonly reason: string };
}

/** Checks this machine and this installation of hpair: kernels, addon, CPU (see DoctorReport). */
export async function doctor(): Promise<DoctorReport> {
  const load = loadNativeAddon();
  const info = load.addon?.info();
  const folder = prebuildsFolder();
  const auto = resolveKernel('auto');
  const cpuList = cpus();
  return {
    hpair: version(),
    node: { version: process.version, napi: process.versions.napi, platform: describePlatform() },
    cpu: {
      model: cpuList[0]?.model.trim() ?? 'unknown',
      logicalCpus: availableParallelism(),
      features: cpuFeatures(),
      caches: info?.cache === undefined ? undefined : { ...info.cache },
    },
    addon: {
      loaded: load.addon !== undefined,
      ...(load.addon !== undefined ? { file: load.file, origin: load.origin, compiler: info?.compiler } : { reason: load.reason }),
      prebuiltName: prebuiltAddonName(),
      prebuiltPlatforms: folder === undefined ? [] : prebuiltPlatforms(folder),
      install: nativeInstallStatus(),
    },
    kernels: kernelStatus(),
    auto: { kernel: auto.variant.name, ...(auto.whyNotNative === undefined ? {} : { whyNotNative: auto.whyNotNative }) },
    fmaPeak: await fmaPeak(load.addon),
  };
}

function version(): string | undefined {
  try {
    return packageVersion();
  } catch {
    return undefined;
  }
}

function cpuFeatures(): DoctorReport['cpu']['features'] {
  if (process.platform !== 'linux') return undefined;
  try {
    const flags = new Set(/^flags\s*:\s*(.*)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1]?.split(/\s+/) ?? []);
    if (flags.size === 0) return undefined;
    return { avx2: flags.has('avx2'), fma: flags.has('fma'), avx512f: flags.has('avx512f') };
  } catch {
    return undefined;
  }
}

/** How long doctor lets the probe run on each path: long enough to leave the CPU's lower clock states, short
 * enough that `hpair doctor` answers at once. */
const PEAK_SECONDS = 0.2;

/**
 * One core's FMA peak on the fastest native path this CPU runs, from the addon's probe (src/peak.c): the
 * ceiling the bench sets each kernel's rate against (`npm run bench`, the peak table, measures it on every
 * worker too).
 */
async function fmaPeak(addon: NativeAddon | undefined): Promise<DoctorReport['fmaPeak']> {
  if (addon === undefined) return { measured: false, reason: 'no native addon loads here' };
  if (typeof (addon as { fmaPeak?: unknown }).fmaPeak !== 'function') return { measured: false, reason: 'this native addon has no FMA peak probe (fmaPeak): rebuild it' };
  const paths = addon.info().paths.filter((path) => path.supported);
  if (paths.length === 0) return { measured: false, reason: 'no native path runs on this CPU' };
  let best: { path: string; gflops: number } | undefined;
  for (const path of paths) {
    try {
      const gflops = addon.fmaPeak(path.name, PEAK_SECONDS) / 1e9;
      if (Number.isFinite(gflops) && gflops > 0 && (best === undefined || gflops > best.gflops)) best = { path: path.name, gflops };
    } catch (error) {
      return { measured: false, reason: `fmaPeak(${path.name}) failed: ${error instanceof Error ? error.message : String(error)}` };
    }
  }
  if (best === undefined) return { measured: false, reason: 'fmaPeak() gave no positive rate' };
  return { measured: true, gflops: best.gflops, path: best.path };
}

const bytes = (n: number): string => (n >= 2 ** 20 ? `${(n / 2 ** 20).toFixed(n % 2 ** 20 === 0 ? 0 : 1)} MiB` : `${Math.round(n / 1024)} KiB`);

/** The report as `hpair doctor` prints it. */
export function formatDoctor(report: DoctorReport): string {
  const { node, cpu, addon, kernels, auto } = report;
  const lines = [
    `hpair ${report.hpair ?? '(version unknown: bundled)'} on Node ${node.version} (Node-API ${node.napi ?? '?'}), ${node.platform}`,
    `cpu       ${cpu.model}, ${cpu.logicalCpus} logical CPUs`,
    `features  ${cpu.features === undefined ? 'not listed by this OS' : Object.entries(cpu.features).map(([name, has]) => `${name} ${has ? 'yes' : 'no'}`).join(', ')}`,
    `caches    ${cpu.caches === undefined ? 'not measured (no native addon)' : `L1d ${bytes(cpu.caches.l1d)}, L2 ${bytes(cpu.caches.l2)}, L3 ${bytes(cpu.caches.l3)} per core`}`,
    addon.loaded
      ? `addon     ${addon.origin === 'built' ? 'built from source' : addon.origin === 'env' ? 'from HPAIR_NATIVE_ADDON' : addon.origin === 'option' ? 'from the nativeAddon option' : addon.origin === 'bundle' ? 'beside the bundle' : 'prebuilt'}: ${addon.file} (${addon.compiler})`
      : `addon     not loaded: ${addon.reason}`,
    `prebuilt  this platform uses prebuilds/${addon.prebuiltName}; the package has ${addon.prebuiltPlatforms.length === 0 ? 'none' : addon.prebuiltPlatforms.join(', ')}`,
    `install   ${addon.install === undefined ? 'install script has not run here' : addon.install.built ? 'built from source' : addon.install.prebuilt !== undefined ? `chose ${addon.install.prebuilt}` : `nothing built: ${addon.install.reason}`}`,
    'kernels',
    ...kernels.map((k) => `  ${k.supported ? 'yes' : 'no '}  ${k.supported ? k.kernel : `${k.kernel.padEnd(18)}${k.reason}`}`),
    `auto      ${auto.kernel}${auto.whyNotNative === undefined ? '' : ` (not native: ${auto.whyNotNative})`}`,
    `fma peak  ${report.fmaPeak.measured ? `${report.fmaPeak.gflops.toFixed(1)} GFLOP/s on one core (${report.fmaPeak.path})` : `not measured: ${report.fmaPeak.reason}`}`,
  ];
  return `${lines.join('\n')}\n`;
}

const DOCTOR: CommandSpec = {
  command: 'doctor',
  help: `usage: hpair doctor [--json]
Says what runs here and why not: Node and platform, CPU features and caches, where the native addon was
loaded from (prebuilt, built from source, HPAIR_NATIVE_ADDON) or why it was not, every kernel, and one
core's FMA peak where the addon can measure it.
  --json            the same as one JSON object (doctor() in the library returns it)
  -h, --help        this help`,
  options: { json: { type: 'boolean' } },
};

/** `hpair doctor [--json]`. */
export async function doctorCommand(args: readonly string[]): Promise<void> {
  const values = parseCommand(args, DOCTOR, usage);
  if (values === undefined) return;
  const report = await doctor();
  process.stdout.write(values.json === true ? `${JSON.stringify(report)}\n` : formatDoctor(report));
}
