// The native kernel (kernel/native): the micro-kernels alone, whole problems through hermitianTile against the
// reference port, the memory it may and may not touch, every argument check, the non-finite scan, loading in
// worker threads, and the install script. Each test runs for every path this CPU supports.
import { execFile, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { hermitianReference, type ComplexMatrix } from 'hpair';
import { KERNEL_VARIANTS, NATIVE_PATHS } from '../kernel/kernel-names.js';
import { generatedModule, nativePathsModule, parseNativePaths, pathsHeader, readNativePaths } from '../kernel/native/paths.mjs';
import { loadNativeAddon, type NativeAddon, type NativePathName } from '../kernel/native/addon.js';
import { hugePagesDecision } from '../workers/huge-pages.js';
import { rankedVariants, variantNamed } from '../kernel/variants.js';
import { assertBitIdentical, assertExactlyHermitian, randomProblem, relativeError, seeded } from './helpers/support.js';
import { testIf as testWhen } from './helpers/children.js';

const test = suite('native kernel');

const nativeDir = fileURLToPath(new URL('../../kernel/native/', import.meta.url));
const addonFile = fileURLToPath(new URL('../../kernel/native/build/Release/hpair_native.node', import.meta.url));
const statusFile = path.join(nativeDir, 'build/status.json');

function readStatus(): { built?: boolean; reason?: string } | undefined {
  return existsSync(statusFile) ? (JSON.parse(readFileSync(statusFile, 'utf8')) as { built?: boolean; reason?: string }) : undefined;
}

let addon: NativeAddon | undefined;
let loadError = '';
try {
  addon = createRequire(import.meta.url)(addonFile) as NativeAddon;
} catch (error) {
  loadError = error instanceof Error ? error.message.split('\n')[0] : String(error);
}
const info = addon?.info();
const paths: NativePathName[] = (info?.paths ?? []).filter((p) => p.supported).map((p) => p.name);
const shape = (name: NativePathName) => info!.paths.find((p) => p.name === name)!;

/**
 * `test` where `runs` holds; elsewhere the test is not registered, and it is reported as skipped with its reason
 * (never passed by returning early).
 */
function testIf(runs: boolean, reason: () => string): (name: string, fn: () => unknown) => void {
  return testWhen((name: string, fn: () => unknown) => test(name, fn as () => void), 'native kernel', runs, reason);
}
const noAddon = (): string => `the native addon is not loaded here (${loadError || readStatus()?.reason || 'not built'})`;
const withAddon = testIf(addon !== undefined, noAddon);

/** n·i + j of the first entry (row-major, j ≤ i) of the tile rows [i0, i1) × columns [j0, j1) of h that is not finite, as stored, or −1. */
function firstNonFinite(h: Float64Array, n: number, i0: number, i1: number, j0: number, j1: number): number {
  for (let i = i0; i < i1; i++) {
    for (let j = j0; j < Math.min(j1, i + 1); j++) {
      const at = 2 * (i * n + j);
      if (!(Number.isFinite(h[at]) && Number.isFinite(h[at + 1]))) return i * n + j;
    }
  }
  return -1;
}

function hasCompiler(): boolean {
  const cc = (process.env.CC || 'cc').trim().split(/\s+/);
  const probe = spawnSync(cc[0], [...cc.slice(1), '--version'], { encoding: 'utf8' });
  return !probe.error && probe.status === 0;
}

const noNativeWanted = process.env.HPAIR_NO_NATIVE !== undefined && process.env.HPAIR_NO_NATIVE !== '' && process.env.HPAIR_NO_NATIVE !== '0';
testIf(!noNativeWanted && process.arch === 'x64' && hasCompiler(), () =>
  noNativeWanted ? 'HPAIR_NO_NATIVE is set: the native kernel is not expected here' : `${process.arch}${hasCompiler() ? '' : ' without a C compiler'}: the native kernel is not expected here`,
)('the addon is built and loads wherever it can be (x86-64 with a C compiler)', () => {
  const status = readStatus();
  assert.ok(status, `${statusFile} is missing: install.mjs did not run (npm ci --ignore-scripts?)`);
  assert.ok(status!.built === true, `the native kernel was silently not built: ${status!.reason}`);
  assert.ok(addon, `the built addon does not load: ${loadError}`);
});

test('loadNativeAddon() finds the same addon, or says in one line why not', () => {
  const load = loadNativeAddon();
  if (addon) {
    assert.ok(load.addon, load.reason);
    assert.equal(load.addon!.info(), info);
    assert.is(loadNativeAddon(), load, 'loaded once');
  } else {
    assert.ok(load.addon === undefined && load.reason.length > 0 && !load.reason.includes('\n'), load.reason);
  }
  const saved = process.env.HPAIR_NATIVE_ADDON;
  process.env.HPAIR_NATIVE_ADDON = path.join(tmpdir(), 'no-such-dir', 'hpair_native.node');
  try {
    const missing = loadNativeAddon();
    if (missing.addon !== undefined) assert.unreachable('loaded a file that does not exist');
    else assert.ok(missing.reason.includes('no-such-dir') && !missing.reason.includes('\n'), missing.reason);
  } finally {
    if (saved === undefined) delete process.env.HPAIR_NATIVE_ADDON;
    else process.env.HPAIR_NATIVE_ADDON = saved;
  }
});

// ---- the list of paths: paths.h, and TypeScript's NATIVE_PATHS generated from it ----

/** The names the C preprocessor itself sees in a paths.h text (the addon's own reading of it), or why it failed. */
function preprocessedPaths(text: string): string[] | string {
  const cc = (process.env.CC || 'cc').trim().split(/\s+/);
  const source = `#define HPAIR_PATH(name) hpair_listed name\n${text}\n`;
  const run = spawnSync(cc[0], [...cc.slice(1), '-E', '-P', '-x', 'c', '-'], { input: source, encoding: 'utf8', timeout: 30_000 });
  if (run.error || run.status !== 0) return `${cc.join(' ')} -E: ${run.error?.message ?? run.stderr}`;
  return [...run.stdout.matchAll(/\bhpair_listed\s+(\w+)/g)].map((m) => m[1]);
}

test('NATIVE_PATHS is generated from paths.h: every line, in its order, and the generated module is current', () => {
  const names = readNativePaths(nativeDir);
  assert.equal([...NATIVE_PATHS], names, 'NATIVE_PATHS against paths.h');
  assert.equal(KERNEL_VARIANTS.filter((v) => v.startsWith('native-')), names.map((name) => `native-${name}`), 'the native variants, in the same order');
  const generated = generatedModule(nativeDir);
  assert.is(readFileSync(generated, 'utf8'), nativePathsModule(names), `${generated} is stale: run node kernel/native/paths.mjs`);
  if (hasCompiler()) assert.equal(preprocessedPaths(readFileSync(pathsHeader(nativeDir), 'utf8')), names, 'what the C preprocessor reads in paths.h');
});

test('the paths.h reader takes what the C preprocessor takes, and refuses every line it cannot read', () => {
  const accepted: Array<[string, string[]]> = [
    ['HPAIR_PATH(a)\nHPAIR_PATH(b_2)', ['a', 'b_2']],
    ['  HPAIR_PATH ( neon )  \n\n\tHPAIR_PATH(sve)\t', ['neon', 'sve']],
    ['/* a comment\n * over lines HPAIR_PATH(no) */\nHPAIR_PATH(x) // HPAIR_PATH(not_this)\n// /* not a block\nHPAIR_PATH(y)', ['x', 'y']],
    ['HPAIR_PATH(a) /* HPAIR_PATH(b) */', ['a']],
  ];
  const cpp = hasCompiler();
  for (const [text, names] of accepted) {
    assert.equal(parseNativePaths(text), names, JSON.stringify(text));
    if (cpp) assert.equal(preprocessedPaths(text), names, `the C preprocessor on ${JSON.stringify(text)}`);
  }
  const refused: Array<[string, RegExp]> = [
    ['HPAIR_PATH(a)\n#if 0\nHPAIR_PATH(b)\n#endif', /paths\.h:2: expected one HPAIR_PATH\(name\) per line, found: #if 0/],
    ['HPAIR_PATH(a) HPAIR_PATH(b)', /paths\.h:1: expected one/],
    ['HPAIR_PATH(a);', /paths\.h:1: expected one/],
    ['HPAIR_PATH(2x)', /paths\.h:1: expected one/],
    ['HPAIR_PATH(a-b)', /paths\.h:1: expected one/],
    ['HPAIR_PATH()', /paths\.h:1: expected one/],
    ['/* first */\nHPAIR_PATH(a)\nHPAIR_PATH(b)\nHPAIR_PATH(a)', /paths\.h:4: the path 'a' is listed twice/],
    ['/* HPAIR_PATH(a) */\n', /paths\.h: lists no path/],
    ['', /paths\.h: lists no path/],
    ['HPAIR_PATH(a)\n/* never closed\nHPAIR_PATH(b)', /paths\.h: a comment is never closed/],
  ];
  for (const [text, message] of refused) {
    assert.throws(() => parseNativePaths(text), (error: Error) => message.test(error.message), JSON.stringify(text));
  }
  // The generated module names exactly these paths, as literal types (so a name paths.h does not list is a type error).
  assert.is(nativePathsModule(['a', 'b']).split('\n').filter((line) => line.startsWith('export ')).join('\n'), "export const NATIVE_PATHS = ['a', 'b'] as const;");
  // @ts-expect-error: NativePathName is the union of paths.h's names, not string
  const unlisted: NativePathName = 'no-such-path';
  assert.ok(!(NATIVE_PATHS as readonly string[]).includes(unlisted));
});

withAddon('info() publishes one record per line of paths.h, in its order, and TypeScript derives every native name and size from it', () => {
  assert.equal(info!.paths.map((p) => p.name), [...NATIVE_PATHS], 'info() against paths.h (NATIVE_PATHS)');
  const l2 = info!.cache.l2;
  for (const p of info!.paths) {
    assert.type(p.supported, 'boolean');
    assert.type(p.fastFma, 'boolean');
    for (const key of ['mr', 'nr', 'kc', 'mc', 'mcMaxPanels', 'compRows', 'compCols', 'compKc', 'tile', 'chunk', 'lanes'] as const) {
      assert.ok(Number.isInteger(p[key]) && p[key] > 0, `${p.name}.${key} = ${p[key]}`);
    }
    if (p.supported) assert.is(p.reason, undefined);
    else assert.ok(typeof p.reason === 'string' && p.reason.length > 0 && p.reason.length < 80, `${p.name}: ${p.reason}`);
    // The mc rule, recomputed here from the published inputs: half of L2 per A plane, a multiple of mr.
    let mc = Math.floor(l2 / 2 / (p.kc * 8));
    mc = Math.min(Math.max(mc - (mc % p.mr), p.mr), p.mcMaxPanels * p.mr);
    assert.is(p.mc, mc, `${p.name}: mc`);
    // The summation order is the result's format: one kc and one chunk for every path.
    assert.is(p.kc, info!.paths[0].kc, `${p.name}: kc`);
    assert.is(p.chunk, info!.paths[0].chunk, `${p.name}: chunk`);
    assert.is(p.chunk % p.kc, 0);
    // What TypeScript schedules and reserves for this path comes from this record.
    const variant = variantNamed(`native-${p.name}`);
    assert.is(variant.tile, p.tile, `${p.name}: tile`);
    // Larger edges only when k spans two k blocks or more, at accuracy 'default' (elsewhere the larger tile is slower).
    assert.equal(variant.tileEdges(2 * p.kc, 'default'), [p.tile], `${p.name}: edges at M = ${2 * p.kc}`);
    assert.equal(variant.tileEdges(2 * p.kc + 1, 'default'), [p.tile, 2 * p.tile], `${p.name}: edges at M = ${2 * p.kc + 1}`);
    for (const [N, M, edge] of [[1000, 5000, undefined], [50, 3, undefined], [1000, 30000, 100], [7, 2, 7], [1000, 5000, 2 * p.tile]] as const) {
      const e = Math.min(edge ?? p.tile, N), kc = Math.max(1, Math.min(p.kc, M - 1));
      const pad = (x: number, step: number) => Math.ceil(x / step) * step;
      const [prow, pcol, crow, ccol] = [pad(e, p.mr), pad(e, p.nr), pad(e, p.compRows), pad(e, p.compCols)];
      const plain = 3 * Math.min(p.mc, prow) * kc + 3 * pcol * kc + 3 * (M - 1 > p.chunk ? 2 : 1) * prow * pcol;
      const ckc = Math.max(1, Math.min(p.compKc, M - 1));
      const compensated = 5 * (crow + ccol) * ckc + 4 * crow * ccol;
      assert.is(variant.scratchBytes(N, M, 3, edge).native, 3 * 8 * Math.max(plain, compensated), `${p.name}: scratch at ${N}×${M}`);
    }
  }
  for (const key of ['l1d', 'l2', 'l3'] as const) assert.ok(Number.isInteger(info!.cache[key]) && info!.cache[key] >= 4096, key);
  assert.ok(/^(gcc|clang) /.test(info!.compiler), info!.compiler);
  console.log(`  paths: ${info!.paths.map((p) => `${p.name} ${p.mr}×${p.nr} mc ${p.mc} ${p.supported ? 'runs here' : `(${p.reason})`}${p.fastFma ? '' : ', FMA by library call'}`).join(', ')}; cache ${JSON.stringify(info!.cache)}; ${info!.compiler}`);
});

testIf(addon !== undefined && (NATIVE_PATHS as readonly string[]).includes('portable'), () => (addon ? 'paths.h lists no portable path' : noAddon()))(
  'the portable path runs on every CPU the addon loads on',
  () => {
    const portable = info!.paths.find((p) => (p.name as string) === 'portable');
    assert.ok(portable?.supported, `portable: ${portable?.reason}`);
  },
);

withAddon('auto ranks a native path whose FMA is a library call after WebAssembly, and every fast one before it', () => {
  const ranked = rankedVariants().map((v) => v.name);
  const wasm = ranked.indexOf('wasm-relaxed-simd');
  for (const p of info!.paths) {
    const at = ranked.indexOf(`native-${p.name}`);
    assert.ok(p.fastFma ? at < wasm : at > wasm && at < ranked.indexOf('js'), `${p.name} (fastFma ${p.fastFma}) at ${at} in ${ranked.join(', ')}`);
  }
});

// ---- the micro-kernels alone ----

for (const name of paths) {
  test(`${name}: the micro-kernel alone matches a double loop at every sub-block edge up to kc, storing and accumulating`, () => {
    const { mr, nr, kc } = shape(name);
    const next = seeded(11);
    // the sub-blocks of the summation tree are 32 columns (kernel.h HPAIR_SUB): one short of, at and one past each edge
    const edges = Array.from({ length: kc / 32 }, (_, s) => 32 * (s + 1)).flatMap((e) => [e - 1, e, e + 1]).filter((k) => k <= kc);
    for (const k of [...new Set([0, 1, 2, 3, 4, 5, 7, ...edges])]) {
      for (const accumulate of [false, true]) {
        const a = Float64Array.from({ length: k * mr }, next);
        const b = Float64Array.from({ length: k * nr }, next);
        const c0 = Float64Array.from({ length: mr * nr }, next);
        const c = c0.slice();
        addon!.microKernel(name, k, a, b, c, accumulate);
        for (let i = 0; i < mr; i++) {
          for (let j = 0; j < nr; j++) {
            let sum = accumulate ? c0[i * nr + j] : 0;
            let scale = Math.abs(sum);
            for (let x = 0; x < k; x++) {
              sum += a[x * mr + i] * b[x * nr + j];
              scale += Math.abs(a[x * mr + i] * b[x * nr + j]);
            }
            const got = c[i * nr + j];
            if (!(Math.abs(got - sum) <= 1e-14 * scale)) assert.unreachable(`k ${k} accumulate ${accumulate} (${i}, ${j}): ${got} vs ${sum}`);
            if (k === 0) assert.is(got, accumulate ? c0[i * nr + j] : 0);
          }
        }
      }
    }
  });
}

// ---- the packing alone ----

// Each path packs with its own kernel (vector loads of a row's k run, transposed in registers) and finishes the k
// its vector step leaves with the driver's scalar loop; every packed value must be the scalar formula's IEEE
// operation on the same operands, padding rows +0, and nothing written past the three planes.
for (const name of paths) {
  test(`${name}: packing alone gives the scalar formula's bits (A, B, and both in one pass as on the diagonal; rows not a multiple of the panel, short and odd k blocks, the last columns, hostile values)`, () => {
    const { mr, nr, kc: kcMax } = shape(name);
    const N = 2 * nr + 7, M = 2 * kcMax + 40;
    const next = seeded(23);
    // Ordinary values, and among them −0, subnormals, values whose difference overflows or cancels exactly, and
    // distances that underflow or overflow the quotient, or are zero (padding must stay +0, never 0 / 0).
    const odd = [-0, 0, 5e-324, -2.5e-310, 1.7e308, -1.7e308, 1, 1 + 2 ** -52, 3e-300];
    const expp = Float64Array.from({ length: 2 * N * M }, (_, i) => (i % 13 === 5 ? odd[(i / 13) % odd.length | 0] : next() * 4));
    const distance = Float64Array.from({ length: M }, (_, m) => (m % 11 === 3 ? [1e-300, 7e300, 5e-324, 0.1, 0, -0][(m / 11) % 6 | 0] : 0.25 + Math.abs(next())));
    const ref = 2 * (N - 1) * M;
    let checked = 0;
    /** The three planes of one side at out[at …] against the scalar formula, bit for bit; their length. */
    const expect = (out: Float64Array, at: number, divide: boolean, r0: number, rows: number, kb: number, kc: number, what: string): number => {
      const w = divide ? nr : mr;
      const panels = Math.ceil(rows / w), plane = panels * w * kc;
      for (let p = 0; p < panels; p++) {
        for (let k = 0; k < kc; k++) {
          const m = kb + 1 + k;
          for (let x = 0; x < w; x++) {
            const row = p * w + x;
            let re = 0, im = 0, third = 0;
            if (row < rows) {
              const e = 2 * ((r0 + row) * M + m);
              re = expp[e] - expp[ref + 2 * m];
              im = expp[e + 1] - expp[ref + 2 * m + 1];
              if (divide) {
                re /= distance[m];
                im /= distance[m];
              }
              third = divide ? re - im : re + im;
            }
            const o = p * kc * w + k * w + x;
            for (const [q, want] of [re, im, third].entries()) {
              const got = out[at + q * plane + o];
              if (!Object.is(got, want)) assert.unreachable(`${what}: ${divide ? 'B' : 'A'} plane ${q}, panel ${p}, k ${k}, lane ${x}: ${got} where ${want}`);
              checked++;
            }
          }
        }
      }
      return 3 * plane;
    };
    for (const side of ['a', 'b', 'ab'] as const) {
      const w = side === 'a' ? mr : nr;
      const rowCases = [[0, 1], [0, w - 1], [0, w], [1, w + 1], [3, 2 * w - 1], [0, N - 1], [N - 1 - (w + 3), w + 3], [N - 2, 1], [2, mr * nr + 1 < N - 2 ? mr * nr + 1 : N - 3]];
      const kCases = [[0, 1], [0, 2], [0, 3], [0, 5], [1, 7], [0, kcMax], [kcMax, kcMax], [M - 1 - kcMax, kcMax], [M - 1 - 6, 6], [M - 2, 1]];
      for (const [r0, rows] of rowCases) {
        for (const [kb, kc] of kCases) {
          const what = `${side} rows [${r0}, +${rows}) k block [${kb}, +${kc})`;
          const size = 3 * kc * (side === 'b' ? Math.ceil(rows / nr) * nr : Math.ceil(rows / mr) * mr + (side === 'ab' ? Math.ceil(rows / nr) * nr : 0));
          const out = new Float64Array(size + 64).fill(NaN);
          out.fill(-7.25, size);
          addon!.packPanels!(name, side, expp, distance, N, M, r0, rows, kb, kc, out);
          let at = expect(out, 0, side === 'b', r0, rows, kb, kc, what);
          if (side === 'ab') at += expect(out, at, true, r0, rows, kb, kc, what);
          assert.is(at, size, what);
          if (!out.subarray(size).every((v) => v === -7.25)) assert.unreachable(`${what}: wrote past its planes`);
        }
      }
    }
    assert.ok(checked > 100_000, `${checked} values checked`);
  });
}

withAddon('packPanels checks its arguments', () => {
  const name = paths[0];
  const { mr, kc } = shape(name);
  const N = 5, M = 9;
  const [e, d, out] = [new Float64Array(2 * N * M), new Float64Array(M), new Float64Array(3 * mr * kc)];
  const pack = (...args: unknown[]) => () => (addon!.packPanels as (...x: unknown[]) => void)(...args);
  throwsNative(pack(name, 'c', e, d, N, M, 0, 2, 0, 3, out), TypeError, 'side neither a, b nor ab');
  throwsNative(pack(name, 'abc', e, d, N, M, 0, 2, 0, 3, out), TypeError, 'side abc');
  throwsNative(pack(name, 'ab', e, d, N, M, 0, 2, 0, 3, out.subarray(0, 3 * 3 * (mr + shape(name).nr) - 1)), RangeError, 'out too short for both sides');
  throwsNative(pack(name, 'a', e.subarray(1), d, N, M, 0, 2, 0, 3, out), RangeError, 'expp too short');
  throwsNative(pack(name, 'b', e, d.subarray(1), N, M, 0, 2, 0, 3, out), RangeError, 'distance too short');
  throwsNative(pack(name, 'a', e, d, N, M, 0, 0, 0, 3, out), RangeError, 'no rows');
  throwsNative(pack(name, 'a', e, d, N, M, 3, 2, 0, 3, out), RangeError, 'rows past N − 1');
  throwsNative(pack(name, 'a', e, d, N, M, 0, 2, 0, 0, out), RangeError, 'empty k block');
  throwsNative(pack(name, 'a', e, d, N, M, 0, 2, 6, 3, out), RangeError, 'k block past M − 1');
  throwsNative(pack(name, 'a', e, d, N, M, 0, 2, 0, 3, out.subarray(0, 3 * mr * 3 - 1)), RangeError, 'out too short');
  throwsNative(pack(name, 'a', e, d, N, M, 0, 2, 0, 3.5, out), RangeError, 'kc not an integer');
  assert.ok(out.every((v) => v === 0), 'a failed call wrote nothing');
});

// ---- whole problems through hermitianTile ----

/** H through hermitianTile over a grid of tile×tile tiles of the lower triangle; h starts as NaN everywhere. */
function tiled(name: NativePathName, expp: ComplexMatrix, distance: Float64Array, tile: number): ComplexMatrix {
  const N = expp.rows;
  const n = N - 1;
  const h = new Float64Array(new SharedArrayBuffer(16 * n * n)).fill(NaN);
  for (let i0 = 0; i0 < n; i0 += tile) {
    for (let j0 = 0; j0 <= i0; j0 += tile) {
      const bad = addon!.hermitianTile(name, expp.data, distance, h, N, expp.cols, i0, Math.min(n, i0 + tile), j0, Math.min(n, j0 + tile));
      if (bad !== -1) assert.unreachable(`tile (${i0}, ${j0}) reported a non-finite entry at ${bad}`);
    }
  }
  return { rows: n, cols: n, data: h };
}

const shapes: Array<[number, number]> = [[2, 1], [2, 2], [3, 1], [3, 5], [17, 3], [26, 9], [38, 300], [66, 65], [131, 261]];
for (const name of paths) {
  test(`${name}: whole problems match the reference port; every tile grid gives the same bits`, () => {
    for (const [N, M] of shapes) {
      const { expp, distance } = randomProblem(N, M, N * 31 + M);
      const expected = hermitianReference(expp, distance);
      let first: ComplexMatrix | undefined;
      for (const tile of [1, 5, 13, 64, N]) {
        if (tile === 1 && N > 40) continue; // (N−1)²/2 calls: enough on the small shapes
        const h = tiled(name, expp, distance, tile);
        const error = relativeError(h, expected);
        assert.ok(error <= 1e-12, `N ${N} M ${M} tile ${tile}: relative error ${error}`);
        assertExactlyHermitian(h);
        if (first) assertBitIdentical(h.data, first.data, `N ${N} M ${M}: tile ${tile} against tile 1/5`);
        else first = h;
      }
    }
    // M = 0: an empty sum, so every entry is zero (H starts as NaN), as for M = 1; the mirror's imaginary parts
    // are −0, the conjugate of +0.
    for (const N of [2, 9, 300]) {
      const h = tiled(name, { rows: N, cols: 0, data: new Float64Array(0) }, new Float64Array(0), 64);
      assert.ok(h.data.every((value) => value === 0), `N ${N} M 0: all zeros`);
    }
  });

  // A tile whose packed columns (three planes × kc) fit in L2 takes row blocks of one A plane in L1d; a wider one,
  // info().mc rows (the L2 rule). The row block is a blocking only: both give the bits of every other tile grid.
  const wide = Math.floor(info!.cache.l2 / (3 * shape(name).kc * 8)) + 2 * shape(name).nr;
  testIf(wide <= 1500, () => `this CPU's L2 (${info!.cache.l2} bytes) needs tiles of ${wide} columns, too large to compute here`)(
    `${name}: a tile too wide for its packed columns to fit in L2 (row blocks by the L2 rule) gives the bits of narrow tiles (row blocks in L1d)`,
    () => {
      const N = wide + 3, M = 2 * shape(name).kc + 5;
      const { expp, distance } = randomProblem(N, M, 77);
      const whole = tiled(name, expp, distance, N - 1);
      for (const tile of [29, 64]) assertBitIdentical(tiled(name, expp, distance, tile).data, whole.data, `tile ${tile} against one tile of ${N - 1}`);
      assert.ok(relativeError(whole, hermitianReference(expp, distance)) <= 1e-12);
    },
  );

  test(`${name}: a tile writes exactly its lower-triangle entries and their mirrors inside the window, nothing else`, () => {
    const N = 41;
    const M = 23;
    const n = N - 1;
    const { expp, distance } = randomProblem(N, M, 5);
    const full = tiled(name, expp, distance, n);
    // Tiles on, across, below and wholly above the diagonal; empty ones; odd sizes.
    const tiles: Array<[number, number, number, number]> = [
      [3, 20, 7, 25], [0, n, 0, n], [10, 11, 10, 11], [10, 11, 0, 40], [0, 40, 39, 40], [5, 9, 20, 30], [7, 7, 0, 5], [12, 30, 4, 4], [33, 40, 1, 2],
    ];
    // The whole H, and windows (r0, c0, rows, cols) across the diagonal, off it, thin, single, empty.
    const windows: Array<[number, number, number, number]> = [[0, 0, n, n], [5, 3, 10, 20], [20, 0, 20, 40], [0, 35, 40, 5], [17, 17, 1, 1], [39, 0, 1, 40], [8, 30, 0, 4]];
    for (const [r0, c0, rows, cols] of windows) {
      for (const [i0, i1, j0, j1] of tiles) {
        const h = new Float64Array(2 * rows * cols).fill(NaN);
        const bad = addon!.hermitianTile(name, expp.data, distance, h, N, M, i0, i1, j0, j1, r0, c0, rows, cols);
        assert.is(bad, -1);
        for (let i = r0; i < r0 + rows; i++) {
          for (let j = c0; j < c0 + cols; j++) {
            const lower = i >= i0 && i < i1 && j >= j0 && j < j1 && j <= i;
            const mirror = j >= i0 && j < i1 && i >= j0 && i < j1 && i <= j;
            const at = 2 * ((i - r0) * cols + (j - c0));
            const want = 2 * (i * n + j);
            const where = `window ${[r0, c0, rows, cols]} tile ${[i0, i1, j0, j1]}: (${i}, ${j})`;
            if (lower || mirror) {
              if (h[at] !== full.data[want] || h[at + 1] !== full.data[want + 1]) assert.unreachable(`${where} is ${h[at]}, ${h[at + 1]}`);
            } else if (!Number.isNaN(h[at]) || !Number.isNaN(h[at + 1])) {
              assert.unreachable(`${where} was written`);
            }
          }
        }
      }
    }
  });

  test(`${name}: every tile of a grid, stored through a window, gives that block of H bit for bit`, () => {
    const N = 53;
    const M = 47;
    const n = N - 1;
    const { expp, distance } = randomProblem(N, M, 12);
    const full = tiled(name, expp, distance, 16);
    for (const [r0, c0, rows, cols] of [[3, 9, 30, 17], [40, 0, 12, 52], [0, 30, 25, 22]]) {
      const h = new Float64Array(2 * rows * cols).fill(NaN);
      for (let i0 = 0; i0 < n; i0 += 7) {
        for (let j0 = 0; j0 <= i0; j0 += 7) addon!.hermitianTile(name, expp.data, distance, h, N, M, i0, Math.min(n, i0 + 7), j0, Math.min(n, j0 + 7), r0, c0, rows, cols);
      }
      const block = new Float64Array(2 * rows * cols);
      for (let i = 0; i < rows; i++) block.set(full.data.subarray(2 * ((r0 + i) * n + c0), 2 * ((r0 + i) * n + c0 + cols)), 2 * i * cols);
      assertBitIdentical(h, block, `window ${[r0, c0, rows, cols]}`);
    }
  });

  test(`${name}: an H that overflows from finite inputs is reported (first non-finite entry of the tile)`, () => {
    const N = 40;
    const M = 9;
    const n = N - 1;
    for (const spoil of ['tiny distance', 'huge expp'] as const) {
      const { expp, distance } = randomProblem(N, M, 6);
      if (spoil === 'tiny distance') distance[4] = 1e-310; // subnormal: B = A / d overflows
      else expp.data[2 * (13 * M + 2)] = 1e200; // row 13: its products overflow
      const h = new Float64Array(2 * n * n);
      let reported = 0;
      for (let i0 = 0; i0 < n; i0 += 8) {
        for (let j0 = 0; j0 <= i0; j0 += 8) {
          const [i1, j1] = [Math.min(n, i0 + 8), Math.min(n, j0 + 8)];
          const bad = addon!.hermitianTile(name, expp.data, distance, h, N, M, i0, i1, j0, j1);
          assert.is(bad, firstNonFinite(h, n, i0, i1, j0, j1), `${spoil}, tile (${i0}, ${j0})`);
          if (bad >= 0) reported++;
        }
      }
      assert.ok(reported > 0, `${spoil}: some tile reports the overflow`);
    }
  });

  test(`${name}: over several chunks of k, an overflow in any chunk is reported at the tile's first non-finite entry, and the rest of H is the single-path result`, () => {
    // The last k block combines each micro-tile as soon as its sums are final (after the chunk sums are added), so
    // an overflow from the first chunk, the last chunk or the division must still come out as the tile's first
    // non-finite entry, with tiles that cut micro-tiles (13) and that hold a whole micro-tile row (n).
    const chunk = info!.paths[0].chunk;
    const N = 31;
    const M = 2 * chunk + 3;
    const n = N - 1;
    const clean = randomProblem(N, M, 12);
    const reference = new Float64Array(2 * n * n);
    addon!.hermitianTile(name, clean.expp.data, clean.distance, reference, N, M, 0, n, 0, n);
    for (const spoil of ['huge expp, first chunk', 'huge expp, last chunk', 'tiny distance, last chunk'] as const) {
      const { expp, distance } = randomProblem(N, M, 12);
      if (spoil === 'huge expp, first chunk') expp.data[2 * (17 * M + 5)] = 1e200;
      else if (spoil === 'huge expp, last chunk') expp.data[2 * (17 * M + M - 2)] = 1e200;
      else distance[M - 2] = 1e-310;
      for (const tile of [13, n]) {
        const h = new Float64Array(2 * n * n).fill(Number.NaN);
        let reported = 0;
        for (let i0 = 0; i0 < n; i0 += tile) {
          for (let j0 = 0; j0 <= i0; j0 += tile) {
            const [i1, j1] = [Math.min(n, i0 + tile), Math.min(n, j0 + tile)];
            const bad = addon!.hermitianTile(name, expp.data, distance, h, N, M, i0, i1, j0, j1);
            assert.is(bad, firstNonFinite(h, n, i0, i1, j0, j1), `${spoil}, tile ${tile} at (${i0}, ${j0})`);
            if (bad >= 0) reported++;
          }
        }
        assert.ok(reported > 0, `${spoil}, tile ${tile}: some tile reports the overflow`);
        // Entries whose row and column both avoid the spoiled row are the clean problem's, bit for bit (a huge expp
        // value spoils its row's and column's entries; a tiny distance spoils all of H).
        if (spoil !== 'tiny distance, last chunk') {
          for (let i = 0; i < n; i++) {
            for (let j = 0; j < n; j++) {
              if (i === 17 || j === 17) continue;
              const at = 2 * (i * n + j);
              assert.ok(Object.is(h[at], reference[at]) && Object.is(h[at + 1], reference[at + 1]), `${spoil}, tile ${tile}: H[${i}, ${j}]`);
            }
          }
        }
      }
    }
  });

  test(`${name}: views with a byteOffset over SharedArrayBuffers and WebAssembly memory`, () => {
    const N = 29;
    const M = 37;
    const n = N - 1;
    const { expp, distance } = randomProblem(N, M, 9, false);
    const plain = new Float64Array(2 * n * n);
    addon!.hermitianTile(name, expp.data, distance, plain, N, M, 0, n, 0, n);
    const shared = new SharedArrayBuffer(8 * (3 + 2 * N * M + 5 + M + 7 + 2 * n * n + 11));
    const e = new Float64Array(shared, 8 * 3, 2 * N * M);
    const d = new Float64Array(shared, 8 * (3 + 2 * N * M + 5), M);
    const h = new Float64Array(shared, 8 * (3 + 2 * N * M + 5 + M + 7), 2 * n * n);
    e.set(expp.data);
    d.set(distance);
    addon!.hermitianTile(name, e, d, h, N, M, 0, n, 0, n);
    assertBitIdentical(h, plain, 'SharedArrayBuffer views');
    const memory = new WebAssembly.Memory({ initial: 1, maximum: 4, shared: true });
    const w = new Float64Array(memory.buffer, 8 * 1001, 2 * n * n);
    addon!.hermitianTile(name, e, d, w, N, M, 0, n, 0, n);
    assertBitIdentical(w, plain, 'WebAssembly.Memory view');
    assert.is(new Float64Array(memory.buffer, 8 * 1000, 1)[0], 0, 'the value before the view is untouched');
    assert.is(new Float64Array(memory.buffer, 8 * (1001 + 2 * n * n), 1)[0], 0, 'the value after the view is untouched');
    assert.is(new Float64Array(shared, 8 * (3 + 2 * N * M + 5 + M + 7 + 2 * n * n), 1)[0], 0);
  });
}

testIf(paths.length >= 2, () => (paths.length ? `this CPU runs ${paths.join(' and ')} only` : 'no native path runs here'))(
  'every path gives the same bits as every other, in both accuracies, on every shape, tile edge and window',
  () => {
    // Shapes at the edges of the blocking: N − 1 below, at and above every mr and nr; k = 0, 1, one kc, a kc plus one,
    // one chunk plus one and two chunks plus one (the chunk sums), with tiles that cut micro-tiles and k blocks unevenly.
    const chunk = info!.paths[0].chunk, kc = info!.paths[0].kc;
    const shapes: Array<[number, number]> = [[2, 1], [2, 2], [3, 2], [7, 3], [13, 5], [17, 18], [25, kc + 1], [49, kc + 2], [38, 300], [97, 2 * kc + 3], [20, chunk + 2], [11, 2 * chunk + 2]];
    for (const [N, M] of shapes) {
      const { expp, distance } = randomProblem(N, M, 7 * N + M);
      const n = N - 1;
      for (const compensated of [false, true]) {
        const call = compensated ? addon!.hermitianTileCompensated : addon!.hermitianTile;
        for (const tile of [5, 16, n]) {
          const results = paths.map((name) => {
            const h = new Float64Array(2 * n * n).fill(Number.NaN);
            for (let i0 = 0; i0 < n; i0 += tile) {
              for (let j0 = 0; j0 <= i0; j0 += tile) assert.is(call(name, expp.data, distance, h, N, M, i0, Math.min(n, i0 + tile), j0, Math.min(n, j0 + tile)), -1);
            }
            return h;
          });
          assertExactlyHermitian({ rows: n, cols: n, data: results[0] });
          for (let p = 1; p < paths.length; p++) assertBitIdentical(results[p], results[0], `N ${N} M ${M} tile ${tile} ${compensated ? 'compensated' : 'default'}: ${paths[p]} against ${paths[0]}`);
        }
        // A window straddling the diagonal, filled by one tile that crosses it.
        if (n >= 6) {
          const [r0, c0, rows, cols] = [1, 2, n - 3, n - 4];
          const windows = paths.map((name) => {
            const h = new Float64Array(2 * rows * cols).fill(Number.NaN);
            call(name, expp.data, distance, h, N, M, 1, n, 0, n - 1, r0, c0, rows, cols);
            return h;
          });
          for (let p = 1; p < paths.length; p++) assertBitIdentical(windows[p], windows[0], `N ${N} M ${M} window ${compensated ? 'compensated' : 'default'}: ${paths[p]}`);
        }
      }
    }
  },
);

testIf(paths.includes('avx512') && paths.includes('avx2'), () => (paths.length ? `this CPU runs ${paths.join(' and ')} only` : 'no native path runs here'))('avx512 and avx2 give the same bits', () => {
  for (const [N, M] of [[38, 300], [131, 261], [97, 530]] as Array<[number, number]>) {
    const { expp, distance } = randomProblem(N, M, N + M);
    assertBitIdentical(tiled('avx512', expp, distance, 48).data, tiled('avx2', expp, distance, 48).data, `N ${N} M ${M}`);
  }
  const next = seeded(3);
  const a = Float64Array.from({ length: 192 * 12 }, next);
  const b = Float64Array.from({ length: 192 * 16 }, next);
  // The avx2 micro-tile is a corner of the avx512 one: pack the same values both ways and compare that corner.
  const c512 = new Float64Array(12 * 16);
  addon!.microKernel('avx512', 192, a, b, c512, false);
  const { mr, nr } = shape('avx2');
  const a2 = new Float64Array(192 * mr);
  const b2 = new Float64Array(192 * nr);
  for (let k = 0; k < 192; k++) {
    for (let i = 0; i < mr; i++) a2[k * mr + i] = a[k * 12 + i];
    for (let j = 0; j < nr; j++) b2[k * nr + j] = b[k * 16 + j];
  }
  const c2 = new Float64Array(mr * nr);
  addon!.microKernel('avx2', 192, a2, b2, c2, false);
  for (let i = 0; i < mr; i++) for (let j = 0; j < nr; j++) assert.is(c2[i * nr + j], c512[i * 16 + j]);
});

testIf(hasCompiler(), () => 'no C compiler')(
  'the shared driver at the AVX-512 block sizes (12×16, scalar FMA micro-kernel) gives the bits of every path that runs, both accuracies',
  async () => {
  // kernel/native/check/driver-12x16.c: everything of the avx512 path but its micro-kernel, in plain C on any CPU,
  // against every path of paths.h (each path file built from its name, as the check's header says).
  const dir = mkdtempSync(path.join(tmpdir(), 'hpair-check-'));
  try {
    const cc = (process.env.CC || 'cc').trim().split(/\s+/);
    const exe = path.join(dir, 'driver-12x16');
    const src = path.join(nativeDir, 'src');
    const run = (file: string, args: string[]) =>
      new Promise<{ code: number; out: string }>((resolve) =>
        execFile(file, args, { timeout: 120_000 }, (error, stdout, stderr) =>
          resolve({ code: error ? (typeof error.code === 'number' ? error.code : -1) : 0, out: `${stdout}${stderr}` }),
        ),
      );
    const sources = [path.join(nativeDir, 'check/driver-12x16.c'), ...NATIVE_PATHS.map((name) => path.join(src, `path_${name}.c`)), path.join(src, 'scratch.c'), path.join(src, 'cpu.c')];
    const build = await run(cc[0], [...cc.slice(1), '-O2', '-ffp-contract=off', `-I${src}`, ...sources, '-lm', '-o', exe]);
    assert.is(build.code, 0, build.out);
    const result = await run(exe, []);
    const [ran, ...lines] = result.out.trim().split('\n');
    const compared = ran.replace(/^paths:/, '').trim().split(' ').filter((name) => name !== '' && NATIVE_PATHS.includes(name as NativePathName));
    // The paths that ran are the ones the addon says run here (when it is loaded); where none does, the check says so.
    if (addon) assert.equal(compared, paths, `the check ran ${ran}; info() says ${paths.join(', ')}`);
    assert.is(result.code, compared.length > 0 ? 0 : 4, result.out);
    const outcome = compared.length > 0 ? 'bit-identical' : 'no path to compare with';
    assert.ok(lines.length === 13 && lines.every((line) => line.endsWith(')') && line.includes(`: ${outcome} (H `) && /\(H [0-9a-f]{16}, compensated [0-9a-f]{16}\)$/.test(line)), result.out);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  },
);

// ---- argument checks ----

function throwsNative(call: () => void, kind: ErrorConstructor | TypeErrorConstructor | RangeErrorConstructor, what: string): void {
  try {
    call();
  } catch (error) {
    assert.instance(error, kind, `${what}: ${String(error)}`);
    assert.is((error as { code?: string }).code, 'ERR_HPAIR_NATIVE', what);
    assert.ok(!(kind === Error) || !(error instanceof TypeError || error instanceof RangeError), `${what}: expected a plain Error`);
    return;
  }
  assert.unreachable(`${what}: did not throw`);
}

withAddon('every bad argument throws (TypeError, RangeError or Error, code ERR_HPAIR_NATIVE) without touching memory', () => {
  const name = paths[0];
  const N = 5;
  const M = 4;
  const n = N - 1;
  const e = new Float64Array(2 * N * M).fill(1);
  const d = new Float64Array(M).fill(1);
  const h = new Float64Array(2 * n * n);
  const tile = (...args: unknown[]) => () => (addon!.hermitianTile as (...a: unknown[]) => void)(...args);
  if (name) {
    const ok = [name, e, d, h, N, M, 0, n, 0, n];
    const bad = (index: number, value: unknown) => tile(...ok.slice(0, index), value, ...ok.slice(index + 1));
    throwsNative(bad(0, 'avx3'), TypeError, 'unknown path');
    throwsNative(bad(0, 2), TypeError, 'path not a string');
    throwsNative(bad(1, new Float32Array(2 * N * M)), TypeError, 'expp Float32Array');
    throwsNative(bad(1, Array.from(e)), TypeError, 'expp plain array');
    throwsNative(bad(1, e.subarray(1)), RangeError, 'expp too short');
    throwsNative(bad(2, d.subarray(1)), RangeError, 'distance too short');
    throwsNative(bad(2, new DataView(d.buffer)), TypeError, 'distance DataView');
    throwsNative(bad(3, h.subarray(1)), RangeError, 'h too short');
    throwsNative(bad(3, new BigInt64Array(2 * n * n)), TypeError, 'h BigInt64Array');
    throwsNative(bad(4, 0), RangeError, 'N = 0');
    throwsNative(bad(4, 2.5), RangeError, 'N not an integer');
    throwsNative(bad(4, -1), RangeError, 'N negative');
    throwsNative(bad(4, NaN), RangeError, 'N NaN');
    throwsNative(bad(4, 2 ** 53), RangeError, 'N beyond 2^53 − 1');
    throwsNative(bad(4, 2 ** 31), RangeError, 'N·M past expp (needs 64-bit sizes)');
    throwsNative(bad(4, '5'), TypeError, 'N a string');
    throwsNative(bad(5, 5), RangeError, 'M past expp');
    throwsNative(bad(7, n + 1), RangeError, 'i1 > N − 1');
    throwsNative(tile(name, e, d, h, N, M, 3, 2, 0, n), RangeError, 'i0 > i1');
    throwsNative(bad(9, n + 1), RangeError, 'j1 > N − 1');
    throwsNative(tile(name, e, d, h, N, M, 0, n, 3, 2), RangeError, 'j0 > j1');
    throwsNative(tile(...ok, 0), TypeError, 'a window needs all of r0, c0, rows, cols');
    throwsNative(tile(...ok, 0, 0, 2, '2'), TypeError, 'window cols a string');
    throwsNative(tile(...ok, 3, 0, 2, 2), RangeError, 'window rows past N − 1');
    throwsNative(tile(...ok, 0, 1, 2, n), RangeError, 'window columns past N − 1');
    throwsNative(tile(name, e, d, new Float64Array(2 * 2 * 3 - 1), N, M, 0, n, 0, n, 1, 1, 2, 3), RangeError, 'h shorter than its window');
  }
  throwsNative(tile(), TypeError, 'no arguments');
  for (const p of info!.paths.filter((x) => !x.supported)) {
    throwsNative(tile(p.name, e, d, h, N, M, 0, n, 0, n), Error, `${p.name} is unsupported here`);
    throwsNative(() => addon!.microKernel(p.name, 1, new Float64Array(64), new Float64Array(64), new Float64Array(512), false), Error, `${p.name} microKernel`);
  }
  if (name) {
    const { mr, nr } = shape(name);
    const k = 3;
    const [a, b, c] = [new Float64Array(k * mr), new Float64Array(k * nr), new Float64Array(mr * nr)];
    const ukr = (...args: unknown[]) => () => (addon!.microKernel as (...x: unknown[]) => void)(...args);
    throwsNative(ukr(name, k, a.subarray(1), b, c, false), RangeError, 'a too short');
    throwsNative(ukr(name, k, a, b.subarray(1), c, false), RangeError, 'b too short');
    throwsNative(ukr(name, 193, new Float64Array(193 * mr), new Float64Array(193 * nr), c, false), RangeError, 'k past one k block');
    throwsNative(ukr(name, k, a, b, c.subarray(1), false), RangeError, 'c too short');
    throwsNative(ukr(name, 1.5, a, b, c, false), RangeError, 'k not an integer');
    throwsNative(ukr(name, k, a, b, c, 1), TypeError, 'accumulate not a boolean');
    throwsNative(ukr(name, k, a, b, c), TypeError, 'accumulate missing');
  }
  const scan = (...args: unknown[]) => () => (addon!.scanNonFinite as (...x: unknown[]) => number)(...args);
  throwsNative(scan(e, 0, e.length + 1), RangeError, 'scan end past the array');
  throwsNative(scan(e, 3, 2), RangeError, 'scan start > end');
  throwsNative(scan(new Float32Array(4), 0, 4), TypeError, 'scan Float32Array');
  throwsNative(scan(e, -1, 2), RangeError, 'scan start negative');
  // Still healthy, and nothing was written by the failed calls.
  assert.ok(h.every((v) => v === 0));
  if (name) {
    addon!.hermitianTile(name, e, d, h, N, M, 0, n, 0, n);
    addon!.hermitianTile(name, e, d, h, N, M, n, n, 0, n); // an empty tile is valid
  }
});

// ---- the non-finite scan ----

withAddon('scanNonFinite finds the first NaN/±Infinity at every position and offset, and −1 when there is none', () => {
  const next = seeded(2);
  const values = Float64Array.from({ length: 75 }, () => next() * 1e300);
  values[40] = Number.MAX_VALUE;
  values[41] = -Number.MIN_VALUE;
  values[42] = -0;
  for (let start = 0; start < 20; start++) {
    for (const end of [start, start + 1, 37, 64, 75].filter((x) => x >= start)) {
      assert.is(addon!.scanNonFinite(values, start, end), -1, `clean [${start}, ${end})`);
      for (let at = start; at < end; at++) {
        for (const bad of [NaN, Infinity, -Infinity]) {
          const saved = values[at];
          values[at] = bad;
          if (at + 3 < end) values[at + 3] = NaN; // a later one must not win
          const found = addon!.scanNonFinite(values, start, end);
          values[at] = saved;
          if (at + 3 < end) values[at + 3] = next();
          if (found !== at) assert.unreachable(`[${start}, ${end}) with ${bad} at ${at}: found ${found}`);
        }
      }
    }
  }
  const shared = new Float64Array(new SharedArrayBuffer(8 * 100), 8 * 7, 50);
  shared[49] = Infinity;
  assert.is(addon!.scanNonFinite(shared, 0, 50), 49);
  assert.is(addon!.scanNonFinite(shared, 0, 49), -1);
});

// ---- huge pages ----

/** The kernel's transparent-huge-page mode ('always', 'madvise' or 'never'), or undefined off Linux. */
function thpMode(): string | undefined {
  try {
    return /\[(\w+)\]/.exec(readFileSync('/sys/kernel/mm/transparent_hugepage/enabled', 'utf8'))?.[1];
  } catch {
    return undefined;
  }
}

withAddon('adviseHugePages advises the 2 MiB-aligned part of a buffer, nothing for one too small, and checks its argument', () => {
  const linux = process.platform === 'linux' && thpMode() !== undefined;
  const big = new Float64Array(new SharedArrayBuffer(64 * 2 ** 20));
  const advised = addon!.adviseHugePages(big);
  if (linux) {
    // The aligned interior: all of it, less at most one huge page lost to alignment at the two ends.
    assert.ok(advised >= 62 * 2 ** 20 && advised <= 64 * 2 ** 20 && advised % 2 ** 21 === 0, `advised ${advised} bytes of 64 MiB`);
  } else {
    assert.is(advised, 0);
  }
  assert.is(addon!.adviseHugePages(new Uint8Array(2 ** 20)), 0, 'a 1 MiB buffer holds no aligned 2 MiB');
  assert.is(addon!.adviseHugePages(new Float64Array(0)), 0);
  assert.is(addon!.adviseHugePages(new Uint8Array(big.buffer, 3, 5 * 2 ** 20)) % 2 ** 21, 0, 'a view at an odd offset');
  assert.ok(big.every((v) => v === 0), 'the advice changed a value');
  for (const bad of [new Int32Array(4), new SharedArrayBuffer(16), undefined, 'x']) {
    assert.throws(() => addon!.adviseHugePages(bad as unknown as Uint8Array), (e: Error & { code?: string }) => e instanceof TypeError && e.code === 'ERR_HPAIR_NATIVE');
  }
});

withAddon("adjustExternalMemory moves the thread's external-memory total by exactly its argument, and checks it", () => {
  // Back to back, with nothing allocated between the calls: V8 moves the same total for its own array buffers
  // (when it sweeps them), so only consecutive answers are compared, and by 1 MiB, far below what starts a
  // collection.
  const step = 2 ** 20;
  const up = addon!.adjustExternalMemory(step);
  assert.is(addon!.adjustExternalMemory(-step), up - step);
  for (const bad of [0.5, Number.NaN, Infinity, 2 ** 60, '1', undefined]) {
    const before = addon!.adjustExternalMemory(0);
    assert.throws(() => addon!.adjustExternalMemory(bad as number), (e: Error & { code?: string }) => e instanceof TypeError && e.code === 'ERR_HPAIR_NATIVE', String(bad));
    assert.is(addon!.adjustExternalMemory(0), before, `a rejected call (${String(bad)}) changed the total`);
  }
});

/**
 * Bytes of huge pages in a buffer's own mapping, not the process's total: earlier tests' buffers may be freed
 * meanwhile. The advice splits the buffer's mapping at its aligned interior, so that part is a mapping of its
 * own, a little smaller than the buffer.
 */
/** This process's memory mappings: "start-end" → its huge-page bytes and whether the kernel may back it with
 * huge pages (in 'madvise' mode, the advice hpair gave). */
function mappings(): Map<string, { bytes: number; huge: number; eligible: boolean }> {
  const found = new Map<string, { bytes: number; huge: number; eligible: boolean }>();
  for (const mapping of readFileSync('/proc/self/smaps', 'utf8').split(/\n(?=[0-9a-f]+-[0-9a-f]+ )/)) {
    const range = /^([0-9a-f]+)-([0-9a-f]+) /.exec(mapping);
    if (range === null) continue;
    const bytes = Number(BigInt(`0x${range[2]}`) - BigInt(`0x${range[1]}`));
    found.set(`${range[1]}-${range[2]}`, { bytes, huge: Number(/AnonHugePages:\s+(\d+) kB/.exec(mapping)?.[1] ?? 0) * 1024, eligible: /THPeligible:\s+1/.test(mapping) });
  }
  return found;
}

/** The mapping that appeared (or changed) since `before` and can hold `bytes`: the buffer's own, or the one the
 * kernel merged it into with a neighbour of the same flags (a long test run has many). */
function mappingOf(bytes: number, before: ReadonlyMap<string, unknown>): { huge: number; eligible: boolean } {
  let found = { huge: 0, eligible: false };
  for (const [range, mapping] of mappings()) {
    if (before.has(range) || mapping.bytes < bytes - 4 * 2 ** 20) continue;
    if (mapping.eligible && !found.eligible) found = { huge: mapping.huge, eligible: true };
    else if (mapping.eligible === found.eligible && mapping.huge > found.huge) found = { huge: mapping.huge, eligible: mapping.eligible };
  }
  return found;
}

/** Huge pages the kernel failed to find at a fault (memory too fragmented), from /proc/vmstat. */
function thpFallbacks(): number {
  return Number(/^thp_fault_fallback (\d+)$/m.exec(readFileSync('/proc/vmstat', 'utf8'))?.[1] ?? 0);
}

/** Asserts the mapping was advised and, unless the kernel had no huge page to give at the fault, is backed by them. */
function assertHuge(bytes: number, before: { fallbacks: number; mappings: ReadonlyMap<string, unknown> }, what: string): void {
  const { huge, eligible } = mappingOf(bytes, before.mappings);
  assert.ok(eligible, `the mapping of ${what} is not eligible for huge pages (no advice given)`);
  if (huge >= 16 * 2 ** 20) return;
  const fellBack = thpFallbacks() - before.fallbacks;
  assert.ok(fellBack > 0, `only ${huge} bytes of huge pages in the mapping of ${what}, and the kernel reports no fallback`);
  console.log(`  (noted: ${what} advised, but the kernel had no free huge page at ${fellBack} faults: memory is fragmented)`);
}

const thpOffered = (): boolean => addon !== undefined && process.platform === 'linux' && ['always', 'madvise'].includes(thpMode() ?? 'never');
const noThp = (): string => (addon === undefined ? noAddon() : `the OS offers no transparent huge pages (mode ${thpMode() ?? 'unknown'})`);
// The in-process checks follow this process's decision (workers/huge-pages.ts); the forced one below runs anywhere.
const withHugePages = testIf(thpOffered() && hugePagesDecision().wanted, () =>
  thpOffered() ? `huge pages are off by default in this process: ${hugePagesDecision().reason}` : noThp(),
);

withHugePages("allocateComplexMatrix's big matrix is backed by huge pages where the OS offers them", async () => {
  const { allocateComplexMatrix } = await import('hpair');
  // ≈ 22 MiB: far enough from the next test's 34 MiB H that neither check can find the other's mapping.
  const before = { fallbacks: thpFallbacks(), mappings: mappings() };
  const m = await allocateComplexMatrix(1199, 1199);
  m.data.fill(1); // first touch, after the memory thread's advice
  assertHuge(m.data.byteLength, before, `a ${m.data.byteLength}-byte matrix`);
});

withHugePages("a pool's big H is backed by huge pages where the OS offers them (the memory thread advises it before first touch)", async () => {
  const { createPool, demoProblem } = await import('hpair');
  const pool = createPool({ workers: 2 });
  try {
    const { expp, distance } = demoProblem(1500, 64);
    const before = { fallbacks: thpFallbacks(), mappings: mappings() };
    const h = await pool.hermitian(expp, distance); // H: 1499² × 16 B ≈ 34 MiB
    assertHuge(h.data.byteLength, before, `a ${h.data.byteLength}-byte H`);
  } finally {
    await pool.close();
  }
});

testIf(thpOffered(), noThp)('HPAIR_NO_HUGE_PAGES=0 advises a big H whatever the host, 1 never (processes of their own: the memory thread decides when it starts)', () => {
  const script = `
    const { readFileSync } = require('node:fs');
    const hugeNow = () => Number(/AnonHugePages:\\s+(\\d+) kB/.exec(readFileSync('/proc/self/smaps_rollup', 'utf8'))[1]) * 1024;
    const fallbacks = () => Number(/^thp_fault_fallback (\\d+)$/m.exec(readFileSync('/proc/vmstat', 'utf8'))?.[1] ?? 0);
    const { createPool, demoProblem } = require(${JSON.stringify(createRequire(import.meta.url).resolve('hpair'))});
    (async () => {
      const pool = createPool({ workers: 2, kernel: 'native' });
      try {
        const { expp, distance } = demoProblem(1500, 64);
        const before = hugeNow(), fell = fallbacks();
        const h = await pool.hermitian(expp, distance);
        process.stdout.write(JSON.stringify({ gained: hugeNow() - before, fellBack: fallbacks() - fell, values: h.data.length }));
      } finally {
        await pool.close();
      }
    })();`;
  const run = (value: string): { gained: number; fellBack: number; values: number } => {
    const child = spawnSync(process.execPath, ['-e', script], { env: { ...process.env, HPAIR_NO_HUGE_PAGES: value }, encoding: 'utf8' });
    assert.is(child.status, 0, child.stderr);
    return JSON.parse(child.stdout) as { gained: number; fellBack: number; values: number };
  };
  const on = run('0');
  assert.is(on.values, 2 * 1499 * 1499);
  // H: 1499² × 16 B ≈ 34 MiB, so at least 16 MiB of it in huge pages unless the kernel had none to give
  if (on.gained < 16 * 2 ** 20) {
    assert.ok(on.fellBack > 0, `HPAIR_NO_HUGE_PAGES=0 gave only ${on.gained} bytes of huge pages, and the kernel reports no fallback`);
    console.log(`  (noted: advised, but the kernel had no free huge page at ${on.fellBack} faults: memory is fragmented)`);
  }
  if (thpMode() === 'madvise') {
    const off = run('1');
    assert.is(off.values, 2 * 1499 * 1499);
    assert.ok(off.gained < 4 * 2 ** 20, `HPAIR_NO_HUGE_PAGES=1 still gave ${off.gained} bytes of huge pages`);
  }
});

// ---- threads ----

testIf(paths.length > 0, () => (addon === undefined ? noAddon() : 'no native path runs on this CPU'))('loads in worker threads; each thread computes with its own scratch into one shared H', async () => {
  const name = paths[0];
  const N = 90;
  const M = 70;
  const n = N - 1;
  const { expp, distance } = randomProblem(N, M, 21);
  const expected = tiled(name, expp, distance, 16);
  const h = new Float64Array(new SharedArrayBuffer(16 * n * n));
  const code = `
    const { workerData, parentPort } = require('node:worker_threads');
    const addon = require(workerData.file);
    const { name, expp, distance, h, N, M, tile, worker, workers } = workerData;
    const n = N - 1;
    let index = 0;
    for (let i0 = 0; i0 < n; i0 += tile) for (let j0 = 0; j0 <= i0; j0 += tile, index++)
      if (index % workers === worker) addon.hermitianTile(name, expp, distance, h, N, M, i0, Math.min(n, i0 + tile), j0, Math.min(n, j0 + tile));
    parentPort.postMessage('done');`;
  const run = (worker: number) =>
    new Promise<void>((resolve, reject) => {
      const w = new Worker(code, { eval: true, workerData: { file: addonFile, name, expp: expp.data, distance, h, N, M, tile: 16, worker, workers: 3 } });
      w.once('message', () => void w.terminate().then(() => resolve(), reject));
      w.once('error', reject);
    });
  await Promise.all([run(0), run(1), run(2)]);
  assertBitIdentical(h, expected.data, 'H from three worker threads');
});

// ---- the install script ----

test('install.mjs without a compiler (CC=false) exits 0 and records built: false with a one-line reason', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'hpair-native-'));
  try {
    for (const entry of ['install.mjs', 'binding.gyp', 'src']) cpSync(path.join(nativeDir, entry), path.join(dir, entry), { recursive: true });
    const env: NodeJS.ProcessEnv = { ...process.env, CC: 'false', CXX: 'false' };
    delete env.HPAIR_NO_NATIVE;
    const result = await new Promise<{ code: number; stdout: string }>((resolve) => {
      execFile(process.execPath, [path.join(dir, 'install.mjs'), dir], { env, timeout: 60_000 }, (error, stdout) =>
        resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout }),
      );
    });
    assert.is(result.code, 0, result.stdout);
    const status = JSON.parse(readFileSync(path.join(dir, 'build/status.json'), 'utf8')) as { built: boolean; reason: string };
    assert.is(status.built, false);
    assert.ok(typeof status.reason === 'string' && status.reason.length > 0 && !status.reason.includes('\n'), status.reason);
    assert.ok(!existsSync(path.join(dir, 'build/Release/hpair_native.node')));
    assert.is(result.stdout.trim().split('\n').length, 1, `one line of output: ${result.stdout}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
