// Command-line options of `npm run bench` (bench/main.ts): parsed strictly, every one listed by --help with
// its default; a bad or unknown option is one line on stderr and exit code 2.
import { availableParallelism } from 'node:os';
import { parseArgs } from 'node:util';
import { kernelStatus, type KernelVariant, type Schedule } from 'hpair';
import type { BlasCoreRequest } from './blas-core.js';

export interface BenchOptions {
  full: boolean;
  sizes: number[];
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
}

/** The js kernel is measured by default only up to this size (it runs ~10× slower than the SIMD ones). */
export const JS_MAX_SIZE = 512;
export const QUICK_SIZES = [512, 2048];
export const FULL_SIZES = [256, 512, 1024, 2048, 4096];

const cores = availableParallelism();
const VARIANT_NAMES: readonly KernelVariant[] = ['native-avx512', 'native-avx2', 'wasm-relaxed-simd', 'wasm-simd', 'js'];

const OPTIONS_HELP: [flag: string, what: string, fallback: string][] = [
  ['--full', `N = M ∈ {${FULL_SIZES.join(', ')}}, workers 1…${cores}`, 'off (quick: the defaults below)'],
  ['--sizes LIST', 'N = M values, comma-separated', `${QUICK_SIZES.join(',')}; with --full ${FULL_SIZES.join(',')}`],
  ['--workers LIST', 'worker counts; the Python peers get as many BLAS threads', `${[...new Set([1, cores])].join(',')}; with --full 1…${cores}`],
  ['--kernels LIST', `hpair variants: ${VARIANT_NAMES.join(', ')}`, `every variant that runs here (js only at N ≤ ${JS_MAX_SIZE})`],
  ['--schedules LIST', "how the pool deals tiles: dynamic, strided (both: each kernel twice)", 'dynamic (the pool\'s default)'],
  ['--out FILE', 'the JSON record', 'bench-results.json'],
  ['--no-numpy', 'leave out the Python peers (numpy, zherk) and numpy\'s peak RSS', 'peers on when python3 has numpy (zherk: and scipy)'],
  ['--memory-sizes LIST', 'sizes for peak RSS of `hpair compute` vs numpy\'s line; "" for none', 'the sizes, plus 4096'],
  ['--min-samples N', 'samples per entry, at least', '5 (3 at N ≥ 4096 on 1 worker)'],
  ['--time S', 'keep sampling a size × workers group for S seconds past --min-samples', '3'],
  ['--settle MS', 'idle pause when the run switches between hpair and Python (OpenBLAS threads spin ~0.1 s after a call)', '150'],
  ['--no-relaxed-flag', `on Node < 22, do not re-run under --experimental-wasm-relaxed-simd to measure wasm-relaxed-simd`, 're-run when the flag is all it lacks'],
  ['--blas-core CORE', "the peers' OpenBLAS core: auto (time the candidates, keep the fastest), inherit (OPENBLAS_CORETYPE as set), or a name (SkylakeX, Haswell, …)", 'auto'],
  ['--no-fresh-h', 'leave out the row of the first kernel allocating a new H per job (the others reuse one, `out`)', 'on'],
  ['--markdown', 'also print the tables as Markdown', 'off'],
  ['-h, --help', 'this text', ''],
];

export const HELP = `npm run bench [-- options]        (or: node dist/bench/main.js [options])

hpair's H kernels against numpy's (A/d) @ A.conj().T and scipy's zherk, interleaved in one run, with peak
memory, the warm small-job round trip, abort latency, event-loop delay and bit-identity across worker
counts. Progress on stderr, the tables on stdout, every figure and the host's facts in a JSON file.

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
  const sizes = values.sizes !== undefined ? positiveIntegers('--sizes', values.sizes) : full ? FULL_SIZES : QUICK_SIZES;
  if (sizes.some((size) => size < 2)) throw new UsageError('--sizes: N = M must be at least 2');
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
    values['memory-sizes'] !== undefined ? positiveIntegers('--memory-sizes', values['memory-sizes'], true) : [...new Set([...sizes, 4096])].sort((a, b) => a - b);
  return {
    full,
    sizes,
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
  };
}

/** Variants asked for that cannot run here, with why: the bench refuses them rather than silently skip. */
export function unsupportedKernels(kernels: readonly KernelVariant[]): string[] {
  const status = kernelStatus();
  return kernels.flatMap((kernel) => {
    const entry = status.find((candidate) => candidate.kernel === kernel);
    return entry === undefined || entry.supported ? [] : [`${kernel}: ${entry.reason ?? 'not supported here'}`];
  });
}
