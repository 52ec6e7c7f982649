#!/usr/bin/env node
import { readFile, realpath } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { checksum, demoProblem } from '../io/demo-problem.js';
import { complexMatrixBytes, complexNpyHeader, parseComplexMatrixNpy, parseFloat64VectorNpy } from '../io/npy.js';
import { hermitianFlops } from '../kernel/hermitian-size.js';
import type { ComplexMatrix } from '../shared/complex-matrix.js';
import { HpairError, type HpairErrorCode } from '../shared/errors.js';
import type { KernelChoice, KernelVariant } from '../kernel/kernel-names.js';
import { createPool } from '../workers/create-pool.js';
import type { PoolOptions } from '../workers/options.js';
import { Pool } from '../workers/pool.js';
import { computeOutOfCore, outOfCoreReason } from '../blocks/cli.js';
import { writeFileAtomic } from './atomic-write.js';
import { progressBar } from './progress-bar.js';

/** The demo's default N = M: a few seconds of work on two cores (2.6 s at 45 GFLOP/s). */
const DEMO_SIZE = 3072;

const USAGE = `usage:
  hpair compute --expp E.npy --distance D.npy --out H.npy [--max-memory BYTES] [--workers W] [--kernel K] [--json]
    --max-memory (e.g. 64M, 2G): compute H out of core, block by block within this budget, resumable;
    also chosen by itself when H would not fit in memory
  hpair demo [--n N] [--m M] [--workers W] [--kernel K] [--json]    (N, M default ${DEMO_SIZE})
  hpair cluster worker … | hpair cluster submit …     (see hpair cluster --help)
  K: auto (default) | native | native-avx512 | native-avx2 | wasm-relaxed-simd | wasm-simd | js
  hpair --help`;

/** Codes that mean "the input or the command line is wrong": exit 2. Anything else is exit 1. */
const USER_ERRORS = new Set<HpairErrorCode>([
  'INVALID_ARGUMENT',
  'SHAPE_MISMATCH',
  'EMPTY_INPUT',
  'NON_FINITE',
  'ZERO_DISTANCE',
  'BAD_NPY',
  'IO_ERROR',
  'TOO_LARGE',
]);

class UsageError extends Error {}

interface RunSummary {
  n: number;
  m: number;
  workers: number;
  /** The kernel that computed H (a job may fall back from the pool's). */
  kernel: KernelVariant;
  /** Why no native kernel ran, when none did. */
  whyNotNative?: string;
  seconds: number;
  gflops: number;
  checksum: number;
}

async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  if (command === undefined) throw new UsageError('missing command');
  if (command === '--help' || command === '-h' || command === 'help') {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  if (command === 'compute') return compute(rest);
  if (command === 'demo') return demo(rest);
  if (command === 'cluster') return (await import('../cluster/cli.js')).clusterCommand(rest);
  throw new UsageError(`unknown command '${command}'`);
}

function options(args: string[], spec: Record<string, { type: 'string' | 'boolean' }>): Record<string, string | boolean | undefined> {
  try {
    return parseArgs({ args, options: spec, strict: true, allowPositionals: false }).values;
  } catch (error) {
    throw new UsageError((error as Error).message.split('\n')[0]);
  }
}

function positiveInteger(value: string | boolean | undefined, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  const parsed = Number(value);
  if (typeof value !== 'string' || !/^\d+$/.test(value) || !Number.isSafeInteger(parsed) || parsed < 1) {
    throw new UsageError(`--${name} must be a positive integer, got '${String(value)}'`);
  }
  return parsed;
}

async function compute(args: string[]): Promise<void> {
  const values = options(args, {
    expp: { type: 'string' },
    distance: { type: 'string' },
    out: { type: 'string' },
    workers: { type: 'string' },
    kernel: { type: 'string' },
    json: { type: 'boolean' },
    'max-memory': { type: 'string' },
  });
  for (const name of ['expp', 'distance', 'out']) {
    if (typeof values[name] !== 'string' || values[name] === '') throw new UsageError(`compute needs --${name} FILE`);
  }
  const [exppPath, distancePath, outPath] = [values.expp, values.distance, values.out] as string[];
  const workers = positiveInteger(values.workers, 'workers', 0) || undefined;
  await refuseToOverwriteInputs(outPath, [exppPath, distancePath]);
  const [maxMemory, kernel] = [values['max-memory'], values.kernel] as Array<string | undefined>;
  const outOfCore = await outOfCoreReason(exppPath, maxMemory, kernel, workers);
  if (outOfCore !== undefined) {
    return computeOutOfCore({ expp: exppPath, distance: distancePath, out: outPath, maxMemory, reason: outOfCore, workers, kernel, json: values.json === true });
  }
  const expp = parseComplexMatrixNpy(await readInput(exppPath, 'expp'));
  const distance = parseFloat64VectorNpy(await readInput(distancePath, 'distance'));
  const { h, summary } = await run(expp, distance, { workers, kernel: values.kernel }, values.json === true);
  try {
    await writeFileAtomic(outPath, [complexNpyHeader([h.rows, h.cols]), complexMatrixBytes(h)]);
  } catch (error) {
    throw new HpairError('IO_ERROR', `cannot write --out ${outPath}: ${(error as Error).message}`, { cause: error });
  }
  report(summary, values.json === true, `wrote ${outPath}`);
}

async function demo(args: string[]): Promise<void> {
  const values = options(args, { n: { type: 'string' }, m: { type: 'string' }, workers: { type: 'string' }, kernel: { type: 'string' }, json: { type: 'boolean' } });
  const n = positiveInteger(values.n, 'n', DEMO_SIZE);
  const m = positiveInteger(values.m, 'm', DEMO_SIZE);
  const workers = positiveInteger(values.workers, 'workers', 0) || undefined;
  const pool = createPool(poolOptions({ workers, kernel: values.kernel })); // bad --kernel fails before the demo is built
  const { expp, distance } = demoProblem(n, m);
  const { summary } = await run(expp, distance, pool, values.json === true);
  report(summary, values.json === true, 'demo: plane-wave phases over a seeded layout');
}

function poolOptions({ workers, kernel }: { workers: number | undefined; kernel: string | boolean | undefined }): PoolOptions {
  const options: PoolOptions = {};
  if (workers !== undefined) options.workers = workers;
  if (typeof kernel === 'string') options.kernel = kernel as KernelChoice;
  return options;
}

async function run(
  expp: ComplexMatrix,
  distance: Float64Array,
  poolOrOptions: Pool | { workers: number | undefined; kernel: string | boolean | undefined },
  json: boolean,
): Promise<{ h: ComplexMatrix; summary: RunSummary }> {
  const pool = poolOrOptions instanceof Pool ? poolOrOptions : createPool(poolOptions(poolOrOptions));
  try {
    await pool.ready(); // start-up is not compute time
    const bar = progressBar(process.stdout.isTTY === true && !json);
    const started = performance.now();
    const h = await pool.hermitian(expp, distance, bar.onProgress === undefined ? {} : { onProgress: bar.onProgress });
    bar.finish();
    const seconds = (performance.now() - started) / 1000;
    const flops = hermitianFlops(expp.rows, expp.cols);
    return {
      h,
      summary: {
        n: expp.rows,
        m: expp.cols,
        workers: pool.size,
        kernel: h.kernel,
        ...(h.kernel.startsWith('native') ? {} : { whyNotNative: pool.whyNotNative ?? `the job fell back to ${h.kernel}` }),
        seconds,
        gflops: flops / seconds / 1e9,
        checksum: checksum(h),
      },
    };
  } finally {
    await pool.close();
  }
}

function report(summary: RunSummary, json: boolean, what: string): void {
  if (json) {
    process.stdout.write(`${JSON.stringify(summary)}\n`);
    return;
  }
  const { n, m, workers, seconds, gflops } = summary;
  process.stdout.write(
    `${what}\n` +
      `  size      N = ${n}, M = ${m}  →  H is ${Math.max(0, n - 1)}×${Math.max(0, n - 1)}\n` +
      `  workers   ${workers}\n` +
      `  kernel    ${summary.kernel}${summary.whyNotNative === undefined ? '' : ` (not native: ${summary.whyNotNative})`}\n` +
      `  compute   ${seconds.toFixed(3)} s  (${gflops.toFixed(2)} GFLOP/s useful)\n` +
      `  checksum  ${summary.checksum.toPrecision(17)}\n`,
  );
}

async function readInput(path: string, name: string): Promise<Uint8Array> {
  try {
    return await readFile(path);
  } catch (error) {
    const reason = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
    throw new HpairError('IO_ERROR', `cannot read --${name} ${path}: ${reason}`, { cause: error });
  }
}

async function refuseToOverwriteInputs(outPath: string, inputs: string[]): Promise<void> {
  const resolvedOut = await realpath(outPath).catch(() => undefined);
  if (resolvedOut === undefined) return;
  for (const input of inputs) {
    if ((await realpath(input).catch(() => undefined)) === resolvedOut) {
      throw new UsageError(`--out ${outPath} is one of the inputs; refusing to overwrite it`);
    }
  }
}

main(process.argv.slice(2)).then(
  () => undefined,
  (error: unknown) => {
    const oneLine = (text: string): string => text.replace(/\s*\n\s*/g, ' ');
    if (error instanceof UsageError) {
      process.stderr.write(`hpair: ${oneLine(error.message)} (see hpair --help)\n`);
      process.exitCode = 2;
    } else if (error instanceof HpairError && USER_ERRORS.has(error.code)) {
      process.stderr.write(`hpair: ${oneLine(error.message)}\n`);
      process.exitCode = 2;
    } else {
      const message = error instanceof Error ? error.message : String(error);
      process.stderr.write(`hpair: unexpected failure: ${oneLine(message)}\n`);
      process.exitCode = 1;
    }
  },
);
