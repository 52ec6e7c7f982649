// hpair's benchmark: every H kernel variant against numpy's (A/d) @ A.conj().T and scipy's zherk, interleaved
// in rounds within one run, over a sweep of shapes (tiny, square, tall, H-write bound) and worker counts, each
// row's executed flop rate as a share of the machine's FMA peak; peak RSS of the CLI against numpy's line; the
// warm small-job round trip; abort latency and event-loop delay during a large job; bit-identity across worker
// counts. The peers are checked in every run (their OpenBLAS core and threads in every copy, and their time
// against a fresh process); a failed check fails the run. Progress on stderr, the tables on stdout, every figure
// and the host's facts in a JSON file.
//
//   npm run bench                 the sweep: 64×64, 512², 2048², 256×65536, 8192×64; workers 1 and all
//   npm run bench -- --quick      a smoke run: each kind of shape at a small size
//   npm run bench -- --full       squares 256…4096 in the sweep, workers 1…all
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
import { HELP, JS_MAX_SIZE, parseOptions, shapeKey, shapeName, unsupportedKernels, UsageError, type BenchOptions, type Shape } from './options.js';
import { measurePeaks, peakFor, type PeakMeasurement, type PeakReport } from './peak.js';
import { hBytesWritten, measureWriteBandwidth, writeLimitFor, type BandwidthReport } from './bandwidth.js';
import { cleanVerdict, coreProblems, fasterVariants, hugePageProblems, threadProblems, type CleanVerdict } from './peer-check.js';
import { cpuSnapshot, hostFacts, hostLine, othersShare } from './host.js';
import { cliPeakRss, pythonPeakRss, type PeakRss } from './memory.js';
import { PythonPeer, pythonHasNumpy, type PeerInfo, type PeerKind, type PeerSample } from './python-peer.js';
import { blasEnvironment, chooseBlasCore } from './blas-core.js';
import { interleaved, type InterleavedEntry } from './interleave.js';
import { coldStart, type ColdStart } from './cold-start.js';
import { pairedScaling, type ScalingRow } from './scaling.js';
import { MEMORY_HEADER, memoryCells as memoryCellsOf, writeMarkdownReport } from './report.js';
import { markdownTable, ms, pairedRatio, percent, progress, ratio, summarize, textTable, type Summary } from './stats.js';

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
/**
 * The kernels measured on a shape: every one asked for; by default every one that runs here, but the js kernel
 * only up to the work of N = M = JS_MAX_SIZE, and, where one H takes BIG_H_BYTES or more (each kernel writes its
 * own), the first kernel alone.
 */
const BIG_H_BYTES = 2 ** 28;
const kernelsAt = (shape: Shape): KernelVariant[] => {
  if (opts.kernels !== undefined) return kernels;
  const fitting = kernels.filter((k) => k !== 'js' || hermitianFlops(shape.n, shape.m) <= hermitianFlops(JS_MAX_SIZE, JS_MAX_SIZE));
  return 16 * (shape.n - 1) ** 2 >= BIG_H_BYTES ? fitting.slice(0, 1) : fitting;
};

progress(`host: ${hostLine(host)}`);
for (const entry of status) progress(`kernel ${entry.kernel}: ${entry.supported ? 'runs here' : `not here: ${entry.reason ?? '?'}`}`);
const auto: { kernel: string; whyNotNative?: string } = await (async () => {
  const probe = createPool({ workers: 1 });
  const picked = { kernel: probe.kernel, ...(probe.whyNotNative === undefined ? {} : { whyNotNative: probe.whyNotNative }) };
  await probe.close();
  return picked;
})();
progress(`kernel 'auto' picks ${auto.kernel}${auto.whyNotNative === undefined ? '' : ` (not native: ${auto.whyNotNative})`}`);

// The machine's limit: the FMA peak per ISA on one thread and on each worker count at once (bench/peak.ts).
const peakReport: PeakReport = opts.peakSeconds > 0 ? await measurePeaks({ threads: opts.workers, seconds: opts.peakSeconds, repetitions: 3 }) : { peaks: [], unavailable: '--peak-seconds 0' };
if (peakReport.unavailable !== undefined) progress(`FMA peak: not measured (${peakReport.unavailable}); no "% of peak"`);
for (const p of peakReport.peaks) {
  progress(`FMA peak ${p.isa} on ${p.threads} thread${p.threads === 1 ? '' : 's'} at once: ${p.gflops.toFixed(1)} GFLOP/s (per thread ${p.perThread.map((r) => r.toFixed(1)).join(', ')}; repetitions ${p.repetitions.map((r) => r.toFixed(1)).join(', ')})`);
}

/** Bytes each thread's slice of the write-bandwidth probe spans: far beyond what the caches hold. */
const BANDWIDTH_SLICE_BYTES = 256 * 2 ** 20;
// The machine's write bandwidth on one thread and on each worker count at once (bench/bandwidth.ts): the limit of the
// H-write-bound rows, as the FMA peak is of the others. Measured with the peak, and skipped with it.
const bandwidthReport: BandwidthReport =
  opts.peakSeconds > 0
    ? await measureWriteBandwidth({ threads: opts.workers, seconds: opts.peakSeconds, repetitions: 3, sliceBytes: BANDWIDTH_SLICE_BYTES })
    : { measurements: [], unavailable: '--peak-seconds 0' };
if (bandwidthReport.unavailable !== undefined) progress(`write bandwidth: not measured (${bandwidthReport.unavailable})`);
for (const b of bandwidthReport.measurements) {
  progress(`write bandwidth, ${b.kind === 'stream' ? 'streaming' : 'ordinary'} stores, ${b.threads} thread${b.threads === 1 ? '' : 's'} at once: ${(b.bytesPerSecond / 1e9).toFixed(2)} GB/s (repetitions ${b.repetitions.map((r) => (r / 1e9).toFixed(2)).join(', ')})`);
}

// OPENBLAS_* variables the bench inherited (OPENBLAS_CORETYPE is replaced by the choice for the peers; the others
// reach them as they are, so they are shown): an environment may set them for builds of its own.
const inheritedBlasEnv = Object.fromEntries(Object.entries(process.env).filter(([key]) => key.startsWith('OPENBLAS_') || key.startsWith('GOTO')));
const usePython = opts.python && pythonHasNumpy();
if (opts.python && !usePython) progress('python3 with numpy not found: no numpy or zherk figures (pass --no-numpy to silence this)');
const blasCore = usePython ? chooseBlasCore(opts.blasCore, host.flags) : undefined;
if (blasCore !== undefined) {
  const timed = blasCore.probes.map(
    (p) => `${p.candidate} (${p.libs?.map((lib) => `${lib.users.join('+')} ${lib.coretype ?? '?'}`).join(', ') ?? '?'}) ${p.ms?.toFixed(1) ?? p.error ?? '?'}${p.ms === undefined ? '' : ' ms'}`,
  );
  progress(`peers' OpenBLAS core: ${blasCore.coretype ?? 'its own detection'}, ${blasCore.how}${timed.length > 0 ? `: ${timed.join('; ')}` : ''}`);
  if (Object.keys(inheritedBlasEnv).length > 0) progress(`inherited: ${Object.entries(inheritedBlasEnv).map(([k, v]) => `${k}=${v}`).join(' ')}`);
}
// numpy advises transparent huge pages on every big array it allocates, and numpy's line (and zherk's new C)
// allocates anew on each call. On a virtual machine whose balloon hands free memory back to the host, a huge page
// built from such memory is backed again at the host's pace on first touch, so whether the advice helps or costs
// depends on the size of the arrays and on when the host took the freed memory back (workers/huge-pages.ts says
// the same of hpair's new H). Neither setting is numpy's best everywhere, so the allocating peers are timed with
// the advice on and off in the same rounds, and the faster of the two in the run is the peer (PEER_ADVICE).
const peerEnv: NodeJS.ProcessEnv = blasEnvironment(blasCore);
const peer = usePython ? new PythonPeer(peerEnv) : undefined;
const peerPids = (): number[] => (peer?.pid === undefined ? [] : [peer.pid]);
/** Why this run's peer figures cannot be trusted; the run fails (exit code 1) when any. */
const peerFailures: string[] = [];
const peerFail = (problems: readonly string[]): void => {
  for (const problem of problems) {
    peerFailures.push(problem);
    progress(`PEER CHECK FAILED: ${problem}`);
  }
};
let peerInfo: PeerInfo | undefined;
if (peer !== undefined) {
  peerInfo = await peer.info();
  const cores = peerInfo.openblas.map((lib) => `${lib.users.join('+')}: ${lib.coretype ?? '?'} (${lib.config ?? lib.file})`).join('; ');
  progress(`python ${peerInfo.python}, numpy ${peerInfo.numpy}, scipy ${peerInfo.scipy ?? 'not installed'}; BLAS: ${cores}`);
  if (opts.peerCheck) {
    peerFail(coreProblems('the Python peer', peerInfo.openblas, blasCore?.expected, peerInfo.scipy !== null));
    if (peerInfo.numpyHugePages === null) peerFail(["the Python peer: numpy cannot say or set its huge-page advice, so the peers' memory use cannot be checked"]);
  }
}

// ---------------------------------------------------------------------------------------------------------
// Interleaved measurement of one shape × workers group.

const PEER_TITLES: Record<PeerKind, string> = {
  numpy: 'numpy (A/d) @ A.conj().T',
  zherk: 'scipy zherk (lower)',
  'zherk-into': 'scipy zherk (lower) into c',
  dgemm: 'OpenBLAS dgemm Re A·Im Aᵀ (real)',
};

/**
 * Real flops a row executes, for its rate against the FMA peak and dgemm's: hpair's 3M kernels (native,
 * WebAssembly) do three real products on the lower triangle, 3·2·(N−1)N/2·(M−1) = ¾ of the useful count; the `js`
 * kernel multiplies complex numbers directly, four real products, the useful count itself; numpy's zgemm
 * computes the whole square, 8·(N−1)²·(M−1); zherk the triangle, the useful count; dgemm's one product is
 * 2·(N−1)²·(M−1). (Flops as the BLAS counts them: an FMA is two.)
 */
const REAL_FLOPS_FORMULA =
  'hpair: ¾·8·(N−1)·N/2·(M−1) (3M), or 8·(N−1)·N/2·(M−1) for the js kernel; numpy (zgemm, whole square): 8·(N−1)²·(M−1); zherk: 8·(N−1)·N/2·(M−1); dgemm: 2·(N−1)²·(M−1)';
function realFlops(kind: 'hpair' | PeerKind, kernelRan: string, n: number, m: number): number {
  if (kind === 'hpair') return (kernelRan === 'js' ? 1 : 0.75) * hermitianFlops(n, m);
  if (kind === 'numpy') return 8 * (n - 1) ** 2 * (m - 1);
  if (kind === 'dgemm') return 2 * (n - 1) ** 2 * (m - 1);
  return hermitianFlops(n, m);
}

const WRITTEN_BYTES_FORMULA = 'hpair and numpy: the whole H, 16·(N−1)²; zherk: its lower triangle, 16·(N−1)·N/2';
/** Bytes of its result a row writes per job (see WRITTEN_BYTES_FORMULA); undefined for dgemm, which computes no H. */
function writtenBytes(kind: 'hpair' | PeerKind | 'reference', n: number): number | undefined {
  if (kind === 'hpair' || kind === 'numpy' || kind === 'reference') return hBytesWritten(n);
  if (kind === 'zherk' || kind === 'zherk-into') return (16 * (n - 1) * n) / 2;
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
  /** Real GFLOP/s executed (see realFlops). */
  realGflops?: number;
  /** The FMA peak this row is set against (bench/peak.ts: its own ISA for a native kernel, else the best). */
  peak?: { isa: string; threads: number; gflops: number };
  /** realGflops / peak.gflops. */
  ofPeak?: number;
  /** Ran inline on the calling thread (a job below the pool's inlineFlops), not on the workers. */
  inline?: boolean;
  /** H-write-bound shapes: bytes of H (or C) this row writes per job over its median, bytes/s (see writtenBytes). */
  writeBytesPerSecond?: number;
  /** The write bandwidth it is set against (bench/bandwidth.ts: the faster kind of store on its thread count). */
  writeLimit?: { kind: string; threads: number; bytesPerSecond: number };
  /** writeBytesPerSecond / writeLimit.bytesPerSecond. */
  ofWriteBandwidth?: number;
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
  /**
   * A peer row: the same line timed in a fresh process right after the group, and the verdict; othersCpu: the
   * share of the cores processes other than the bench and that fresh one used while it was timed.
   */
  clean?: CleanVerdict & { samplesMs: number[]; othersCpu?: number; systemMs: number[]; minorFaults: number[] };
  /** numpy's huge-page advice for the arrays this peer row's calls allocated (numpy's line, zherk's new C). */
  hugePages?: boolean;
  /** The slower of a peer's two huge-page variants in this group: shown, never compared against. */
  alternate?: boolean;
  /** A peer row: per timed call, the system (kernel) CPU time, ms, and the minor page faults it cost Python. */
  peerSystemMs?: number[];
  peerMinorFaults?: number[];
  /**
   * A peer row: the bench's own process (its event loop, the pools' workers and memory threads) in CPU seconds per
   * second of this peer's calls, while it was timed: near 0 unless something of hpair's side runs meanwhile.
   */
  benchCpuWhileTimed?: number;
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
  /** A peer variant: numpy's huge-page advice for the arrays its calls allocate. */
  hugePages?: boolean;
}

/** One way a peer line is timed: `key` names it (its entry), `hugePages` is numpy's advice for the call. */
interface PeerVariant {
  key: string;
  kind: PeerKind;
  hugePages?: boolean;
}
/** The peers whose line allocates its result (and numpy's A/d): timed with numpy's huge-page advice on and off. */
const PEER_ADVICE: ReadonlySet<PeerKind> = new Set<PeerKind>(['numpy', 'zherk']);

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
const verification: { n: number; m: number; kernel: string; relErrVsNumpy?: number; relErrVsZherk?: number }[] = [];
const sleep = (milliseconds: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, milliseconds));

function writeInputs(dir: string, expp: ComplexMatrix, distance: Float64Array): void {
  writeFileSync(join(dir, 'expp.npy'), encodeComplexMatrixNpy(expp));
  writeFileSync(join(dir, 'distance.npy'), encodeFloat64VectorNpy(distance));
}

/**
 * The peer lines of a group once more in a fresh python3 (same environment, same inputs, same thread count),
 * started after the group and after an idle pause, so nothing of the long-lived peer's state is in them: its
 * cores and threads are checked too. Returns each kind's samples (ms), at least 3, more while the group's time
 * allows.
 */
async function cleanPeerSamples(
  label: string,
  variants: readonly PeerVariant[],
  workers: number,
): Promise<{ samples: Map<string, PeerSample[]>; othersCpu: Map<string, number | undefined> }> {
  await sleep(opts.settleMs);
  const fresh = new PythonPeer(peerEnv);
  const freshPids = (): number[] => [...peerPids(), ...(fresh.pid === undefined ? [] : [fresh.pid])];
  try {
    const info = await fresh.info();
    peerFail(coreProblems(`${label}, a fresh Python process`, info.openblas, blasCore?.expected, info.scipy !== null));
    await fresh.load(scratch);
    const threads = await fresh.threads(workers);
    peerFail(threadProblems(`${label}, a fresh Python process`, threads.openblas, workers));
    const samples = new Map<string, PeerSample[]>();
    const othersCpu = new Map<string, number | undefined>();
    for (const { key, kind, hugePages } of variants) {
      await sleep(opts.settleMs); // as in the run: no copy's spinning threads from the previous kind
      const taken: PeerSample[] = [];
      const started = performance.now();
      await fresh.run(kind, hugePages); // its first call pays the copy's thread start and page faults once, as the peer's warm-up did
      const before = cpuSnapshot(freshPids());
      while (taken.length < 3 || (taken.length < 5 && performance.now() - started < opts.timeSeconds * 1000)) {
        const sample = await fresh.run(kind, hugePages);
        if (hugePages !== undefined) peerFail(hugePageProblems(`${label}, a fresh Python process, ${key}`, sample.hugePages, hugePages));
        sink += sample.checksum;
        taken.push(sample);
      }
      samples.set(key, taken);
      othersCpu.set(key, othersShare(before, cpuSnapshot(freshPids())));
    }
    return { samples, othersCpu };
  } finally {
    fresh.close();
  }
}

try {
  for (const shape of opts.shapes) {
    const { n, m } = shape;
    const where = shapeName(shape);
    const { expp, distance } = demoProblem(n, m);
    const flops = hermitianFlops(n, m);
    const shapeKernels = kernelsAt(shape);
    if (opts.kernels === undefined && shapeKernels.length < kernels.filter((k) => k !== 'js').length) {
      progress(`${where}: H takes ${((16 * (n - 1) ** 2) / 2 ** 30).toFixed(1)} GiB per kernel: only ${shapeKernels.join(', ')} (--kernels to choose)`);
    }
    // One entry per kernel (and schedule, when --schedules names more than one), each writing into its own
    // preallocated H (`out`); and the first kernel once more with a new H per job, as a caller that keeps no
    // buffer runs it (numpy's line allocates its result too): first-touch page faults and all.
    const variants: { key: string; kernel: KernelVariant; schedule: Schedule; freshH: boolean }[] = shapeKernels.flatMap((kernel) =>
      opts.schedules.map((schedule) => ({ key: opts.schedules.length > 1 ? `${kernel} ${schedule}` : kernel, kernel, schedule, freshH: false })),
    );
    if (opts.freshH && shapeKernels.length > 0) variants.push({ key: `${shapeKernels[0]}, new H`, kernel: shapeKernels[0], schedule: opts.schedules[0], freshH: true });
    const outs = new Map(variants.filter((v) => !v.freshH).map(({ key }) => [key, createComplexMatrix(n - 1, n - 1)]));
    const freshKeys = new Set(variants.filter((v) => v.freshH).map(({ key }) => key));
    let zherk = false;
    if (peer !== undefined) {
      writeInputs(scratch, expp, distance);
      const loaded = await peer.load(scratch);
      zherk = loaded.zherk;
      if (!zherk) progress(`${where}: no zherk (${loaded.why ?? '?'})`);
    }
    if (flops <= hermitianFlops(256, 256)) {
      const samples: number[] = [];
      const bench = new Bench({ time: 1000, iterations: 5, warmupIterations: 1, retainSamples: true });
      bench.add('reference', () => {
        sink += hermitianReference(expp, distance).data[0];
      });
      await bench.run();
      const result = bench.tasks[0].result;
      if (result.state === 'completed' && result.latency.samples !== undefined) samples.push(...result.latency.samples);
      const stats = summarize(samples);
      rows.push({ what: 'reference port (serial)', kind: 'reference', reusesOutput: false, kernel: 'js', n, m, workers: 1, stats, gflops: flops / stats.median / 1e6, samplesMs: samples });
      progress(`${where}: reference port ${ms(stats.median)} ms`);
    }
    for (const workers of opts.workers) {
      const label = `${where}, ${workers} worker${workers === 1 ? '' : 's'}`;
      const pools = new Map<string, Pool>();
      // The pool's default inlineFlops: a job as small as the tiny shape runs inline, as a user's would.
      for (const { key, kernel, schedule } of variants) {
        const pool = createPool({ workers, kernel, schedule });
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
      const peerVariants: PeerVariant[] = [];
      // The bench process's own CPU time while each peer variant is timed (all its threads: process.cpuUsage).
      const benchCpu = new Map<string, { cpuMs: number; wallMs: number }>();
      // Every call's own cost in the kernel, warm-ups first: the timed calls are the last entry.samples.length.
      const peerCosts = new Map<string, PeerSample[]>();
      if (peer !== undefined) {
        const threads = await peer.threads(workers);
        if (opts.peerCheck) peerFail(threadProblems(`${label}, the Python peer`, threads.openblas, workers));
        else if (threads.threads.some((t) => t !== workers)) progress(`${label}: BLAS threads are ${threads.threads.join(', ')} (asked ${workers}, via ${threads.how})`);
        const peerEntry = ({ key, kind, hugePages }: PeerVariant): Entry => ({
          what: key,
          kind,
          hugePages,
          kernel: { numpy: 'BLAS zgemm', zherk: 'BLAS zherk', 'zherk-into': 'BLAS zherk', dgemm: 'BLAS dgemm' }[kind],
          // numpy and scipy each run their own OpenBLAS copy, whose threads spin for a while after each call:
          // a switch between the copies pauses as a switch from hpair does, so that one copy's spinning threads
          // never share the cores with the other's call.
          side: kind === 'numpy' || kind === 'dgemm' ? "python, numpy's BLAS" : "python, scipy's BLAS",
          samples: [],
          fn: async () => {
            const cpu = process.cpuUsage();
            const started = performance.now();
            const sample = await peer.run(kind, hugePages);
            const used = process.cpuUsage(cpu);
            if (hugePages !== undefined && opts.peerCheck) peerFail(hugePageProblems(`${label}, the Python peer, ${key}`, sample.hugePages, hugePages));
            const own = benchCpu.get(key) ?? { cpuMs: 0, wallMs: 0 };
            benchCpu.set(key, own);
            own.cpuMs += (used.user + used.system) / 1000;
            own.wallMs += performance.now() - started;
            const costs = peerCosts.get(key) ?? [];
            peerCosts.set(key, costs);
            costs.push(sample);
            sink += sample.checksum;
            return { overriddenDuration: sample.ms };
          },
        });
        const kinds: PeerKind[] = ['numpy', 'dgemm', ...(zherk ? (['zherk', 'zherk-into'] as const) : [])];
        for (const kind of kinds) {
          if (PEER_ADVICE.has(kind)) peerVariants.push(...[true, false].map((hugePages) => ({ key: `${kind}, huge pages ${hugePages ? 'on' : 'off'}`, kind, hugePages })));
          else peerVariants.push({ key: kind, kind });
        }
        entries.push(...peerVariants.map(peerEntry));
      }
      const minSamples = opts.minSamples ?? (flops >= hermitianFlops(4096, 4096) && workers === 1 ? 3 : 5);
      const before = cpuSnapshot(peerPids());
      await interleaved(label, entries, { minSamples, timeSeconds: opts.timeSeconds, settleMs: opts.settleMs });
      const othersCpu = othersShare(before, cpuSnapshot(peerPids()));
      // Of each allocating peer's two variants, the faster in the run is the peer; the other is shown beside it.
      const chosen = fasterVariants(entries.filter((entry) => entry.kind !== 'hpair' && PEER_ADVICE.has(entry.kind)).map((entry) => ({ key: entry.what, kind: entry.kind, samples: entry.samples })));
      const isAlternate = (entry: Entry): boolean => entry.kind !== 'hpair' && PEER_ADVICE.has(entry.kind) && !chosen.has(entry.what);
      const checked = peerVariants.filter((variant) => variant.kind !== 'dgemm' && (!PEER_ADVICE.has(variant.kind) || chosen.has(variant.key)));
      const clean = peer !== undefined && opts.peerCheck ? await cleanPeerSamples(label, checked, workers) : undefined;

      const groupRows: Row[] = entries.map((entry) => {
        const stats = summarize(entry.samples);
        const kernelRan = entry.kind === 'hpair' ? [...(ran.get(entry.what) ?? [])].join('+') : entry.kernel;
        const real = realFlops(entry.kind, kernelRan, n, m);
        const realGflops = real / stats.median / 1e6;
        const pool = entry.kind === 'hpair' ? pools.get(entry.what) : undefined;
        const inline = pool !== undefined && pool.stats().inline > 0;
        // A job run inline runs on the calling thread alone, so it is set against one thread's peak.
        const peak: PeakMeasurement | undefined = peakFor(peakReport.peaks, entry.kind === 'hpair' ? kernelRan : 'BLAS', inline ? 1 : workers);
        const cleanSamples = entry.kind === 'hpair' ? undefined : clean?.samples.get(entry.what);
        const timedCosts = entry.kind === 'hpair' ? undefined : peerCosts.get(entry.what)?.slice(-entry.samples.length);
        const cleanOthers = entry.kind === 'hpair' ? undefined : clean?.othersCpu.get(entry.what);
        const own = entry.kind === 'hpair' ? undefined : benchCpu.get(entry.what);
        return {
          what: entry.kind === 'hpair' ? `hpair ${entry.what}` : `${PEER_TITLES[entry.kind]}${entry.hugePages === undefined ? '' : `, huge pages ${entry.hugePages ? 'on' : 'off'}`}`,
          ...(entry.hugePages === undefined ? {} : { hugePages: entry.hugePages }),
          ...(isAlternate(entry) ? { alternate: true } : {}),
          kind: entry.kind,
          reusesOutput: entry.kind === 'zherk-into' || (entry.kind === 'hpair' && !freshKeys.has(entry.what)),
          kernel: kernelRan,
          n,
          m,
          workers,
          stats,
          gflops: (entry.kind === 'dgemm' ? real : flops) / stats.median / 1e6,
          realGflops,
          ...(peak === undefined ? {} : { peak: { isa: peak.isa, threads: peak.threads, gflops: peak.gflops }, ofPeak: realGflops / peak.gflops }),
          ...(pool === undefined ? {} : { inline }),
          ...(cleanSamples === undefined
            ? {}
            : {
                clean: {
                  ...cleanVerdict(
                    entry.samples,
                    cleanSamples.map((sample) => sample.ms),
                    opts.peerTolerance,
                  ),
                  samplesMs: cleanSamples.map((sample) => sample.ms),
                  othersCpu: cleanOthers,
                  systemMs: cleanSamples.map((sample) => sample.systemMs),
                  minorFaults: cleanSamples.map((sample) => sample.minorFaults),
                },
              }),
          ...(timedCosts === undefined ? {} : { peerSystemMs: timedCosts.map((cost) => cost.systemMs), peerMinorFaults: timedCosts.map((cost) => cost.minorFaults) }),
          ...(own === undefined || own.wallMs <= 0 ? {} : { benchCpuWhileTimed: own.cpuMs / own.wallMs }),
          othersCpu,
          samplesMs: entry.samples,
          roundMediansMs: entry.rounds,
        };
      });
      if (othersCpu !== undefined) progress(`${label}: other processes used ${(othersCpu * 100).toFixed(0)} % of the ${host.cores} cores meanwhile`);
      for (const row of groupRows) {
        if (row.clean === undefined) continue;
        const c = row.clean;
        const load =
          `; meanwhile the bench's own threads used ${row.benchCpuWhileTimed === undefined ? '?' : `${(row.benchCpuWhileTimed * 100).toFixed(0)} % of a core`} in the run, ` +
          `other processes ${othersCpu === undefined ? '?' : `${(othersCpu * 100).toFixed(0)} %`} of the cores in the run and ${c.othersCpu === undefined ? '?' : `${(c.othersCpu * 100).toFixed(0)} %`} in the fresh process`;
        const kernelCost = (systemMs: readonly number[] | undefined, faults: readonly number[] | undefined): string =>
          systemMs === undefined || faults === undefined || systemMs.length === 0 ? '?' : `${ms(summarize(systemMs).median)} ms, ${summarize(faults).median.toFixed(0)} faults`;
        const memory = `; system time and minor faults per call (median): ${kernelCost(row.peerSystemMs, row.peerMinorFaults)} in the run, ${kernelCost(c.systemMs, c.minorFaults)} in the fresh process`;
        const line = `${label}: ${row.what}: ${ms(c.inRunMedianMs)} ms in the run, ${ms(c.cleanMedianMs)} ms in a fresh process (${ratio(c.ratio)}, allowance ${(c.noise * 100).toFixed(0)} %${load}${memory})`;
        if (c.ok) progress(line);
        else peerFail([`${line}: the peer ran slower in the run than alone, so its figures do not show what it can do`]);
      }
      const numpyRow = groupRows.find((row) => row.kind === 'numpy' && row.alternate !== true);
      // Like for like: a row into a reused output against zherk into a reused C, a new output against a new C.
      const zherkFor = (row: Row): Row | undefined => groupRows.find((peerRow) => peerRow.kind === (row.reusesOutput ? 'zherk-into' : 'zherk') && peerRow.alternate !== true);
      for (const row of groupRows) {
        // dgemm is a rate reference, not a peer: it computes no H, so it is set against no peer.
        const [numpyPeer, zherkRow] = row.kind === 'dgemm' ? [undefined, undefined] : [numpyRow, zherkFor(row)];
        if (numpyPeer !== undefined) row.vsNumpy = numpyPeer.stats.median / row.stats.median;
        if (zherkRow !== undefined) row.vsZherk = zherkRow.stats.median / row.stats.median;
        row.pairedVsNumpy = pairedRatio(row.roundMediansMs, numpyPeer?.roundMediansMs);
        row.pairedVsZherk = pairedRatio(row.roundMediansMs, zherkRow?.roundMediansMs);
        const single = rows.find((other) => other.n === n && other.m === m && other.workers === 1 && other.what === row.what);
        if (single !== undefined) row.speedup = single.stats.median / row.stats.median;
        else if (workers === 1) row.speedup = 1;
        rows.push(row);
        progress(
          `${label}: ${row.what.padEnd(26)} median ${ms(row.stats.median).padStart(8)} ms (p25–p75 ${ms(row.stats.p25)}–${ms(row.stats.p75)}, ${row.stats.samples} samples) ` +
            `${row.gflops.toFixed(1)} GFLOP/s${row.ofPeak === undefined ? '' : `, ${percent(row.ofPeak)} of ${row.peak?.isa} peak`}` +
            `${row.vsNumpy === undefined ? '' : `, ${ratio(row.vsNumpy)} numpy`}${row.vsZherk === undefined ? '' : `, ${ratio(row.vsZherk)} zherk`}`,
        );
      }
      for (const { key, kernel } of variants) {
        const kernelsRan = ran.get(key) ?? new Set<string>();
        if (kernelsRan.size !== 1 || !kernelsRan.has(kernel)) progress(`${label}: ${kernel} was asked for, but ${[...kernelsRan].join(', ')} ran`);
      }

      // Bit-identity across worker counts (hash of the whole H) and, once per shape, the error against numpy.
      for (const { key, kernel } of variants) {
        const out = outs.get(key) as ComplexMatrix;
        ((hashes[shapeKey(shape)] ??= {})[`${key}/${workers}`] = hashOf(out));
        if (peer !== undefined && workers === opts.workers[0] && key === variants.find((v) => v.kernel === kernel)?.key) {
          const file = join(scratch, 'h-hpair.npy');
          writeFileSync(file, encodeComplexMatrixNpy(out));
          const error = await peer.compare(file);
          rmSync(file, { force: true });
          verification.push({ n, m, kernel, relErrVsNumpy: error.vsNumpy, relErrVsZherk: error.vsZherk });
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
    if (opts.workers.includes(1) && most > 1 && shapeKernels.length > 0 && flops > hermitianFlops(256, 256)) {
      scaling.push(
        ...(await pairedScaling({
          n,
          m,
          expp,
          distance,
          kernel: shapeKernels[0],
          workers: most,
          zherk: zherk ? peer : undefined,
          minSamples: opts.minSamples ?? 5,
          timeSeconds: opts.timeSeconds,
          settleMs: opts.settleMs,
          consume: (value) => (sink += value),
        })),
      );
    }
    for (const kernel of shapeKernels) {
      // Same kernel, every worker count and schedule: one hash.
      const all = variants.filter((v) => v.kernel === kernel).flatMap((v) => opts.workers.map((w) => hashes[shapeKey(shape)][`${v.key}/${w}`]));
      if (all.length > 1) bitIdentity.push({ n, m, kernel, workers: opts.workers, schedules: opts.schedules, identical: all.every((h) => h === all[0]) });
    }
    await peer?.free();
  }
} finally {
  peer?.close();
}

// The peak once more now that the sweep is done, keeping the better of the two per ISA and thread count (load
// only ever lowers a peak), and every row set against it again.
if (peakReport.peaks.length > 0) {
  const again = await measurePeaks({ threads: opts.workers, seconds: opts.peakSeconds, repetitions: 3 });
  for (const late of again.peaks) {
    const early = peakReport.peaks.findIndex((p) => p.isa === late.isa && p.threads === late.threads);
    if (early < 0) peakReport.peaks.push(late);
    else {
      const best = late.gflops > peakReport.peaks[early].gflops ? late : peakReport.peaks[early];
      peakReport.peaks[early] = { ...best, repetitions: [...peakReport.peaks[early].repetitions, ...late.repetitions] };
    }
  }
  for (const row of rows) {
    if (row.realGflops === undefined) continue;
    const peak = peakFor(peakReport.peaks, row.kind === 'hpair' ? row.kernel : 'BLAS', row.inline === true ? 1 : row.workers);
    if (peak === undefined) continue;
    row.peak = { isa: peak.isa, threads: peak.threads, gflops: peak.gflops };
    row.ofPeak = row.realGflops / peak.gflops;
  }
  const above = rows.filter((row) => row.ofPeak !== undefined && row.ofPeak > 1);
  if (above.length > 0) progress(`WARNING: ${above.length} rows above 100 % of the FMA peak: the peak was measured while other processes took the cores`);
}

// The H-write-bound rows against the write bandwidth on as many threads at once.
const hwriteShapes = opts.shapes.filter((shape) => shape.kind === 'hwrite');
for (const row of rows) {
  if (!hwriteShapes.some((shape) => shape.n === row.n && shape.m === row.m)) continue;
  const bytes = writtenBytes(row.kind, row.n);
  const limit = writeLimitFor(bandwidthReport.measurements, row.inline === true ? 1 : row.workers);
  if (bytes === undefined) continue;
  row.writeBytesPerSecond = bytes / (row.stats.median / 1e3);
  if (limit === undefined) continue;
  row.writeLimit = { kind: limit.kind, threads: limit.threads, bytesPerSecond: limit.bytesPerSecond };
  row.ofWriteBandwidth = row.writeBytesPerSecond / limit.bytesPerSecond;
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
// The cold first job: `hpair compute` at N = M = 512 in fresh processes against the same job on a warm pool.
const cold: ColdStart = await (async () => {
  const { expp, distance } = demoProblem(512, 512);
  writeInputs(scratch, expp, distance);
  const result = await coldStart(scratch, expp, distance, 5, (value) => (sink += value));
  progress(
    `cold first job, N = M = 512: hpair compute ${result.cli === undefined ? '?' : ms(result.cli.median)} ms (median of ${result.cliMs.length} fresh processes), ` +
      `first job on a new pool here ${ms(summarize(result.firstJobMs).median)} ms, warm ${ms(result.warm.median)} ms: cold ${ratio(result.coldOverWarm) || '?'} warm` +
      `${result.errors.length > 0 ? `; ${result.errors.join('; ')}` : ''}`,
  );
  return result;
})();
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
  const size = opts.full ? 4096 : opts.quick ? 512 : 2048;
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
const shapeCell = (row: { n: number; m: number }): string => `${row.n}×${row.m}`;
const header = ['N×M', 'workers', 'what', 'median ms', 'p25–p75 ms', 'samples', 'GFLOP/s', 'real GFLOP/s', '% peak', 'vs 1 worker', '× numpy', '× zherk', 'paired × numpy / zherk', 'max rel. err', 'others\' CPU'];
const cells = rows.map((row) => [
  shapeCell(row),
  String(row.workers),
  `${row.kind === 'hpair' && !row.what.slice(6).startsWith(row.kernel) ? `${row.what} (ran ${row.kernel})` : row.what}${row.inline === true ? ' (inline)' : ''}${row.alternate === true ? ' (other advice)' : ''}`,
  ms(row.stats.median),
  `${ms(row.stats.p25)}–${ms(row.stats.p75)}`,
  String(row.stats.samples),
  row.gflops.toFixed(1),
  row.realGflops === undefined ? '' : row.realGflops.toFixed(1),
  percent(row.ofPeak),
  ratio(row.speedup),
  ratio(row.vsNumpy),
  ratio(row.vsZherk),
  row.kind === 'hpair' && (row.pairedVsNumpy !== undefined || row.pairedVsZherk !== undefined) ? `${ratio(row.pairedVsNumpy) || '–'} / ${ratio(row.pairedVsZherk) || '–'}` : '',
  row.relErrVsNumpy === undefined ? '' : row.relErrVsNumpy.toExponential(1),
  row.othersCpu === undefined ? '' : `${(row.othersCpu * 100).toFixed(0)} %`,
]);
const memoryHeader = MEMORY_HEADER;
const memoryCells = memoryCellsOf(memory);
const scalingHeader = ['N×M', '1 → N, paired within rounds', 'N', 'ratio of medians', 'paired', 'rounds'];
const scalingCells = scaling.map((row) => [shapeCell(row), row.what, String(row.workers), ratio(row.ratio), ratio(row.paired), String(row.rounds)]);
// Per size × workers: each hpair row's real-flop rate against OpenBLAS dgemm's on the same threads, in the same
// group (how close the kernels run to what this machine's cores give a well-tuned real kernel).
const realHeader = ['N×M', 'workers', 'what', 'real GFLOP/s', 'dgemm real GFLOP/s', '× dgemm rate'];
const realCells = rows.flatMap((row) => {
  const dgemm = rows.find((other) => other.kind === 'dgemm' && other.n === row.n && other.m === row.m && other.workers === row.workers);
  if (row.kind !== 'hpair' || row.realGflops === undefined || dgemm?.realGflops === undefined) return [];
  return [[shapeCell(row), String(row.workers), row.what, row.realGflops.toFixed(1), dgemm.realGflops.toFixed(1), ratio(row.realGflops / dgemm.realGflops)]];
});
const smallHeader = ['kernel', 'ran', 'N = M', 'median ms', 'p25–p75 ms', 'samples', 'inline'];
const smallCells = smallJobs.map((job) => [job.kernel, job.ran, String(job.n), ms(job.stats.median), `${ms(job.stats.p25)}–${ms(job.stats.p75)}`, String(job.stats.samples), job.inline ? 'yes' : 'no']);
// The sweep: per shape × workers, the first kernel into `out` and with a new H, and the peers, each with its
// executed rate as a share of the FMA peak it is set against.
const sweepHeader = ['N×M', 'kind', 'workers', 'hpair ms', 'hpair % peak', 'new H ms', 'numpy ms', 'numpy % peak', 'zherk ms', 'zherk % peak', 'new H × numpy', 'new H × zherk', 'peak GFLOP/s'];
const sweepCells = opts.shapes.flatMap((shape) =>
  opts.workers.flatMap((workers) => {
    const group = rows.filter((row) => row.n === shape.n && row.m === shape.m && row.workers === workers);
    const into = group.find((row) => row.kind === 'hpair' && row.reusesOutput);
    const fresh = group.find((row) => row.kind === 'hpair' && !row.reusesOutput);
    const numpy = group.find((row) => row.kind === 'numpy' && row.alternate !== true);
    const zherk = group.find((row) => row.kind === 'zherk' && row.alternate !== true);
    if (into === undefined && fresh === undefined) return [];
    const first = into ?? fresh;
    const peaks = [...new Set(group.flatMap((row) => (row.peak === undefined ? [] : [`${row.peak.isa} ${row.peak.gflops.toFixed(1)}`])))];
    return [
      [
        shapeCell(shape),
        shape.kind,
        String(workers),
        `${first === undefined ? '' : ms(first.stats.median)}${first?.inline === true ? ' (inline)' : ''}`,
        percent(first?.ofPeak),
        fresh === undefined ? '' : ms(fresh.stats.median),
        numpy === undefined ? '' : ms(numpy.stats.median),
        percent(numpy?.ofPeak),
        zherk === undefined ? '' : ms(zherk.stats.median),
        percent(zherk?.ofPeak),
        ratio(fresh?.vsNumpy),
        ratio(fresh?.vsZherk),
        peaks.join(', '),
      ],
    ];
  }),
);
const writeHeader = ['N×M', 'workers', 'what', 'median ms', 'GB written / s', '% of write bandwidth', 'write bandwidth GB/s (stores)'];
const writeCells = rows
  .filter((row) => row.writeBytesPerSecond !== undefined)
  .map((row) => [
    shapeCell(row),
    String(row.workers),
    row.what,
    ms(row.stats.median),
    ((row.writeBytesPerSecond ?? 0) / 1e9).toFixed(2),
    percent(row.ofWriteBandwidth),
    row.writeLimit === undefined ? '' : `${(row.writeLimit.bytesPerSecond / 1e9).toFixed(2)} (${row.writeLimit.kind === 'stream' ? 'streaming' : 'ordinary'}, ${row.writeLimit.threads} thread${row.writeLimit.threads === 1 ? '' : 's'})`,
  ]);
const bandwidthHeader = ['threads at once', 'stores', 'write GB/s', 'per thread', 'repetitions'];
const bandwidthCells = bandwidthReport.measurements.map((b) => [
  String(b.threads),
  b.kind === 'stream' ? 'streaming' : 'ordinary',
  (b.bytesPerSecond / 1e9).toFixed(2),
  b.perThread.map((r) => (r / 1e9).toFixed(2)).join(', '),
  b.repetitions.map((r) => (r / 1e9).toFixed(2)).join(', '),
]);
const peakHeader = ['ISA', 'threads at once', 'FMA peak GFLOP/s', 'per thread', 'repetitions'];
const peakCells = peakReport.peaks.map((p) => [p.isa, String(p.threads), p.gflops.toFixed(1), p.perThread.map((r) => r.toFixed(1)).join(', '), p.repetitions.map((r) => r.toFixed(1)).join(', ')]);

const out: string[] = [];
out.push(`hpair bench — ${hostLine(host)}`);
if (peerInfo !== undefined) {
  out.push(`numpy ${peerInfo.numpy}, scipy ${peerInfo.scipy ?? '–'}, BLAS ${peerInfo.openblas.map((lib) => `${lib.users.join('+')}: ${lib.coretype ?? '?'} ${lib.config?.split(' ').slice(0, 2).join(' ') ?? ''}`).join(' / ')}`);
  if (blasCore !== undefined) {
    out.push(`peers' OPENBLAS_CORETYPE: ${blasCore.coretype ?? '(unset: OpenBLAS detects)'}, ${blasCore.how}; inherited: ${blasCore.inherited ?? '(unset)'}`);
  }
  out.push("numpy's line and zherk with a new C are timed with numpy's huge-page advice on and off in the same rounds; the faster in the run is the peer (× numpy, × zherk), the other row is marked (other advice)");
  if (Object.keys(inheritedBlasEnv).length > 0) out.push(`inherited by the peers: ${Object.entries(inheritedBlasEnv).map(([k, v]) => `${k}=${v}`).join(' ')}`);
  out.push(
    !opts.peerCheck
      ? 'peers NOT checked (--no-peer-check): their cores, threads and fresh-process times were not verified'
      : peerFailures.length === 0
        ? `peers checked: every OpenBLAS copy in every Python process ran ${blasCore?.expected ?? 'one core'} on the threads asked, and each peer line was within its allowance of a fresh process's time`
        : `PEER CHECK FAILED (${peerFailures.length}): ${peerFailures.join(' | ')}`,
  );
}
out.push(
  peakReport.peaks.length > 0
    ? `% peak: a row's real (executed) flop rate over the FMA peak of its ISA (a native kernel's own, else the best) on as many threads at once (best of the probes before and after the sweep)`
    : `no FMA peak (${peakReport.unavailable ?? '?'})`,
);
if (rows.some((row) => row.ofPeak !== undefined && row.ofPeak > 1)) out.push('WARNING: rows above 100 % of the FMA peak: the peak was measured while other processes took the cores; re-run on an idle host');
out.push(`${host.date}, hpair ${host.commit?.slice(0, 12) ?? '(no git)'}${host.dirty === true ? ' (dirty)' : ''}, node ${process.execArgv.join(' ')}`.trimEnd());
out.push('median and p25–p75 of each entry\'s samples; × numpy / × zherk = peer median / this median (same size, same threads);');
out.push('× zherk is like for like: a row into a reused H (hpair\'s `out`) against zherk into a reused C, a new H against a new C;');
out.push('paired = median over rounds of the same round\'s ratio; others\' CPU = share of the cores other processes used during that group');
if (peakCells.length > 0) out.push('', textTable(peakHeader, peakCells));
if (sweepCells.length > 0) out.push('', textTable(sweepHeader, sweepCells));
if (bandwidthCells.length > 0) out.push('', textTable(bandwidthHeader, bandwidthCells));
if (writeCells.length > 0) out.push('', 'H-write-bound rows: bytes of H written per second (zherk: its lower triangle) against the write bandwidth on as many threads', textTable(writeHeader, writeCells));
out.push('', textTable(header, cells));
if (memoryCells.length > 0) out.push('', textTable(memoryHeader, memoryCells));
if (scalingCells.length > 0) out.push('', textTable(scalingHeader, scalingCells));
if (realCells.length > 0) out.push('', textTable(realHeader, realCells));
out.push('', textTable(smallHeader, smallCells));
out.push(
  '',
  `cold first job, N = M = 512 (${cold.kernel ?? '?'}): hpair compute in a fresh process ${cold.cli === undefined ? '?' : ms(cold.cli.median)} ms (median of ${cold.cliMs.length}), ` +
    `first job on a new pool ${ms(summarize(cold.firstJobMs).median)} ms, warm ${ms(cold.warm.median)} ms; cold / warm ${ratio(cold.coldOverWarm) || '?'}`,
);
out.push('', 'bit-identical H across worker counts (and schedules), per kernel:');
for (const kernel of kernels) {
  const checks = bitIdentity.filter((b) => b.kernel === kernel);
  const where = (b: (typeof bitIdentity)[number]): string =>
    `N = ${b.n}${b.m === b.n ? '' : `, M = ${b.m}`} on ${b.workers.join(', ')} workers${b.schedules !== undefined && b.schedules.length > 1 ? ` × ${b.schedules.join(', ')}` : ''}`;
  const bad = checks.filter((b) => !b.identical);
  out.push(`  ${kernel.padEnd(18)} ${bad.length === 0 ? 'identical' : `DIFFERENT at ${bad.map(where).join('; ')}`} (${checks.map(where).join('; ')})`);
}
if (opts.markdown) {
  if (peakCells.length > 0) out.push('', markdownTable(peakHeader, peakCells));
  if (sweepCells.length > 0) out.push('', markdownTable(sweepHeader, sweepCells));
  if (bandwidthCells.length > 0) out.push('', markdownTable(bandwidthHeader, bandwidthCells));
  if (writeCells.length > 0) out.push('', markdownTable(writeHeader, writeCells));
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
  peerHugePages: usePython
    ? { how: "numpy's line and zherk with a new C each timed with numpy's huge-page advice on and off (rows[].hugePages) in the same rounds; the faster in the run is the peer, the other has rows[].alternate" }
    : null,
  inheritedBlasEnv,
  peerCheck: {
    checked: usePython && opts.peerCheck,
    tolerance: opts.peerTolerance,
    how: 'every OpenBLAS copy of the long-lived peer and of a fresh python3 per group reports the chosen core and the threads asked, and every call the huge-page advice asked (peerHugePages); each peer line (numpy, zherk, zherk into c; of numpy and zherk the variant faster in the run) is timed again in that fresh process after the group, and the run fails when the in-run median exceeds the fresh one by more than max(tolerance, either side\'s (p75 − p25) / median) (rows[].clean)',
    failures: peerFailures,
  },
  peak: {
    how: 'kernel/native/src/path_*.c (peak_loop.h): independent FMA chains on one ISA per thread; per ISA on 1 thread and on each worker count of threads at once (worker threads started together), before and after the sweep, best of the repetitions; a row is set against its own ISA (native kernels) or the best (others) on its thread count (rows[].peak, rows[].ofPeak = realGflops / peak.gflops)',
    ...peakReport,
  },
  writeBandwidth: {
    how: `kernel/native/src/bandwidth.c: each thread writes its own ${BANDWIDTH_SLICE_BYTES / 2 ** 20} MiB slice of one buffer over and over, with ordinary stores and with streaming ones, after an untimed pass; on 1 thread and on each worker count at once, best of the repetitions; an H-write-bound row is set against the faster kind on its thread count (rows[].writeLimit, rows[].writeBytesPerSecond = ${WRITTEN_BYTES_FORMULA} / median, rows[].ofWriteBandwidth)`,
    ...bandwidthReport,
  },
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
  coldStart: cold,
  smallJobs: smallJobs.map(({ stats, ...job }) => ({ ...job, medianMs: stats.median, p25Ms: stats.p25, p75Ms: stats.p75, samples: stats.samples })),
  ...responsiveness,
  loadAverageAtEnd: (await import('node:os')).loadavg(),
  sink,
};
writeFileSync(opts.out, `${JSON.stringify(record, null, 2)}\n`);
process.stderr.write(`results written to ${opts.out} and ${writeMarkdownReport(opts.out, record)}\n`);
if (peerFailures.length > 0) {
  process.stderr.write(`bench: the peer check failed, so this run's peer figures are not fit to publish:\n${peerFailures.map((failure) => `  - ${failure}\n`).join('')}`);
  process.exitCode = 1;
}
