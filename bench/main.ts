// hpair benchmarks (tinybench): H over a sweep of sizes and worker counts, the reference port at small
// sizes, the small-job round trip, abort latency and event-loop delay, and numpy on the same inputs in
// the same run when python3 has numpy. Prints a table and writes every figure to a JSON file.
//
//   npm run bench                 quick: N = M ∈ {512, 2048}, workers 1 and all
//   npm run bench -- --full       N = M ∈ {256, 512, 1024, 2048, 4096}, workers 1…all
//   options: --sizes 512,1024  --workers 1,2  --kernel auto|js|wasm-simd|wasm-relaxed-simd  --out FILE  --no-numpy
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { Bench } from 'tinybench';
import {
  createComplexMatrix,
  createPool,
  demoProblem,
  encodeComplexMatrixNpy,
  encodeFloat64VectorNpy,
  hermitianFlops,
  hermitianReference,
  type ComplexMatrix,
  type KernelChoice,
  type Pool,
} from 'hpair';
import { numpyAvailable, numpyHermitian, type NumpyResult } from './numpy.js';

const { values } = parseArgs({
  options: {
    full: { type: 'boolean' },
    sizes: { type: 'string' },
    workers: { type: 'string' },
    kernel: { type: 'string' },
    out: { type: 'string' },
    'no-numpy': { type: 'boolean' },
  },
});
const cores = availableParallelism();
const list = (text: string): number[] => text.split(',').map(Number);
const sizes = values.sizes !== undefined ? list(values.sizes) : values.full === true ? [256, 512, 1024, 2048, 4096] : [512, 2048];
const workerCounts =
  values.workers !== undefined ? list(values.workers) : values.full === true ? Array.from({ length: cores }, (_, i) => i + 1) : [...new Set([1, cores])];
const kernel = (values.kernel ?? 'auto') as KernelChoice;
const outFile = values.out ?? 'bench-results.json';
const withNumpy = values['no-numpy'] !== true && numpyAvailable();

interface Row {
  what: string;
  n: number;
  m: number;
  workers: number;
  kernel: string;
  medianMs: number;
  gflops: number;
  speedup?: number;
  vsNumpy?: number;
  /** From a fresh process running one job of this size (bench/memory-probe.ts). */
  peakRssMB?: number;
  budgetMB?: number;
}
const rows: Row[] = [];
const extras: Record<string, unknown> = { node: process.version, cores, numpy: withNumpy };

/** Runs `fn` under tinybench and returns the median latency in ms. Each sample is one whole job. */
async function median(name: string, fn: () => Promise<unknown> | unknown, budgetMs: number, minRuns: number): Promise<number> {
  const bench = new Bench({ time: budgetMs, iterations: minRuns, warmupIterations: 1, warmupTime: 0 });
  bench.add(name, fn);
  await bench.run();
  const result = bench.tasks[0].result;
  if (result.state !== 'completed') throw new Error(`${name}: ${result.state}`);
  return result.latency.p50;
}

/** Peak memory of one job of this size, measured in a fresh process so nothing else here inflates it. */
function memoryProbe(size: number): { peakRssMB: number; budgetMB: number } {
  const probe = spawnSync(process.execPath, [...process.execArgv, fileURLToPath(new URL('./memory-probe.js', import.meta.url)), String(size), kernel], { encoding: 'utf8' });
  if (probe.status !== 0) throw new Error(`memory probe failed: ${probe.stderr}`);
  return JSON.parse(probe.stdout) as { peakRssMB: number; budgetMB: number };
}
const numpyCache = new Map<string, NumpyResult>();
let sink = 0; // every output is read, so no run can be optimised away

for (const size of sizes) {
  const { expp, distance } = demoProblem(size, size);
  const flops = hermitianFlops(size, size);
  const out = createComplexMatrix(size - 1, size - 1);
  if (size <= 256) {
    const ms = await median(`reference ${size}`, () => (sink += hermitianReference(expp, distance).data[0]), 1000, 2);
    rows.push({ what: 'reference port', n: size, m: size, workers: 1, kernel: 'js (serial)', medianMs: ms, gflops: flops / ms / 1e6 });
  }
  let oneWorkerMs: number | undefined;
  for (const workers of workerCounts) {
    const pool = createPool({ workers, kernel, inlineFlops: 0 });
    await pool.ready();
    const ms = await median(
      `hpair ${size} × ${workers}`,
      async () => {
        await pool.hermitian(expp, distance, { out });
        sink += out.data[2];
      },
      size >= 2048 ? 3000 : 1500,
      size >= 4096 ? 2 : 5,
    );
    oneWorkerMs ??= workers === 1 ? ms : undefined;
    const memory = workers === workerCounts[workerCounts.length - 1] ? memoryProbe(size) : undefined;
    const row: Row = { what: 'hpair', n: size, m: size, workers, kernel: pool.kernel, medianMs: ms, gflops: flops / ms / 1e6 };
    if (oneWorkerMs !== undefined) row.speedup = oneWorkerMs / ms;
    if (memory !== undefined) Object.assign(row, memory);
    if (withNumpy) {
      const numpy = numpyFor(expp, distance, size, workers, size <= 2048 ? out : undefined);
      row.vsNumpy = numpy.medianMs / ms;
      rows.push({ what: 'numpy (A/d) @ A.conj().T', n: size, m: size, workers, kernel: 'OpenBLAS zgemm', medianMs: numpy.medianMs, gflops: flops / numpy.medianMs / 1e6 });
      if (numpy.relativeError !== undefined) extras[`relativeErrorVsNumpy_${size}_${workers}`] = numpy.relativeError;
    }
    rows.push(row);
    await pool.close();
  }
}

function numpyFor(expp: ComplexMatrix, distance: Float64Array, size: number, workers: number, h: ComplexMatrix | undefined): NumpyResult {
  const key = `${size}/${workers}`;
  const cached = numpyCache.get(key);
  if (cached !== undefined) return cached;
  const dir = mkdtempSync(join(tmpdir(), 'hpair-bench-'));
  try {
    writeFileSync(join(dir, 'expp.npy'), encodeComplexMatrixNpy(expp));
    writeFileSync(join(dir, 'distance.npy'), encodeFloat64VectorNpy(distance));
    if (h !== undefined) writeFileSync(join(dir, 'h.npy'), encodeComplexMatrixNpy(h));
    const result = numpyHermitian(dir, workers, size >= 4096 ? 2 : 5, h !== undefined);
    numpyCache.set(key, result);
    return result;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

// The small-job round trip through a warm pool (it runs inline when that is cheaper than waking workers).
{
  const { expp, distance } = demoProblem(64, 64);
  const pool = createPool({ kernel });
  await pool.ready();
  const out = createComplexMatrix(63, 63);
  const ms = await median('round trip 64', async () => {
    await pool.hermitian(expp, distance, { out });
    sink += out.data[0];
  }, 1000, 200);
  extras.smallJob = { n: 64, m: 64, medianMs: ms, inline: pool.stats().inline > 0, kernel: pool.kernel };
  rows.push({ what: 'round trip, warm pool', n: 64, m: 64, workers: pool.size, kernel: pool.kernel, medianMs: ms, gflops: hermitianFlops(64, 64) / ms / 1e6 });
  await pool.close();
}

// Abort latency and event-loop delay during a large job.
{
  const size = values.full === true ? 4096 : 2048;
  const { expp, distance } = demoProblem(size, size);
  const pool = createPool({ kernel, inlineFlops: 0 });
  await pool.ready();
  const latencies: number[] = [];
  for (let run = 0; run < 5; run++) {
    const controller = new AbortController();
    const job = pool.hermitian(expp, distance, { signal: controller.signal }).catch((error: unknown) => error);
    await new Promise((resolve) => setTimeout(resolve, 100 + 37 * run));
    const aborted = performance.now();
    controller.abort();
    await job;
    latencies.push(performance.now() - aborted);
  }
  latencies.sort((a, b) => a - b);
  const histogram = monitorEventLoopDelay({ resolution: 5 });
  histogram.enable();
  await pool.hermitian(expp, distance);
  histogram.disable();
  extras.abort = { n: size, medianMs: latencies[2], maxMs: latencies[4] };
  extras.eventLoopDelay = { n: size, p50Ms: histogram.percentile(50) / 1e6, p99Ms: histogram.percentile(99) / 1e6, maxMs: histogram.max / 1e6 };
  await pool.close();
}

const table = rows.map((row) => ({
  what: row.what,
  'N = M': row.n,
  workers: row.workers,
  kernel: row.kernel,
  'median ms': row.medianMs.toFixed(row.medianMs < 10 ? 3 : 1),
  'GFLOP/s': row.gflops.toFixed(2),
  'vs 1 worker': row.speedup === undefined ? '' : `${row.speedup.toFixed(2)}×`,
  'vs numpy': row.vsNumpy === undefined ? '' : `${row.vsNumpy.toFixed(2)}×`,
  'peak RSS MB': row.peakRssMB === undefined ? '' : row.peakRssMB.toFixed(0),
  'budget MB': row.budgetMB === undefined ? '' : row.budgetMB.toFixed(0),
}));
console.table(table);
console.log(JSON.stringify(extras, null, 2));
writeFileSync(outFile, `${JSON.stringify({ rows, ...extras, sink }, null, 2)}\n`);
console.log(`results written to ${outFile}`);
