// Facts about the machine and software a benchmark ran on, for its JSON record.
import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { availableParallelism, cpus, loadavg, totalmem } from 'node:os';
import { loadNativeAddon } from '../kernel/native/addon.js';

export interface CacheInfo {
  level: number;
  type: string;
  size: string;
  sharedWithCpus: string;
}
export interface HostFacts {
  cpuModel: string;
  cpuFamily?: number;
  cpuModelNumber?: number;
  cpuStepping?: number;
  vendor?: string;
  /** The CPU flags the kernels care about, each true or false. */
  flags: Record<string, boolean>;
  cores: number;
  logicalCpus: number;
  caches: CacheInfo[];
  memoryGB: number;
  loadAverage: number[];
  node: string;
  v8: string;
  execArgv: string[];
  platform: string;
  commit?: string;
  dirty?: boolean;
  date: string;
}

const KERNEL_FLAGS = ['sse4_2', 'avx', 'avx2', 'fma', 'avx512f', 'avx512dq', 'avx512vl', 'avx512bw'];

function cpuinfo(): Record<string, string> {
  try {
    const first = readFileSync('/proc/cpuinfo', 'utf8').split('\n\n')[0];
    return Object.fromEntries(
      first
        .split('\n')
        .map((line) => line.split(':'))
        .filter((parts) => parts.length >= 2)
        .map(([key, ...value]) => [key.trim(), value.join(':').trim()]),
    );
  } catch {
    return {};
  }
}

/**
 * The caches from sysfs, or, where a VM hides them (no /sys/devices/system/cpu/cpu0/cache), the L1d and L2 per
 * core that the native kernel read from CPUID (shared with 'cpuid'): the figures its blocking uses.
 */
function caches(): CacheInfo[] {
  const fromSysfs = sysfsCaches();
  if (fromSysfs.length > 0) return fromSysfs;
  const cache = loadNativeAddon().addon?.info().cache;
  if (cache === undefined) return [];
  const size = (bytes: number): string => `${Math.round(bytes / 1024)}K`;
  return [
    { level: 1, type: 'Data', size: size(cache.l1d), sharedWithCpus: 'cpuid' },
    { level: 2, type: 'Unified', size: size(cache.l2), sharedWithCpus: 'cpuid' },
  ];
}

function sysfsCaches(): CacheInfo[] {
  const base = '/sys/devices/system/cpu/cpu0/cache';
  try {
    return readdirSync(base)
      .filter((name) => name.startsWith('index'))
      .sort()
      .map((name) => {
        const read = (file: string): string => readFileSync(`${base}/${name}/${file}`, 'utf8').trim();
        return { level: Number(read('level')), type: read('type'), size: read('size'), sharedWithCpus: read('shared_cpu_list') };
      });
  } catch {
    return [];
  }
}

function git(args: string[]): string | undefined {
  try {
    return execFileSync('git', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return undefined;
  }
}

export function hostFacts(): HostFacts {
  const info = cpuinfo();
  const flagSet = new Set((info.flags ?? '').split(/\s+/));
  const number = (key: string): number | undefined => (info[key] === undefined ? undefined : Number(info[key]));
  const commit = git(['rev-parse', 'HEAD']);
  const status = commit === undefined ? undefined : git(['status', '--porcelain', '--untracked-files=no']);
  return {
    cpuModel: info['model name'] ?? cpus()[0]?.model ?? 'unknown',
    cpuFamily: number('cpu family'),
    cpuModelNumber: number('model'),
    cpuStepping: number('stepping'),
    vendor: info.vendor_id,
    flags: Object.fromEntries(KERNEL_FLAGS.map((flag) => [flag, flagSet.has(flag)])),
    cores: availableParallelism(),
    logicalCpus: cpus().length,
    caches: caches(),
    memoryGB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    loadAverage: loadavg(),
    node: process.version,
    v8: process.versions.v8,
    execArgv: process.execArgv,
    platform: `${process.platform} ${process.arch}`,
    ...(commit === undefined ? {} : { commit, dirty: status !== undefined && status !== '' }),
    date: new Date().toISOString(),
  };
}

/** One line naming the CPU: model, family/model, cores, L1d and L2 per core, the kernel-relevant flags. */
export function hostLine(host: HostFacts): string {
  const cache = (level: number, type: string): string | undefined => host.caches.find((c) => c.level === level && c.type === type)?.size;
  const flags = Object.entries(host.flags)
    .filter(([name, has]) => has && ['avx2', 'fma', 'avx512f'].includes(name))
    .map(([name]) => name.toUpperCase());
  const family = host.cpuFamily === undefined ? '' : ` (family ${host.cpuFamily} model ${host.cpuModelNumber})`;
  return (
    `${host.cpuModel}${family}, ${host.cores} cores, L1d ${cache(1, 'Data') ?? '?'} / L2 ${cache(2, 'Unified') ?? '?'} per core, ` +
    `L3 ${cache(3, 'Unified') ?? '?'}, ${flags.length > 0 ? flags.join('+') : 'no AVX2'}${host.flags.avx512f ? '' : ', no AVX-512'}; Node ${host.node.slice(1)}`
  );
}

/** CPU time (s) the whole machine spent busy, and that the given processes spent, from /proc (Linux only). */
export interface CpuSnapshot {
  at: number;
  busy: number;
  ours: number;
}

const TICK = 100; // USER_HZ on Linux

function procTicks(pid: number | 'self'): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // utime, stime, cutime, cstime are fields 14–17 of the line, 12–15 after "pid (comm) ".
    return Number(fields[11]) + Number(fields[12]) + Number(fields[13]) + Number(fields[14]);
  } catch {
    return 0;
  }
}

export function cpuSnapshot(pids: readonly number[]): CpuSnapshot | undefined {
  try {
    const [, ...values] = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).map(Number);
    // user nice system idle iowait irq softirq steal: busy = all but idle and iowait.
    const busy = values.slice(0, 8).reduce((sum, v) => sum + v, 0) - values[3] - values[4];
    const ours = procTicks('self') + pids.reduce((sum, pid) => sum + procTicks(pid), 0);
    return { at: performance.now(), busy: busy / TICK, ours: ours / TICK };
  } catch {
    return undefined;
  }
}

/**
 * How much of the machine's cores other processes used between two snapshots (0 = none, 1 = all of them):
 * the measure of how loaded a shared host was while a group was measured.
 */
export function othersShare(start: CpuSnapshot | undefined, end: CpuSnapshot | undefined): number | undefined {
  if (start === undefined || end === undefined) return undefined;
  const seconds = (end.at - start.at) / 1000;
  if (seconds <= 0) return undefined;
  return Math.max(0, end.busy - start.busy - (end.ours - start.ours)) / (seconds * availableParallelism());
}
