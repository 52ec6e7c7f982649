// Command-line options of `npm run bench` (bench/main.ts): parsed strictly, every one listed by --help with
// its default; a bad or unknown option is one line on stderr and exit code 2.
import { availableParallelism } from 'node:os';
import { parseArgs } from 'node:util';
import { kernelStatus, type KernelVariant, type Schedule } from 'hpair';
import type { BlasCoreRequest } from './blas-core.js';
import { KERNEL_VARIANTS } from '../kernel/kernel-names.js';

/** One problem shape of the sweep: N rows of expp (H is (N−1)×(N−1)), M columns. */
export interface Shape {
  n: number;
  m: number;
  /** Which kind of job it stands for: tiny, square, tall (few rows, long M), hwrite (H-write bound), or custom. */
  kind: 'tiny' | 'square' | 'tall' | 'hwrite' | 'custom';
}

export interface BenchOptions {
  full: boolean;
  quick: boolean;
  /** The sweep, in order. */
  shapes: Shape[];
  workers: number[];
  /** Explicit kernel list, or undefined for every supported variant (js only up to JS_MAX_SIZE). */
  kernels: KernelVariant[] | undefined;
  schedules: Schedule[];
  out: string;
  python: boolean;
  memorySizes: number[];
  minSamples: number | undefined;
  timeSeconds: number;
  settleMs: number;
  relaxedFlag: boolean;
  /** Also measure the first kernel with a new H per job (no `out`), as a caller that keeps no buffer does. */
  freshH: boolean;
  /** Which OpenBLAS core the Python peers run (bench/blas-core.ts). */
  blasCore: BlasCoreRequest;
  markdown: boolean;
  /** Each FMA peak probe's run, s; 0: no peak probe. */
  peakSeconds: number;
  /** Re-time the peers in a fresh process per group and check every copy's core and threads (failing the run). */
  peerCheck: boolean;
  /** Least allowance for a peer slower in the run than in its fresh process (a fraction). */
  peerTolerance: number;
}

/** The js kernel is measured by default only up to this size (it runs ~10× slower than the SIMD ones). */
export const JS_MAX_SIZE = 512;
export const QUICK_SIZES = [512, 2048];
export const FULL_SIZES = [256, 512, 1024, 2048, 4096];

const square = (n: number): Shape => ({ n, m: n, kind: 'square' });
const TINY: Shape = { n: 64, m: 64, kind: 'tiny' };
const TALL: Shape = { n: 256, m: 65536, kind: 'tall' };
const HWRITE: Shape = { n: 8192, m: 64, kind: 'hwrite' };
/** The default sweep: one shape of each kind, squares at the quick sizes. */
export const SWEEP_SHAPES: readonly Shape[] = [TINY, ...QUICK_SIZES.map(square), TALL, HWRITE];
export const FULL_SHAPES: readonly Shape[] = [TINY, ...FULL_SIZES.map(square), TALL, HWRITE];
/** --quick: each kind at a size that runs in seconds (a smoke run, not figures to publish). */
export const QUICK_SHAPES: readonly Shape[] = [TINY, square(512), { n: 256, m: 8192, kind: 'tall' }, { n: 2048, m: 64, kind: 'hwrite' }];
const NAMED_SHAPES: Record<string, (full: boolean) => readonly Shape[]> = {
  tiny: () => [TINY],
  square: (full) => (full ? FULL_SIZES : QUICK_SIZES).map(square),
  tall: () => [TALL],
  hwrite: () => [HWRITE],
};

export const shapeName = (shape: { n: number; m: number }): string => (shape.n === shape.m ? `N = M = ${shape.n}` : `N = ${shape.n}, M = ${shape.m}`);
export const shapeKey = (shape: { n: number; m: number }): string => `${shape.n}x${shape.m}`;

const cores = availableParallelism();
const VARIANT_NAMES: readonly KernelVariant[] = KERNEL_VARIANTS;

const OPTIONS_HELP: [flag: string, what: string, fallback: string][] = [
  ['--full', `squares N = M ∈ {${FULL_SIZES.join(', ')}} in the sweep, workers 1…${cores}`, 'off (the defaults below)'],
  ['--quick', `a smoke run: shapes ${QUICK_SHAPES.map(shapeKey).join(', ')}, no peak RSS`, 'off'],
  ['--shapes LIST', 'the sweep: N×M shapes (e.g. 64x64,256x65536) or kinds: tiny (64x64), square, tall (256x65536), hwrite (8192x64)', `${SWEEP_SHAPES.map(shapeKey).join(',')}; with --full squares ${FULL_SIZES.join(',')}`],
  ['--sizes LIST', 'square shapes only: N = M values, comma-separated (instead of --shapes)', ''],
  ['--workers LIST', 'worker counts; the Python peers get as many BLAS threads', `${[...new Set([1, cores])].join(',')}; with --full 1…${cores}`],
  ['--kernels LIST', `hpair variants: ${VARIANT_NAMES.join(', ')}`, `every variant that runs here (js only up to the work of N = M = ${JS_MAX_SIZE}; where one H takes 256 MiB or more, the first only)`],
  ['--schedules LIST', "how the pool deals tiles: dynamic, strided (both: each kernel twice)", 'dynamic (the pool\'s default)'],
  ['--out FILE', 'the JSON record', 'bench-results.json'],
  ['--no-numpy', 'leave out the Python peers (numpy, zherk) and numpy\'s peak RSS', 'peers on when python3 has numpy (zherk: and scipy)'],
  ['--memory-sizes LIST', 'sizes for peak RSS of `hpair compute` vs numpy\'s line; "" for none', 'the sweep\'s squares from 256, plus 4096 (none with --quick)'],
  ['--min-samples N', 'samples per entry, at least', '5 (3 on 1 worker at the work of N = M = 4096 or more)'],
  ['--time S', 'keep sampling a shape × workers group for S seconds past --min-samples', '3'],
  ['--settle MS', 'idle pause when the run switches between hpair and Python (OpenBLAS threads spin ~0.1 s after a call)', '150'],
  ['--no-relaxed-flag', `on Node < 22, do not re-run under --experimental-wasm-relaxed-simd to measure wasm-relaxed-simd`, 're-run when the flag is all it lacks'],
  ['--blas-core CORE', "the peers' OpenBLAS core: auto (time the candidates, keep the fastest), inherit (OPENBLAS_CORETYPE as set), or a name (SkylakeX, Haswell, …)", 'auto'],
  ['--no-fresh-h', 'leave out the row of the first kernel allocating a new H per job (the others reuse one, `out`)', 'on'],
  ['--markdown', 'also print the tables as Markdown', 'off'],
  ['--peak-seconds S', "each run of the FMA peak probe (per ISA, on 1 and on each --workers count of threads at once, best of 3); 0: none", '0.25'],
  ['--no-peer-check', "do not re-time the peers in a fresh process nor fail the run on a peer's core or threads", 'checked'],
  ['--peer-tolerance F', 'least allowance for a peer slower in the run than in a fresh process, as a fraction (the allowance is the larger of this and either side\'s p25–p75 spread over its median)', '0.1'],
  ['-h, --help', 'this text', ''],
];

export const HELP = `npm run bench [-- options]        (or: node dist/bench/main.js [options])

hpair's H kernels against numpy's (A/d) @ A.conj().T and scipy's zherk, interleaved in one run over a sweep
of shapes, each row's executed flop rate as a share of the machine's FMA peak, with peak memory, the warm
small-job round trip, abort latency, event-loop delay and bit-identity across worker counts. The peers are
checked in every run (OpenBLAS core and threads of every copy, time against a fresh process); a failed check
fails the run (exit code 1). Progress on stderr, the tables on stdout, every figure and the host's facts in a
JSON file.

${OPTIONS_HELP.map(([flag, what, fallback]) => `  ${flag.padEnd(20)} ${what}${fallback === '' ? '' : `\n  ${''.padEnd(20)} default: ${fallback}`}`).join('\n')}
`;

export class UsageError extends Error {}

function positiveIntegers(flag: string, text: string, allowEmpty = false): number[] {
  if (allowEmpty && text.trim() === '') return [];
  const values = text.split(',').map((part) => Number(part.trim()));
  if (values.length === 0 || values.some((value) => !Number.isSafeInteger(value) || value < 1)) {
    throw new UsageError(`${flag} wants a comma-separated list of positive integers, got '${text}'`);
  }
  return [...new Set(values)];
}

function number(flag: string, text: string, min: number): number {
  const value = Number(text);
  if (!Number.isFinite(value) || value < min) throw new UsageError(`${flag} wants a number ≥ ${min}, got '${text}'`);
  return value;
}

function parse(argv: string[]) {
  return parseArgs({
    args: argv,
    strict: true,
    allowPositionals: false,
    options: {
      full: { type: 'boolean' },
      quick: { type: 'boolean' },
      shapes: { type: 'string' },
      sizes: { type: 'string' },
      workers: { type: 'string' },
      kernels: { type: 'string' },
      schedules: { type: 'string' },
      out: { type: 'string' },
      'no-numpy': { type: 'boolean' },
      'memory-sizes': { type: 'string' },
      'min-samples': { type: 'string' },
      time: { type: 'string' },
      settle: { type: 'string' },
      'no-relaxed-flag': { type: 'boolean' },
      'no-fresh-h': { type: 'boolean' },
      'blas-core': { type: 'string' },
      markdown: { type: 'boolean' },
      'peak-seconds': { type: 'string' },
      'no-peer-check': { type: 'boolean' },
      'peer-tolerance': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
}

function blasCoreRequest(text: string | undefined): BlasCoreRequest {
  if (text === undefined || text === 'auto') return { kind: 'auto' };
  if (text === 'inherit') return { kind: 'inherit' };
  if (!/^[A-Za-z][A-Za-z0-9]{1,31}$/.test(text)) throw new UsageError(`--blas-core: use auto, inherit or an OpenBLAS core name such as SkylakeX; got '${text}'`);
  return { kind: 'named', name: text };
}

/** Parses argv; throws UsageError (one line) on anything wrong. Returns undefined for --help. */
export function parseOptions(argv: string[]): BenchOptions | undefined {
  let values: ReturnType<typeof parse>['values'];
  try {
    ({ values } = parse(argv));
  } catch (error) {
    throw new UsageError(error instanceof Error ? error.message.split('\n')[0] : String(error));
  }
  if (values.help === true) return undefined;
  const full = values.full === true;
  const quick = values.quick === true;
  if (full && quick) throw new UsageError('--full and --quick exclude each other');
  if (values.sizes !== undefined && values.shapes !== undefined) throw new UsageError('--sizes and --shapes exclude each other');
  let shapes: Shape[];
  if (values.sizes !== undefined) {
    const sizes = positiveIntegers('--sizes', values.sizes);
    if (sizes.some((size) => size < 2)) throw new UsageError('--sizes: N = M must be at least 2');
    shapes = sizes.map(square);
  } else if (values.shapes !== undefined) {
    shapes = parseShapes(values.shapes, full);
  } else {
    shapes = [...(quick ? QUICK_SHAPES : full ? FULL_SHAPES : SWEEP_SHAPES)];
  }
  const sizes = shapes.filter((shape) => shape.n === shape.m).map((shape) => shape.n);
  const workers =
    values.workers !== undefined
      ? positiveIntegers('--workers', values.workers)
      : full
        ? Array.from({ length: cores }, (_, i) => i + 1)
        : [...new Set([1, cores])];
  let kernels: KernelVariant[] | undefined;
  if (values.kernels !== undefined) {
    const names = [...new Set(values.kernels.split(',').map((name) => name.trim()))];
    const unknown = names.filter((name) => !(VARIANT_NAMES as readonly string[]).includes(name));
    if (unknown.length > 0 || names.length === 0) throw new UsageError(`--kernels: unknown '${unknown.join(',')}'; use ${VARIANT_NAMES.join(', ')}`);
    kernels = names as KernelVariant[];
  }
  const schedules = [...new Set((values.schedules ?? 'dynamic').split(',').map((name) => name.trim()))];
  if (schedules.some((name) => name !== 'dynamic' && name !== 'strided')) throw new UsageError(`--schedules: use dynamic, strided; got '${values.schedules ?? ''}'`);
  const memorySizes =
    values['memory-sizes'] !== undefined
      ? positiveIntegers('--memory-sizes', values['memory-sizes'], true)
      : quick
        ? []
        : [...new Set([...sizes.filter((size) => size >= 256), 4096])].sort((a, b) => a - b);
  return {
    full,
    quick,
    shapes,
    workers,
    kernels,
    schedules: schedules as Schedule[],
    out: values.out ?? 'bench-results.json',
    python: values['no-numpy'] !== true,
    memorySizes,
    minSamples: values['min-samples'] === undefined ? undefined : number('--min-samples', values['min-samples'], 1),
    timeSeconds: values.time === undefined ? 3 : number('--time', values.time, 0),
    settleMs: values.settle === undefined ? 150 : number('--settle', values.settle, 0),
    relaxedFlag: values['no-relaxed-flag'] !== true,
    freshH: values['no-fresh-h'] !== true,
    blasCore: blasCoreRequest(values['blas-core']),
    markdown: values.markdown === true,
    peakSeconds: values['peak-seconds'] === undefined ? 0.25 : seconds('--peak-seconds', values['peak-seconds']),
    peerCheck: values['no-peer-check'] !== true,
    peerTolerance: values['peer-tolerance'] === undefined ? 0.1 : number('--peer-tolerance', values['peer-tolerance'], 0),
  };
}

function seconds(flag: string, text: string): number {
  const value = number(flag, text, 0);
  if (value > 10) throw new UsageError(`${flag} wants at most 10 seconds, got '${text}'`);
  return value;
}

/** --shapes: N×M pairs and kind names, in the order given, without repeats. */
function parseShapes(text: string, full: boolean): Shape[] {
  const shapes: Shape[] = [];
  for (const part of text.split(',').map((item) => item.trim())) {
    const named = NAMED_SHAPES[part];
    const pair = /^(\d+)[x×](\d+)$/.exec(part);
    if (named !== undefined) shapes.push(...named(full));
    else if (pair !== null) {
      const [n, m] = [Number(pair[1]), Number(pair[2])];
      if (!Number.isSafeInteger(n) || !Number.isSafeInteger(m) || n < 2 || m < 2) throw new UsageError(`--shapes: N and M must be integers ≥ 2, got '${part}'`);
      const known = [TINY, TALL, HWRITE].find((shape) => shape.n === n && shape.m === m);
      shapes.push({ n, m, kind: known?.kind ?? (n === m ? 'square' : 'custom') });
    } else throw new UsageError(`--shapes: '${part}' is neither N×M (e.g. 256x65536) nor one of ${Object.keys(NAMED_SHAPES).join(', ')}`);
  }
  const unique = new Map<string, Shape>();
  for (const shape of shapes) if (!unique.has(shapeKey(shape))) unique.set(shapeKey(shape), shape);
  return [...unique.values()];
}

/** Variants asked for that cannot run here, with why: the bench refuses them rather than silently skip. */
export function unsupportedKernels(kernels: readonly KernelVariant[]): string[] {
  const status = kernelStatus();
  return kernels.flatMap((kernel) => {
    const entry = status.find((candidate) => candidate.kernel === kernel);
    return entry === undefined || entry.supported ? [] : [`${kernel}: ${entry.reason ?? 'not supported here'}`];
  });
}
