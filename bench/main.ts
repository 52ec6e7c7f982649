// hpair's benchmark: every H kernel variant against numpy's (A/d) @ A.conj().T and scipy's zherk, interleaved
// in rounds within one run, over sizes and worker counts; peak RSS of the CLI against numpy's line; the warm
// small-job round trip; abort latency and event-loop delay during a large job; bit-identity across worker
// counts. Progress on stderr, the table on stdout, every figure and the host's facts in a JSON file.
//
//   npm run bench                 quick: N = M ∈ {512, 2048}, workers 1 and all
//   npm run bench -- --full       N = M ∈ {256, 512, 1024, 2048, 4096}, workers 1…all
//   npm run bench -- --help       every option with its default
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { Bench } from 'tinybench';
import {
  createComplexMatrix,
  createPool,
  demoProblem,
  encodeComplexMatrixNpy,
  encodeFloat64VectorNpy,
  hermitianFlops,
  hermitianReference,
  kernelStatus,
  type ComplexMatrix,
  type KernelVariant,
  type Pool,
  type PoolOptions,
  type Schedule,
} from 'hpair';
import { HELP, JS_MAX_SIZE, parseOptions, unsupportedKernels, UsageError, type BenchOptions } from './options.js';
import { cpuSnapshot, hostFacts, hostLine, othersShare } from './host.js';
import { cliPeakRss, pythonPeakRss, type PeakRss } from './memory.js';
import { PythonPeer, pythonHasNumpy, type PeerInfo, type PeerKind } from './python-peer.js';
import { blasEnvironment, chooseBlasCore } from './blas-core.js';
import { interleaved, type InterleavedEntry } from './interleave.js';
import { pairedScaling, type ScalingRow } from './scaling.js';
import { writeMarkdownReport } from './report.js';
import { markdownTable, ms, pairedRatio, progress, ratio, summarize, textTable, type Summary } from './stats.js';

let options: BenchOptions | undefined;
try {
  options = parseOptions(process.argv.slice(2));
} catch (error) {
  if (!(error instanceof UsageError)) throw error;
  process.stderr.write(`bench: ${error.message} (see --help)\n`);
  process.exit(2);
}
if (options === undefined) {
  process.stdout.write(HELP);
  process.exit(0);
}
const opts: BenchOptions = options;

// On Node < 22 relaxed SIMD sits behind a V8 flag: re-run this script under it (once) so the relaxed kernel
// is measured beside the others. The flag changes nothing for the other kernels.
const RELAXED_FLAG = '--experimental-wasm-relaxed-simd';
{
  const relaxed = kernelStatus().find((entry) => entry.kernel === 'wasm-relaxed-simd');
  const wanted = opts.kernels === undefined || opts.kernels.includes('wasm-relaxed-simd');
  if (
    opts.relaxedFlag &&
    wanted &&
    relaxed !== undefined &&
    !relaxed.supported &&
    (relaxed.reason ?? '').includes(RELAXED_FLAG) &&
    !process.execArgv.includes(RELAXED_FLAG) &&
    spawnSync(process.execPath, [RELAXED_FLAG, '-e', ''], { stdio: 'ignore' }).status === 0
  ) {
    progress(`re-running under node ${RELAXED_FLAG} so that wasm-relaxed-simd is measured too (--no-relaxed-flag to skip)`);
    const child = spawnSync(process.execPath, [RELAXED_FLAG, ...process.execArgv, fileURLToPath(import.meta.url), ...process.argv.slice(2)], { stdio: 'inherit' });
    process.exit(child.status ?? 1);
  }
}

{
  const refused = opts.kernels === undefined ? [] : unsupportedKernels(opts.kernels);
  if (refused.length > 0) {
    process.stderr.write(`bench: --kernels asks for what cannot run here: ${refused.join('; ')}\n`);
    process.exit(2);
  }
}

// ---------------------------------------------------------------------------------------------------------
// Setup: host, kernels, Python peers.

const host = hostFacts();
const status = kernelStatus();
const supported = status.filter((entry) => entry.supported).map((entry) => entry.kernel);
const kernels: KernelVariant[] = opts.kernels ?? supported;
const kernelsAt = (size: number): KernelVariant[] => (opts.kernels !== undefined ? kernels : kernels.filter((k) => k !== 'js' || size <= JS_MAX_SIZE));

progress(`host: ${hostLine(host)}`);
for (const entry of status) progress(`kernel ${entry.kernel}: ${entry.supported ? 'runs here' : `not here: ${entry.reason ?? '?'}`}`);
const auto: { kernel: string; whyNotNative?: string } = await (async () => {
  const probe = createPool({ workers: 1 });
  const picked = { kernel: probe.kernel, ...(probe.whyNotNative === undefined ? {} : { whyNotNative: probe.whyNotNative }) };
  await probe.close();
  return picked;
})();
progress(`kernel 'auto' picks ${auto.kernel}${auto.whyNotNative === undefined ? '' : ` (not native: ${auto.whyNotNative})`}`);

const usePython = opts.python && pythonHasNumpy();
if (opts.python && !usePython) progress('python3 with numpy not found: no numpy or zherk figures (pass --no-numpy to silence this)');
const blasCore = usePython ? chooseBlasCore(opts.blasCore, host.flags) : undefined;
if (blasCore !== undefined) {
  const timed = blasCore.probes.map((p) => `${p.candidate}${p.core !== undefined && p.core !== p.candidate ? ` (${p.core})` : ''} ${p.ms?.toFixed(1) ?? p.error ?? '?'}${p.ms === undefined ? '' : ' ms'}`);
  progress(`peers' OpenBLAS core: ${blasCore.coretype ?? 'its own detection'}, ${blasCore.how}${timed.length > 0 ? `: ${timed.join(', ')}` : ''}`);
}
const peerEnv = blasEnvironment(blasCore);
const peer = usePython ? new PythonPeer(peerEnv) : undefined;
const peerPids = (): number[] => (peer?.pid === undefined ? [] : [peer.pid]);
let peerInfo: PeerInfo | undefined;
if (peer !== undefined) {
  peerInfo = await peer.info();
  const cores = peerInfo.openblas.map((lib) => `${lib.coretype ?? '?'} (${lib.config ?? lib.file})`).join('; ');
  progress(`python ${peerInfo.python}, numpy ${peerInfo.numpy}, scipy ${peerInfo.scipy ?? 'not installed'}; BLAS: ${cores}`);
}

// ---------------------------------------------------------------------------------------------------------
// Interleaved measurement of one size × workers group.

const PEER_TITLES: Record<PeerKind, string> = {
  numpy: 'numpy (A/d) @ A.conj().T',
  zherk: 'scipy zherk (lower)',
  'zherk-into': 'scipy zherk (lower) into c',
  dgemm: 'OpenBLAS dgemm Re A·Im Aᵀ (real)',
};

/**
 * Real flops a row executes, for the real-rate comparison with dgemm: hpair's 3M kernels (native, WebAssembly)
 * do three real products on the lower triangle, 3·2·(N−1)N/2·(M−1) = ¾ of the useful count; the `js` kernel
 * multiplies complex numbers directly, four real products, the useful count itself; dgemm's one product is
 * 2·(N−1)²·(M−1).
 */
const REAL_FLOPS_FORMULA = 'hpair: ¾·8·(N−1)·N/2·(M−1) (3M), or 8·(N−1)·N/2·(M−1) for the js kernel; dgemm: 2·(N−1)²·(M−1)';
function realFlops(kind: 'hpair' | PeerKind, kernelRan: string, n: number, m: number): number | undefined {
  if (kind === 'hpair') return (kernelRan === 'js' ? 1 : 0.75) * hermitianFlops(n, m);
  if (kind === 'dgemm') return 2 * (n - 1) ** 2 * (m - 1);
  return undefined;
}

interface Row {
  what: string;
  kind: 'hpair' | PeerKind | 'reference';
  /** The kernel that ran (for hpair, each sample's h.kernel; a fallback would show here). */
  kernel: string;
  n: number;
  m: number;
  workers: number;
  stats: Summary;
  /** Useful GFLOP/s (the H formula); for the dgemm row, its own real rate. */
  gflops: number;
  /** Real GFLOP/s executed (hpair and dgemm rows; see realFlops). */
  realGflops?: number;
  speedup?: number;
  vsNumpy?: number;
  /** Against zherk used the same way: into a reused C for a row that writes into a reused H, else a new C. */
  vsZherk?: number;
  /** Writes into an output it reuses (hpair's `out`, zherk's `c`), rather than a new one per sample. */
  reusesOutput: boolean;
  /** max |H − numpy's H| / max |numpy's H| (and over the lower triangle against zherk). */
  relErrVsNumpy?: number;
  relErrVsZherk?: number;
  /** Median over rounds of the same round's ratio (see pairedRatio). */
  pairedVsNumpy?: number;
  pairedVsZherk?: number;
  /** Share of the machine's cores that other processes used while this group was measured. */
  othersCpu?: number;
  samplesMs: number[];
  roundMediansMs?: number[];
}
const rows: Row[] = [];
const scaling: ScalingRow[] = [];
let sink = 0; // every output is read, so no run can be optimised away

interface Entry extends InterleavedEntry {
  kind: 'hpair' | PeerKind;
  kernel: string;
}

function checksumOf(h: ComplexMatrix): number {
  const d = h.data;
  const n = h.rows;
  return d[0] + d[2 * (n * n - 1)] + d[2 * ((n >> 1) * n + ((n / 3) | 0))] + d[2 * ((n >> 1) * n + ((n / 3) | 0)) + 1] + d[2 * (n - 1) * n + 1];
}

/** FNV-1a over H's bytes: equal hashes across worker counts mean bit-identical results. */
function hashOf(h: ComplexMatrix): string {
  const words = new Uint32Array(h.data.buffer, h.data.byteOffset, h.data.length * 2);
  let a = 0x811c9dc5;
  let b = 0x01000193;
  for (let i = 0; i < words.length; i++) {
    a = Math.imul(a ^ words[i], 0x01000193);
    b = Math.imul(b ^ (words[i] >>> 7), 0x5bd1e995) ^ (b >>> 13);
  }
  return `${(a >>> 0).toString(16).padStart(8, '0')}${(b >>> 0).toString(16).padStart(8, '0')}`;
}

const scratch = mkdtempSync(join(tmpdir(), 'hpair-bench-'));
const hashes: Record<string, Record<string, string>> = {};
const bitIdentity: { n: number; m: number; kernel: string; workers: number[]; schedules?: Schedule[]; identical: boolean }[] = [];
const verification: { n: number; kernel: string; relErrVsNumpy?: number; relErrVsZherk?: number }[] = [];

function writeInputs(dir: string, expp: ComplexMatrix, distance: Float64Array): void {
  writeFileSync(join(dir, 'expp.npy'), encodeComplexMatrixNpy(expp));
  writeFileSync(join(dir, 'distance.npy'), encodeFloat64VectorNpy(distance));
}

try {
  for (const size of opts.sizes) {
    const { expp, distance } = demoProblem(size, size);
    const flops = hermitianFlops(size, size);
    const sizeKernels = kernelsAt(size);
    // One entry per kernel (and schedule, when --schedules names more than one), each writing into its own
    // preallocated H (`out`); and the first kernel once more with a new H per job, as a caller that keeps no
    // buffer runs it (numpy's line allocates its result too): first-touch page faults and all.
    const variants: { key: string; kernel: KernelVariant; schedule: Schedule; freshH: boolean }[] = sizeKernels.flatMap((kernel) =>
      opts.schedules.map((schedule) => ({ key: opts.schedules.length > 1 ? `${kernel} ${schedule}` : kernel, kernel, schedule, freshH: false })),
    );
    if (opts.freshH && sizeKernels.length > 0) variants.push({ key: `${sizeKernels[0]}, new H`, kernel: sizeKernels[0], schedule: opts.schedules[0], freshH: true });
    const outs = new Map(variants.filter((v) => !v.freshH).map(({ key }) => [key, createComplexMatrix(size - 1, size - 1)]));
    const freshKeys = new Set(variants.filter((v) => v.freshH).map(({ key }) => key));
    let zherk = false;
    if (peer !== undefined) {
      writeInputs(scratch, expp, distance);
      const loaded = await peer.load(scratch);
      zherk = loaded.zherk;
      if (!zherk) progress(`N = M = ${size}: no zherk (${loaded.why ?? '?'})`);
    }
    if (size <= 256) {
      const samples: number[] = [];
      const bench = new Bench({ time: 1000, iterations: 5, warmupIterations: 1, retainSamples: true });
      bench.add('reference', () => {
        sink += hermitianReference(expp, distance).data[0];
      });
      await bench.run();
      const result = bench.tasks[0].result;
      if (result.state === 'completed' && result.latency.samples !== undefined) samples.push(...result.latency.samples);
      const stats = summarize(samples);
      rows.push({ what: 'reference port (serial)', kind: 'reference', reusesOutput: false, kernel: 'js', n: size, m: size, workers: 1, stats, gflops: flops / stats.median / 1e6, samplesMs: samples });
      progress(`N = M = ${size}: reference port ${ms(stats.median)} ms`);
    }
    for (const workers of opts.workers) {
      const label = `N = M = ${size}, ${workers} worker${workers === 1 ? '' : 's'}`;
      const pools = new Map<string, Pool>();
      for (const { key, kernel, schedule } of variants) {
        const pool = createPool({ workers, kernel, schedule, inlineFlops: 0 });
        await pool.ready();
        pools.set(key, pool);
      }
      const ran = new Map<string, Set<string>>();
      const entries: Entry[] = variants.map(({ key, kernel, freshH }) => {
        const pool = pools.get(key) as Pool;
        const out = outs.get(key) as ComplexMatrix;
        const seen = new Set<string>();
        ran.set(key, seen);
        return {
          what: key,
          kind: 'hpair',
          kernel,
          side: 'hpair',
          samples: [],
          fn: async () => {
            const h = await pool.hermitian(expp, distance, freshH ? {} : { out });
            if (freshH) outs.set(key, h); // the latest one, for the bit-identity hash
            seen.add(h.kernel);
            sink += checksumOf(h);
            return undefined;
          },
        };
      });
      if (peer !== undefined) {
        const threads = await peer.threads(workers);
        if (threads.threads.some((t) => t !== workers)) progress(`${label}: BLAS threads are ${threads.threads.join(', ')} (asked ${workers}, via ${threads.how})`);
        const peerEntry = (kind: PeerKind, what: string): Entry => ({
          what,
          kind,
          kernel: { numpy: 'BLAS zgemm', zherk: 'BLAS zherk', 'zherk-into': 'BLAS zherk', dgemm: 'BLAS dgemm' }[kind],
          side: 'python',
          samples: [],
          fn: async () => {
            const sample = await peer.run(kind);
            sink += sample.checksum;
            return { overriddenDuration: sample.ms };
          },
        });
        entries.push(peerEntry('numpy', 'numpy'), peerEntry('dgemm', 'dgemm'));
        if (zherk) entries.push(peerEntry('zherk', 'zherk'), peerEntry('zherk-into', 'zherk-into'));
      }
      const minSamples = opts.minSamples ?? (size >= 4096 && workers === 1 ? 3 : 5);
      const before = cpuSnapshot(peerPids());
      await interleaved(label, entries, { minSamples, timeSeconds: opts.timeSeconds, settleMs: opts.settleMs });
      const othersCpu = othersShare(before, cpuSnapshot(peerPids()));

      const groupRows: Row[] = entries.map((entry) => {
        const stats = summarize(entry.samples);
        const kernelRan = entry.kind === 'hpair' ? [...(ran.get(entry.what) ?? [])].join('+') : entry.kernel;
        const real = realFlops(entry.kind, kernelRan, size, size);
        return {
          what: entry.kind === 'hpair' ? `hpair ${entry.what}` : PEER_TITLES[entry.kind],
          kind: entry.kind,
          reusesOutput: entry.kind === 'zherk-into' || (entry.kind === 'hpair' && !freshKeys.has(entry.what)),
          kernel: kernelRan,
          n: size,
          m: size,
          workers,
          stats,
          gflops: (entry.kind === 'dgemm' && real !== undefined ? real : flops) / stats.median / 1e6,
          realGflops: real === undefined ? undefined : real / stats.median / 1e6,
          othersCpu,
          samplesMs: entry.samples,
          roundMediansMs: entry.rounds,
        };
      });
      if (othersCpu !== undefined) progress(`${label}: other processes used ${(othersCpu * 100).toFixed(0)} % of the ${host.cores} cores meanwhile`);
      const numpyRow = groupRows.find((row) => row.kind === 'numpy');
      // Like for like: a row into a reused output against zherk into a reused C, a new output against a new C.
      const zherkFor = (row: Row): Row | undefined => groupRows.find((peer) => peer.kind === (row.reusesOutput ? 'zherk-into' : 'zherk'));
      for (const row of groupRows) {
        // dgemm is a rate reference, not a peer: it computes no H, so it is set against no peer.
        const [numpyPeer, zherkRow] = row.kind === 'dgemm' ? [undefined, undefined] : [numpyRow, zherkFor(row)];
        if (numpyPeer !== undefined) row.vsNumpy = numpyPeer.stats.median / row.stats.median;
        if (zherkRow !== undefined) row.vsZherk = zherkRow.stats.median / row.stats.median;
        row.pairedVsNumpy = pairedRatio(row.roundMediansMs, numpyPeer?.roundMediansMs);
        row.pairedVsZherk = pairedRatio(row.roundMediansMs, zherkRow?.roundMediansMs);
        const single = rows.find((other) => other.n === size && other.workers === 1 && other.what === row.what);
        if (single !== undefined) row.speedup = single.stats.median / row.stats.median;
        else if (workers === 1) row.speedup = 1;
        rows.push(row);
        progress(
          `${label}: ${row.what.padEnd(26)} median ${ms(row.stats.median).padStart(8)} ms (p25–p75 ${ms(row.stats.p25)}–${ms(row.stats.p75)}, ${row.stats.samples} samples) ` +
            `${row.gflops.toFixed(1)} GFLOP/s${row.vsNumpy === undefined ? '' : `, ${ratio(row.vsNumpy)} numpy`}${row.vsZherk === undefined ? '' : `, ${ratio(row.vsZherk)} zherk`}`,
        );
      }
      for (const { key, kernel } of variants) {
        const kernelsRan = ran.get(key) ?? new Set<string>();
        if (kernelsRan.size !== 1 || !kernelsRan.has(kernel)) progress(`${label}: ${kernel} was asked for, but ${[...kernelsRan].join(', ')} ran`);
      }

      // Bit-identity across worker counts (hash of the whole H) and, once per size, the error against numpy.
      for (const { key, kernel } of variants) {
        const out = outs.get(key) as ComplexMatrix;
        ((hashes[`${size}`] ??= {})[`${key}/${workers}`] = hashOf(out));
        if (peer !== undefined && workers === opts.workers[0] && key === variants.find((v) => v.kernel === kernel)?.key) {
          const file = join(scratch, 'h-hpair.npy');
          writeFileSync(file, encodeComplexMatrixNpy(out));
          const error = await peer.compare(file);
          rmSync(file, { force: true });
          verification.push({ n: size, kernel, relErrVsNumpy: error.vsNumpy, relErrVsZherk: error.vsZherk });
          const row = groupRows.find((r) => r.kind === 'hpair' && r.what === `hpair ${key}`);
          if (row !== undefined) {
            row.relErrVsNumpy = error.vsNumpy;
            row.relErrVsZherk = error.vsZherk;
          }
          progress(`${label}: ${kernel} H vs numpy: max rel. error ${error.vsNumpy?.toExponential(1) ?? '?'}${error.vsZherk === undefined ? '' : `, vs zherk (lower) ${error.vsZherk.toExponential(1)}`}`);
        }
      }
      for (const pool of pools.values()) await pool.close();
    }
    const most = Math.max(...opts.workers);
    if (opts.workers.includes(1) && most > 1 && sizeKernels.length > 0) {
      scaling.push(
        ...(await pairedScaling({
          size,
          expp,
          distance,
          kernel: sizeKernels[0],
          workers: most,
          zherk: zherk ? peer : undefined,
          minSamples: opts.minSamples ?? 5,
          timeSeconds: opts.timeSeconds,
          settleMs: opts.settleMs,
          consume: (value) => (sink += value),
        })),
      );
    }
    for (const kernel of sizeKernels) {
      // Same kernel, every worker count and schedule: one hash.
      const all = variants.filter((v) => v.kernel === kernel).flatMap((v) => opts.workers.map((w) => hashes[`${size}`][`${v.key}/${w}`]));
      if (all.length > 1) bitIdentity.push({ n: size, m: size, kernel, workers: opts.workers, schedules: opts.schedules, identical: all.every((h) => h === all[0]) });
    }
    await peer?.free();
  }
} finally {
  peer?.close();
}

// ---------------------------------------------------------------------------------------------------------
// Bit-identity across 1, 2 and 3 workers at an odd size with many tiles (the target of issue 9).
{
  const [n, m] = [1001, 777];
  const { expp, distance } = demoProblem(n, m);
  for (const kernel of kernels) {
    const seen: string[] = [];
    for (const workers of [1, 2, 3]) {
      const pool = createPool({ workers, kernel, inlineFlops: 0 });
      const h = await pool.hermitian(expp, distance);
      seen.push(hashOf(h));
      await pool.close();
    }
    const identical = seen.every((hash) => hash === seen[0]);
    bitIdentity.push({ n, m, kernel, workers: [1, 2, 3], identical });
    progress(`bit-identity N = ${n}, M = ${m}, ${kernel}, workers 1, 2, 3: ${identical ? 'identical' : `DIFFERENT (${seen.join(' ')})`}`);
  }
}

// ---------------------------------------------------------------------------------------------------------
// Peak RSS: the CLI on .npy files against numpy's line (and zherk's) on the same files, each a fresh process.
interface MemoryRow {
  n: number;
  cli?: PeakRss;
  numpy?: PeakRss;
  zherk?: PeakRss;
  errors: string[];
}
const memory: MemoryRow[] = [];
for (const size of opts.memorySizes) {
  const { expp, distance } = demoProblem(size, size);
  writeInputs(scratch, expp, distance);
  const row: MemoryRow = { n: size, errors: [] };
  const take = (what: 'cli' | 'numpy' | 'zherk', result: PeakRss | { error: string }): void => {
    if ('error' in result) row.errors.push(`${what}: ${result.error}`);
    else row[what] = result;
  };
  take('cli', cliPeakRss(scratch));
  if (usePython) {
    take('numpy', pythonPeakRss(scratch, 'numpy', peerEnv));
    if (peerInfo?.scipy !== null && peerInfo?.scipy !== undefined) take('zherk', pythonPeakRss(scratch, 'zherk', peerEnv));
  }
  memory.push(row);
  const mb = (r: PeakRss | undefined): string => (r === undefined ? '–' : `${r.peakRssMB.toFixed(0)} MB`);
  progress(
    `peak RSS N = M = ${size}: hpair compute (${row.cli?.kernel ?? '?'}) ${mb(row.cli)}, numpy ${mb(row.numpy)}` +
      `${row.cli !== undefined && row.numpy !== undefined ? ` (${(row.cli.peakRssMB / row.numpy.peakRssMB).toFixed(2)}× numpy's)` : ''}, zherk ${mb(row.zherk)}` +
      `${row.errors.length > 0 ? `; ${row.errors.join('; ')}` : ''}`,
  );
}
rmSync(scratch, { recursive: true, force: true });

// ---------------------------------------------------------------------------------------------------------
// The small-job round trip through a warm pool, per kernel (it runs inline when that is cheaper than waking
// the workers), and the default kernel's job sent to 1 and 2 workers anyway (inlineFlops: 0): the fixed cost
// of a worker job, which every mid-size job pays too. Then abort latency and event-loop delay during a large
// job with the default kernel.
const smallJobs: { kernel: string; ran: string; n: number; stats: Summary; inline: boolean; othersCpu?: number }[] = [];
{
  const { expp, distance } = demoProblem(64, 64);
  const smallEntries: (InterleavedEntry & { kernel: string; pool: Pool; ran: Set<string> })[] = [];
  const configs: { kernel: string; options: PoolOptions }[] = [
    { kernel: 'auto', options: {} },
    ...kernels.map((kernel) => ({ kernel, options: { kernel } })),
    ...[1, 2].map((workers) => ({ kernel: `auto, ${workers} worker${workers === 1 ? '' : 's'}, inlineFlops 0`, options: { workers, inlineFlops: 0 } })),
  ];
  for (const { kernel, options } of configs) {
    const pool = createPool(options);
    await pool.ready();
    const out = createComplexMatrix(63, 63);
    const ran = new Set<string>();
    smallEntries.push({
      what: kernel,
      side: 'hpair',
      kernel,
      pool,
      ran,
      samples: [],
      fn: async () => {
        const h = await pool.hermitian(expp, distance, { out });
        ran.add(h.kernel);
        sink += out.data[0];
        return undefined;
      },
    });
  }
  // Interleaved like the big jobs: blocks of ~20 ms per kernel, rotated, for at least 3 s.
  const before = cpuSnapshot(peerPids());
  await interleaved('warm N = M = 64 round trip', smallEntries, { minSamples: 200, timeSeconds: 3, settleMs: 0, blockMs: 20 });
  const othersCpu = othersShare(before, cpuSnapshot(peerPids()));
  for (const entry of smallEntries) {
    const stats = summarize(entry.samples);
    const ran = [...entry.ran].join('+');
    smallJobs.push({ kernel: entry.kernel, ran, n: 64, stats, inline: entry.pool.stats().inline > 0, othersCpu });
    progress(`warm N = M = 64 round trip, kernel ${entry.kernel} (${ran}): median ${ms(stats.median)} ms (p25–p75 ${ms(stats.p25)}–${ms(stats.p75)}, ${stats.samples} samples)`);
    await entry.pool.close();
  }
}

const responsiveness: Record<string, unknown> = {};
{
  const size = opts.full ? 4096 : 2048;
  const { expp, distance } = demoProblem(size, size);
  const pool = createPool({ inlineFlops: 0 });
  await pool.ready();
  const latencies: number[] = [];
  for (let run = 0; run < 5; run++) {
    const controller = new AbortController();
    const job = pool.hermitian(expp, distance, { signal: controller.signal }).catch((error: unknown) => error);
    await new Promise((resolve) => setTimeout(resolve, 50 + 23 * run));
    const aborted = performance.now();
    controller.abort();
    await job;
    latencies.push(performance.now() - aborted);
  }
  const histogram = monitorEventLoopDelay({ resolution: 5 });
  histogram.enable();
  const started = performance.now();
  const h = await pool.hermitian(expp, distance);
  const jobMs = performance.now() - started;
  histogram.disable();
  sink += checksumOf(h);
  const abort = summarize(latencies);
  responsiveness.abort = { n: size, kernel: pool.kernel, medianMs: abort.median, maxMs: abort.max, samples: latencies };
  responsiveness.eventLoopDelay = {
    n: size,
    kernel: h.kernel,
    jobMs,
    p50Ms: histogram.percentile(50) / 1e6,
    p99Ms: histogram.percentile(99) / 1e6,
    maxMs: histogram.max / 1e6,
  };
  progress(`abort during an N = M = ${size} job (${pool.kernel}): median ${ms(abort.median)} ms, max ${ms(abort.max)} ms (5 aborts)`);
  progress(
    `event-loop delay during a ${ms(jobMs)} ms N = M = ${size} job: p50 ${ms(histogram.percentile(50) / 1e6)} ms, p99 ${ms(histogram.percentile(99) / 1e6)} ms, max ${ms(histogram.max / 1e6)} ms`,
  );
  await pool.close();
}

// ---------------------------------------------------------------------------------------------------------
// Tables and the JSON record.
const header = ['N = M', 'workers', 'what', 'median ms', 'p25–p75 ms', 'samples', 'GFLOP/s', 'vs 1 worker', '× numpy', '× zherk', 'paired × numpy / zherk', 'max rel. err', 'others\' CPU'];
const cells = rows.map((row) => [
  String(row.n),
  String(row.workers),
  row.kind === 'hpair' && !row.what.slice(6).startsWith(row.kernel) ? `${row.what} (ran ${row.kernel})` : row.what,
  ms(row.stats.median),
  `${ms(row.stats.p25)}–${ms(row.stats.p75)}`,
  String(row.stats.samples),
  row.gflops.toFixed(1),
  ratio(row.speedup),
  ratio(row.vsNumpy),
  ratio(row.vsZherk),
  row.kind === 'hpair' && (row.pairedVsNumpy !== undefined || row.pairedVsZherk !== undefined) ? `${ratio(row.pairedVsNumpy) || '–'} / ${ratio(row.pairedVsZherk) || '–'}` : '',
  row.relErrVsNumpy === undefined ? '' : row.relErrVsNumpy.toExponential(1),
  row.othersCpu === undefined ? '' : `${(row.othersCpu * 100).toFixed(0)} %`,
]);
const memoryHeader = ['N = M', 'hpair compute peak RSS MB', 'kernel', 'numpy line MB', 'hpair / numpy', 'zherk line MB'];
const memoryCells = memory.map((row) => [
  String(row.n),
  row.cli === undefined ? '' : row.cli.peakRssMB.toFixed(0),
  row.cli?.kernel ?? '',
  row.numpy === undefined ? '' : row.numpy.peakRssMB.toFixed(0),
  row.cli !== undefined && row.numpy !== undefined ? ratio(row.cli.peakRssMB / row.numpy.peakRssMB) : '',
  row.zherk === undefined ? '' : row.zherk.peakRssMB.toFixed(0),
]);
const scalingHeader = ['N = M', '1 → N, paired within rounds', 'N', 'ratio of medians', 'paired', 'rounds'];
const scalingCells = scaling.map((row) => [String(row.n), row.what, String(row.workers), ratio(row.ratio), ratio(row.paired), String(row.rounds)]);
// Per size × workers: each hpair row's real-flop rate against OpenBLAS dgemm's on the same threads, in the same
// group (how close the kernels run to what this machine's cores give a well-tuned real kernel).
const realHeader = ['N = M', 'workers', 'what', 'real GFLOP/s', 'dgemm real GFLOP/s', '× dgemm rate'];
const realCells = rows.flatMap((row) => {
  const dgemm = rows.find((other) => other.kind === 'dgemm' && other.n === row.n && other.workers === row.workers);
  if (row.kind !== 'hpair' || row.realGflops === undefined || dgemm?.realGflops === undefined) return [];
  return [[String(row.n), String(row.workers), row.what, row.realGflops.toFixed(1), dgemm.realGflops.toFixed(1), ratio(row.realGflops / dgemm.realGflops)]];
});
const smallHeader = ['kernel', 'ran', 'N = M', 'median ms', 'p25–p75 ms', 'samples', 'inline'];
const smallCells = smallJobs.map((job) => [job.kernel, job.ran, String(job.n), ms(job.stats.median), `${ms(job.stats.p25)}–${ms(job.stats.p75)}`, String(job.stats.samples), job.inline ? 'yes' : 'no']);

const out: string[] = [];
out.push(`hpair bench — ${hostLine(host)}`);
if (peerInfo !== undefined) {
  out.push(`numpy ${peerInfo.numpy}, scipy ${peerInfo.scipy ?? '–'}, BLAS ${peerInfo.openblas.map((lib) => `${lib.coretype ?? '?'} ${lib.config?.split(' ').slice(0, 2).join(' ') ?? ''}`).join(' / ')}`);
  if (blasCore !== undefined) {
    out.push(`peers' OPENBLAS_CORETYPE: ${blasCore.coretype ?? '(unset: OpenBLAS detects)'}, ${blasCore.how}; inherited: ${blasCore.inherited ?? '(unset)'}`);
  }
}
out.push(`${host.date}, hpair ${host.commit?.slice(0, 12) ?? '(no git)'}${host.dirty === true ? ' (dirty)' : ''}, node ${process.execArgv.join(' ')}`.trimEnd());
out.push('median and p25–p75 of each entry\'s samples; × numpy / × zherk = peer median / this median (same size, same threads);');
out.push('× zherk is like for like: a row into a reused H (hpair\'s `out`) against zherk into a reused C, a new H against a new C;');
out.push('paired = median over rounds of the same round\'s ratio; others\' CPU = share of the cores other processes used during that group');
out.push('', textTable(header, cells));
if (memoryCells.length > 0) out.push('', textTable(memoryHeader, memoryCells));
if (scalingCells.length > 0) out.push('', textTable(scalingHeader, scalingCells));
if (realCells.length > 0) out.push('', textTable(realHeader, realCells));
out.push('', textTable(smallHeader, smallCells));
out.push('', 'bit-identical H across worker counts (and schedules), per kernel:');
for (const kernel of kernels) {
  const checks = bitIdentity.filter((b) => b.kernel === kernel);
  const where = (b: (typeof bitIdentity)[number]): string =>
    `N = ${b.n}${b.m === b.n ? '' : `, M = ${b.m}`} on ${b.workers.join(', ')} workers${b.schedules !== undefined && b.schedules.length > 1 ? ` × ${b.schedules.join(', ')}` : ''}`;
  const bad = checks.filter((b) => !b.identical);
  out.push(`  ${kernel.padEnd(18)} ${bad.length === 0 ? 'identical' : `DIFFERENT at ${bad.map(where).join('; ')}`} (${checks.map(where).join('; ')})`);
}
if (opts.markdown) {
  out.push('', markdownTable(header, cells));
  if (memoryCells.length > 0) out.push('', markdownTable(memoryHeader, memoryCells));
  if (scalingCells.length > 0) out.push('', markdownTable(scalingHeader, scalingCells));
  if (realCells.length > 0) out.push('', markdownTable(realHeader, realCells));
  out.push('', markdownTable(smallHeader, smallCells));
}
process.stdout.write(`${out.join('\n')}\n`);

const record = {
  command: ['node', ...process.execArgv, 'dist/bench/main.js', ...process.argv.slice(2)].join(' '),
  host,
  kernelStatus: status,
  auto,
  python: peerInfo ?? null,
  blasCore: blasCore ?? null,
  options: opts,
  flopsFormula: '8·(N−1)·N/2·(M−1)',
  realFlopsFormula: REAL_FLOPS_FORMULA,
  spread: 'p25–p75 (linear interpolation); mad = median absolute deviation, unscaled',
  rows: rows.map(({ samplesMs, stats, ...row }) => ({ ...row, medianMs: stats.median, p25Ms: stats.p25, p75Ms: stats.p75, madMs: stats.mad, minMs: stats.min, maxMs: stats.max, samples: stats.samples, samplesMs })),
  verification,
  scaling,
  bitIdentity,
  hashes,
  memory,
  smallJobs: smallJobs.map(({ stats, ...job }) => ({ ...job, medianMs: stats.median, p25Ms: stats.p25, p75Ms: stats.p75, samples: stats.samples })),
  ...responsiveness,
  loadAverageAtEnd: (await import('node:os')).loadavg(),
  sink,
};
writeFileSync(opts.out, `${JSON.stringify(record, null, 2)}\n`);
process.stderr.write(`results written to ${opts.out} and ${writeMarkdownReport(opts.out, record)}\n`);
