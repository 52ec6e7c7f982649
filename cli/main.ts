#!/usr/bin/env node
import { isatty } from 'node:tty';
import { open, stat } from 'node:fs/promises';
import { checksum, demoProblem } from '../kernel/demo-problem.js';
import { complexMatrixBytes, complexNpyHeader } from '../io/npy.js';
import { isZip } from '../io/npz.js';
import { hermitianFlops } from '../kernel/hermitian-size.js';
import type { ComplexMatrix } from '../shared/complex-matrix.js';
import { HpairError } from '../shared/errors.js';
import { KERNEL_VARIANTS, type Accuracy, type KernelChoice, type KernelVariant } from '../kernel/kernel-names.js';
import { createPool } from '../workers/create-pool.js';
import type { PoolOptions } from '../workers/options.js';
import type { Pool } from '../workers/pool.js';
import { about, CliFailure, errnoText, toFailure, usage } from './errors.js';
import { checkInputHeaders, inputSpec, loadDistance, loadExpp, readInputs, type InputSpec } from './input.js';
import { isStdout, refuseInputAsOutput, resolveOut, writeOut } from './output.js';
import { computeOutOfCore, outOfCoreReason } from './compute-out-of-core.js';
import { progressBar } from './progress-bar.js';
import { handleSignals, onSignal } from './signals.js';
import { packageVersion } from './version.js';
import { didYouMean, kernelChoices, parseCommand, type CommandSpec } from './help.js';
import { doctorCommand } from './doctor.js';

/** The demo's default N = M: 116 GFLOP, about a second on two cores with a native kernel and several with WebAssembly (`hpair demo --json` says how long here). */
const DEMO_SIZE = 3072;
/** How long to wait for the other end of a FIFO, by default (seconds). */
const FIFO_TIMEOUT = 30;

const USAGE = `usage:
  hpair compute --expp E --distance D --out H.npy [--max-memory BYTES] [--workers W] [--kernel K] [--accuracy A] [--fifo-timeout S] [--json]
  hpair demo [--n N] [--m M] [--workers W] [--kernel K] [--accuracy A] [--json]    (N, M default ${DEMO_SIZE})
  hpair doctor [--json]                                 what runs here, and why not
  hpair cluster worker … | hpair cluster submit …     (see hpair cluster --help)
  hpair verify H.npy [--json]    (an output written block by block, against H.npy.manifest.json; exit 2 names bad blocks)
  hpair COMMAND --help | hpair help COMMAND            one command's options
  hpair --help | -h | --version | -v
  --max-memory (e.g. 64M, 2G): compute H out of core, block by block within this budget, resumable;
    also chosen by itself when H would not fit in memory (needs .npy files for E and D, and a file for H)
  E, D: a .npy file, or a .npz archive (FILE.npz:KEY picks one of several arrays); FIFOs welcome
  H.npy: a file (replaced atomically, through symlinks), a FIFO, a device, or - for stdout
  K: auto (default) | native | ${KERNEL_VARIANTS.join(' | ')}
  A: default | compensated (each entry as if in twice the working precision; not with --kernel js)
  S: seconds to wait for a FIFO's writer (inputs) or reader (--out); default ${FIFO_TIMEOUT}`;

const ACCURACY_HELP = '  --accuracy A      default | compensated (each entry as if in twice the working precision, rounded once;\n                    native and wasm kernels, not js)';

const KERNEL_HELP = `  --kernel K        ${kernelChoices(20)}  (hpair doctor lists which run here)`;

const COMPUTE: CommandSpec = {
  command: 'compute',
  help: `usage: hpair compute --expp E --distance D --out H.npy [options]
Computes H from expp (N×M complex) and distance (M real) and writes it as an (N−1)×(N−1) complex .npy.
  --expp E          a .npy file, or FILE.npz:KEY (KEY may be omitted for a one-array archive); a FIFO works
  --distance D      the same, M real values (none zero)
  --out H.npy       a file (replaced atomically, through symlinks), a FIFO, a device, or - for stdout
  --max-memory B    compute out of core within B bytes (e.g. 64M, 2G), block by block, resumable; chosen by
                    itself when H would not fit in memory (needs .npy files for E and D, and a file for H)
  --workers W       worker threads (default: the CPUs available)
${KERNEL_HELP}
${ACCURACY_HELP}
  --fifo-timeout S  seconds to wait for a FIFO's writer (inputs) or reader (--out); default ${FIFO_TIMEOUT}
  --json            one JSON line for the summary, and for an error
  -h, --help        this help`,
  options: {
    expp: { type: 'string' },
    distance: { type: 'string' },
    out: { type: 'string' },
    workers: { type: 'string' },
    kernel: { type: 'string' },
    accuracy: { type: 'string' },
    'fifo-timeout': { type: 'string' },
    json: { type: 'boolean' },
    'max-memory': { type: 'string' },
  },
};

const DEMO: CommandSpec = {
  command: 'demo',
  help: `usage: hpair demo [options]
Computes H for a seeded plane-wave problem and prints the time, the rate and a checksum.
  --n N             rows of expp (H is (N−1)×(N−1)); default ${DEMO_SIZE}
  --m M             columns of expp; default ${DEMO_SIZE}
  --workers W       worker threads (default: the CPUs available)
${KERNEL_HELP}
${ACCURACY_HELP}
  --json            one JSON line for the summary, and for an error
  -h, --help        this help`,
  options: { n: { type: 'string' }, m: { type: 'string' }, workers: { type: 'string' }, kernel: { type: 'string' }, accuracy: { type: 'string' }, json: { type: 'boolean' } },
};

/** The commands, for `hpair help COMMAND` and for suggestions. */
const COMMANDS = ['compute', 'demo', 'doctor', 'verify', 'cluster', 'help'];

interface RunSummary {
  n: number;
  m: number;
  workers: number;
  /** The kernel that computed H (a job may fall back from the pool's). */
  kernel: KernelVariant;
  /** How its entries were summed (the pool's `accuracy`). */
  accuracy: Accuracy;
  /** Why no native kernel ran, when none did. */
  whyNotNative?: string;
  seconds: number;
  gflops: number;
  checksum: number;
}

/**
 * Where text goes. With `--out -` stdout carries the .npy and nothing else: the summary and errors,
 * JSON or not, go to stderr. Otherwise the summary (and, with --json, errors) go to stdout.
 */
interface Channels {
  readonly json: boolean;
  readonly dataOnStdout: boolean;
}

/** Decided from the raw arguments, so that even a command line that does not parse reports in the right form. */
function channels(argv: readonly string[]): Channels {
  const json = argv.includes('--json');
  const dataOnStdout =
    argv[0] === 'compute' &&
    argv.some((arg, i) => (arg === '--out' && isStdout(argv[i + 1] ?? '')) || (arg.startsWith('--out=') && isStdout(arg.slice(6))));
  return { json, dataOnStdout };
}

function textStream(io: Channels): NodeJS.WriteStream {
  return io.dataOnStdout ? process.stderr : process.stdout;
}

function reportFailure(failure: CliFailure, io: Channels): void {
  if (io.json) textStream(io).write(`${failure.json()}\n`);
  else process.stderr.write(`hpair: ${failure.text}\n`);
}

async function main(argv: string[], io: Channels): Promise<void> {
  const [command, ...rest] = argv;
  if (command === undefined) throw usage('missing command');
  if (command === '--help' || command === '-h') {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  if (command === '--version' || command === '-v') {
    process.stdout.write(`${packageVersion()}\n`);
    return;
  }
  if (command === 'help') {
    // `hpair help compute` is `hpair compute --help`; `hpair help cluster submit` too.
    if (rest.length === 0) {
      process.stdout.write(`${USAGE}\n`);
      return;
    }
    return main([...rest, '--help'], io);
  }
  if (command === 'compute') return compute(rest, io);
  if (command === 'demo') return demo(rest, io);
  if (command === 'doctor') return doctorCommand(rest);
  if (command === 'cluster') return (await import('./cluster.js')).clusterCommand(rest);
  if (command === 'verify') return (await import('./verify.js')).verifyCommand(rest);
  throw usage(`unknown ${command.startsWith('-') ? 'option' : 'command'} '${command}'${didYouMean(command, command.startsWith('-') ? ['--help', '--version'] : COMMANDS)}`);
}

/** The command's options, or undefined when it printed its help (exit 0). */
function options(args: string[], spec: CommandSpec): Record<string, string | boolean | undefined> | undefined {
  return parseCommand(args, spec, usage);
}

function positiveInteger(value: string | boolean | undefined, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  const parsed = Number(value);
  if (typeof value !== 'string' || !/^\d+$/.test(value) || !Number.isSafeInteger(parsed) || parsed < 1) {
    throw usage(`--${name} must be a positive integer, got '${String(value)}'`);
  }
  return parsed;
}

function positiveSeconds(value: string | boolean | undefined, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  const parsed = Number(value);
  if (typeof value !== 'string' || !/^\d+(\.\d+)?$/.test(value) || !(parsed > 0) || parsed > 2 ** 31 / 1000) {
    throw usage(`--${name} must be a number of seconds > 0, got '${String(value)}'`);
  }
  return parsed;
}

async function compute(args: string[], io: Channels): Promise<void> {
  const values = options(args, COMPUTE);
  if (values === undefined) return;
  for (const name of ['expp', 'distance', 'out']) {
    if (typeof values[name] !== 'string' || values[name] === '') throw usage(`compute needs --${name} FILE`);
  }
  const [exppArg, distanceArg, outArg] = [values.expp, values.distance, values.out] as string[];
  const workers = positiveInteger(values.workers, 'workers', 0) || undefined;
  const fifoTimeoutMs = positiveSeconds(values['fifo-timeout'], 'fifo-timeout', FIFO_TIMEOUT) * 1000;

  // Everything that can be checked before the work is: the output first, so a typo fails at once.
  const target = await resolveOut(outArg);
  const specs = [await inputSpec('expp', exppArg), await inputSpec('distance', distanceArg)] as const;
  refuseInputAsOutput(target, specs);
  // Out of core (blocks written into a preallocated file, resumable) when asked, or when H would not fit.
  const maxMemory = values['max-memory'] as string | undefined;
  // Positioned reads need regular files (a FIFO cannot be read twice, nor opened to peek without a writer).
  const plainNpy =
    target.kind === 'file' &&
    (await Promise.all(specs.map(async (spec) => spec.key === undefined && (await stat(spec.file).catch(() => undefined))?.isFile() === true && !(await startsLikeZip(spec.file))))).every(Boolean);
  const outOfCore = plainNpy || maxMemory !== undefined ? await outOfCoreReason(exppArg, maxMemory, values.kernel as string | undefined, workers) : undefined;
  if (outOfCore !== undefined) {
    if (!plainNpy) {
      // A missing input is reported as the in-memory path reports it, not as a usage error.
      for (const spec of specs) {
        await stat(spec.file).catch((error: unknown) => Promise.reject(new CliFailure('IO_ERROR', `cannot read it: ${errnoText(error)}`, 2, spec.flag, spec.arg, { cause: error })));
      }
      throw usage('--max-memory needs --expp and --distance as .npy files (not .npz archives or FIFOs) and --out as a file');
    }
    // It handles its own signals: finish or abandon the block in flight, keep the journal.
    return computeOutOfCore({ expp: exppArg, distance: distanceArg, out: target.path, maxMemory, reason: outOfCore, workers, kernel: values.kernel as string | undefined, accuracy: values.accuracy as string | undefined, json: values.json === true });
  }
  handleSignals((failure) => reportFailure(failure, io));
  const pool = createPool(poolOptions({ workers, kernel: values.kernel, accuracy: values.accuracy })); // starts its workers while we read
  try {
    const [exppBytes, distanceBytes] = await readInputs(specs, fifoTimeoutMs);
    await checkInputHeaders(specs, [exppBytes, distanceBytes]); // before a .npz entry is inflated
    const expp = await loadExpp(specs[0], exppBytes);
    const distance = await loadDistance(specs[1], distanceBytes);
    checkShapes(expp, distance, specs[0], specs[1]);
    const { h, summary } = await run(expp, distance, pool, io).catch((error: unknown) => Promise.reject(blame(error, specs)));
    await writeOut(target, [complexNpyHeader([h.rows, h.cols]), complexMatrixBytes(h)], fifoTimeoutMs);
    report(summary, io, `wrote ${target.kind === 'stdout' ? 'standard output' : target.shown}`);
  } finally {
    await pool.close();
  }
}

/** Whether a regular file begins as a ZIP archive (.npz), which positioned reads of a .npy cannot serve. */
async function startsLikeZip(path: string): Promise<boolean> {
  const file = await open(path, 'r').catch(() => undefined);
  if (file === undefined) return false;
  try {
    const head = new Uint8Array(4);
    const { bytesRead } = await file.read(head, 0, 4, 0);
    return isZip(head.subarray(0, bytesRead));
  } finally {
    await file.close();
  }
}

/** Shape errors named by flag and file, before any work (the pool would report them without either). */
function checkShapes(expp: ComplexMatrix, distance: Float64Array, exppSpec: InputSpec, distanceSpec: InputSpec): void {
  if (expp.rows < 1) {
    throw about('expp', exppSpec.arg, new HpairError('EMPTY_INPUT', 'it has no rows (N = 0); H needs row N−1 as its reference row'));
  }
  if (distance.length !== expp.cols) {
    throw about(
      'distance',
      distanceSpec.arg,
      new HpairError('SHAPE_MISMATCH', `it has length ${distance.length} but --expp ${exppSpec.arg} has M = ${expp.cols} columns`),
    );
  }
}

/** The pool's input errors start with the input's name ("expp[4, 2] is…", "distance[5] is 0"): name its flag and file. */
function blame(error: unknown, specs: readonly InputSpec[]): unknown {
  if (!(error instanceof HpairError)) return error;
  const spec = specs.find((candidate) => new RegExp(`^${candidate.flag}\\b`).test(error.message));
  return spec === undefined ? error : about(spec.flag, spec.arg, error);
}

async function demo(args: string[], io: Channels): Promise<void> {
  const values = options(args, DEMO);
  if (values === undefined) return;
  handleSignals((failure) => reportFailure(failure, io));
  const n = positiveInteger(values.n, 'n', DEMO_SIZE);
  const m = positiveInteger(values.m, 'm', DEMO_SIZE);
  const workers = positiveInteger(values.workers, 'workers', 0) || undefined;
  const pool = createPool(poolOptions({ workers, kernel: values.kernel, accuracy: values.accuracy })); // bad --kernel fails before the demo is built
  try {
    const { expp, distance } = demoProblem(n, m);
    const { summary } = await run(expp, distance, pool, io);
    report(summary, io, 'demo: plane-wave phases over a seeded layout');
  } finally {
    await pool.close();
  }
}

function poolOptions({ workers, kernel, accuracy }: { workers: number | undefined; kernel: string | boolean | undefined; accuracy: string | boolean | undefined }): PoolOptions {
  const options: PoolOptions = {};
  if (workers !== undefined) options.workers = workers;
  if (typeof kernel === 'string') options.kernel = kernel as KernelChoice;
  if (typeof accuracy === 'string') options.accuracy = accuracy as Accuracy;
  return options;
}

async function run(expp: ComplexMatrix, distance: Float64Array, pool: Pool, io: Channels): Promise<{ h: ComplexMatrix; summary: RunSummary }> {
  await pool.ready(); // start-up is not compute time
  const flops = hermitianFlops(expp.rows, expp.cols);
  const bar = progressBar(isatty(2) && !io.json, { flops });
  const forget = onSignal(() => bar.finish());
  try {
    const started = performance.now();
    const h = await pool.hermitian(expp, distance, bar.onProgress === undefined ? {} : { onProgress: bar.onProgress });
    const seconds = (performance.now() - started) / 1000;
    return {
      h,
      summary: {
        n: expp.rows,
        m: expp.cols,
        workers: pool.size,
        kernel: h.kernel,
        accuracy: pool.accuracy,
        ...(h.kernel.startsWith('native') ? {} : { whyNotNative: pool.whyNotNative ?? `the job fell back to ${h.kernel}` }),
        seconds,
        gflops: flops / seconds / 1e9,
        checksum: checksum(h),
      },
    };
  } finally {
    bar.finish();
    forget();
  }
}

function report(summary: RunSummary, io: Channels, what: string): void {
  const out = textStream(io);
  if (io.json) {
    out.write(`${JSON.stringify(summary)}\n`);
    return;
  }
  const { n, m, workers, seconds, gflops } = summary;
  out.write(
    `${what}\n` +
      `  size      N = ${n}, M = ${m}  →  H is ${Math.max(0, n - 1)}×${Math.max(0, n - 1)}\n` +
      `  workers   ${workers}\n` +
      `  kernel    ${summary.kernel}${summary.whyNotNative === undefined ? '' : ` (not native: ${summary.whyNotNative})`}\n` +
      `  accuracy  ${summary.accuracy}\n` +
      `  compute   ${seconds.toFixed(3)} s  (${gflops.toFixed(2)} GFLOP/s useful)\n` +
      `  checksum  ${summary.checksum.toPrecision(17)}\n`,
  );
}

const io = channels(process.argv.slice(2));
main(process.argv.slice(2), io).then(
  () => undefined,
  (error: unknown) => {
    const failure = toFailure(error);
    reportFailure(failure, io);
    process.exitCode = failure.exitCode;
  },
);
