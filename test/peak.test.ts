// The FMA peak probe (each path file's probe in kernel/native/src, the addon's fmaPeak) and the bench's concurrent measurement of
// it (bench/peak.ts): every argument check, the paths this CPU cannot run, that a probe runs for the time it is
// given and reports a rate a real core can reach, and that worker threads measure together. No test judges
// speed: a rate is only checked against what the hardware could physically do at any clock.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { testIf } from './helpers/children.js';
import { NATIVE_PATHS } from '../kernel/kernel-names.js';
import { loadNativeAddon, type NativeAddon, type NativePathName } from '../kernel/native/addon.js';
import { measurePeaks, peakFor, type PeakMeasurement } from '../bench/peak.js';

const test = suite('FMA peak probe');

const load = loadNativeAddon();
const addon: NativeAddon | undefined = load.addon;
const paths = addon?.info().paths ?? [];
const supported = paths.filter((p) => p.supported).map((p) => p.name);
const unsupported = paths.filter((p) => !p.supported);
/** `test` when the condition holds; else each test is reported as skipped, with why. */
function when(holds: boolean, why: string): (name: string, fn: () => void | Promise<void>) => void {
  return testIf(test, 'FMA peak probe', holds, () => why);
}
const noAddon = `no native addon: ${load.reason ?? ''}`;
const withAddon = when(addon !== undefined, noAddon);
const withPath = when(addon !== undefined && supported.length > 0, addon === undefined ? noAddon : 'this CPU runs no native path');
const withUnsupported = when(
  addon !== undefined && unsupported.length > 0,
  addon === undefined ? noAddon : `this CPU runs every path (${supported.join(', ')}): no path to refuse`,
);

// The most double-precision flops per second any core can do: 8 GHz × 4 FMA ports × the path's lanes × 2 flops.
const physicalLimit = (path: NativePathName): number => 8e9 * 4 * (paths.find((p) => p.name === path)?.lanes ?? 8) * 2;

function thrown(fn: () => unknown): (Error & { code?: string }) | undefined {
  try {
    fn();
  } catch (error) {
    return error as Error & { code?: string };
  }
  return undefined;
}

withPath('runs for the time it is given and reports a rate a core can reach, on every path this CPU runs', () => {
  if (addon === undefined) throw new Error('unreachable: registered only with the addon');
  for (const path of supported) {
    const started = process.hrtime.bigint();
    const rate = addon.fmaPeak(path, 0.05);
    const elapsed = Number(process.hrtime.bigint() - started) / 1e9;
    assert.ok(Number.isFinite(rate) && rate > 0, `${path}: rate ${rate}`);
    assert.ok(elapsed >= 0.05, `${path}: returned after ${elapsed} s, before the 0.05 s it was asked to run`);
    // A loop the compiler dropped, or a wrong flop count, shows up as a rate no hardware reaches.
    assert.ok(rate < physicalLimit(path), `${path}: ${rate / 1e9} GFLOP/s is beyond any core`);
  }
});

withAddon('refuses a bad path or duration with a typed error, never running anything', () => {
  if (addon === undefined) throw new Error('unreachable: registered only with the addon');
  const call = (...args: unknown[]) => thrown(() => (addon.fmaPeak as (...a: unknown[]) => number)(...args));
  // An unknown path's message names every path of paths.h, in its order: "'a', 'b' or 'c'".
  const quoted = NATIVE_PATHS.map((name) => `'${name}'`);
  const every = new RegExp(quoted.length > 1 ? `${quoted.slice(0, -1).join(', ')} or ${quoted.at(-1)}` : quoted[0]);
  const [first] = NATIVE_PATHS;
  const path = supported[0] ?? first;
  const cases: [unknown[], string, RegExp][] = [
    [[], 'TypeError', /takes a path/],
    [[first], 'TypeError', /takes a path/],
    [[512, 0.01], 'TypeError', /path must be a string/],
    [['sse2', 0.01], 'TypeError', every],
    [[first.toUpperCase(), 0.01], 'TypeError', every],
    [[`${first}\u0000`, 0.01], 'TypeError', every],
    [[path, '0.01'], 'TypeError', /seconds must be a number/],
    [[path, 0], 'RangeError', /\(0, 10\]/],
    [[path, -1], 'RangeError', /\(0, 10\]/],
    [[path, Number.NaN], 'RangeError', /\(0, 10\]/],
    [[path, Number.POSITIVE_INFINITY], 'RangeError', /\(0, 10\]/],
    [[path, 10.5], 'RangeError', /\(0, 10\]/],
  ];
  for (const [args, kind, message] of cases) {
    const error = call(...args);
    assert.ok(error, `fmaPeak(${args.map(String).join(', ')}) did not throw`);
    assert.is(error!.constructor.name, kind, `fmaPeak(${args.map(String).join(', ')}): ${error!.message}`);
    assert.is(error!.code, 'ERR_HPAIR_NATIVE');
    assert.match(error!.message, message);
  }
});

withUnsupported('a path this CPU or OS cannot run throws its reason instead of executing it', () => {
  if (addon === undefined) throw new Error('unreachable: registered only with the addon');
  for (const path of unsupported) {
    const error = thrown(() => addon.fmaPeak(path.name, 0.01));
    assert.ok(error, `${path.name} ran on a CPU that cannot`);
    assert.is(error!.code, 'ERR_HPAIR_NATIVE');
    assert.is(error!.message, path.reason);
  }
});

withPath('the bench measures every path on 1 and 2 threads at once, in worker threads', async () => {
  const report = await measurePeaks({ threads: [2], seconds: 0.03, repetitions: 2 });
  assert.is(report.unavailable, undefined);
  assert.equal(
    report.peaks.map((p) => `${p.isa}/${p.threads}`),
    supported.flatMap((isa) => [`${isa}/1`, `${isa}/2`]),
  );
  for (const peak of report.peaks) {
    assert.is(peak.perThread.length, peak.threads, `${peak.isa}/${peak.threads}: one rate per thread`);
    assert.is(peak.repetitions.length, 2);
    const sum = peak.perThread.reduce((a, b) => a + b, 0);
    assert.ok(Math.abs(sum - peak.gflops) <= 1e-9 * sum, 'gflops is the best repetition\'s sum');
    assert.is(Math.max(...peak.repetitions), peak.gflops, 'the best repetition is kept');
    for (const rate of peak.perThread) assert.ok(rate > 0 && rate * 1e9 < physicalLimit(peak.isa), `${peak.isa}: ${rate} GFLOP/s`);
  }
});

test('peakFor sets a native row against its own ISA and everything else against the best, on its thread count', () => {
  const m = (isa: NativePathName, threads: number, gflops: number): PeakMeasurement => ({ isa, threads, gflops, perThread: [], repetitions: [gflops], seconds: 0.1 });
  const peaks = [m('avx512', 1, 120), m('avx512', 2, 230), m('avx2', 1, 64), m('avx2', 2, 125)];
  assert.is(peakFor(peaks, 'native-avx512', 2)?.gflops, 230);
  assert.is(peakFor(peaks, 'native-avx2', 2)?.gflops, 125);
  assert.is(peakFor(peaks, 'native-avx2', 1)?.gflops, 64);
  assert.is(peakFor(peaks, 'wasm-simd', 1)?.gflops, 120);
  assert.is(peakFor(peaks, 'BLAS zgemm', 2)?.isa, 'avx512');
  assert.is(peakFor(peaks, 'native-avx512', 3), undefined, 'a thread count not measured has no peak');
  assert.is(peakFor([m('avx2', 1, 64)], 'native-avx512', 1), undefined, 'no AVX-512 peak: a native-avx512 row has none');
});

test.run();
