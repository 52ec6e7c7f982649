// The bench's peer checks (bench/peer-check.ts) and its shape options (bench/options.ts): a peer copy on
// another core, on other threads, missing or mute fails the run with a message naming it; a peer slower in the
// run than in a fresh process beyond the noise fails it; and, where python3 with numpy runs here, the peer's own
// report of its OpenBLAS copies is what the checks read. No test sets or unsets an OPENBLAS_* variable.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { demoProblem, encodeComplexMatrixNpy, encodeFloat64VectorNpy } from 'hpair';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { testIf } from './helpers/children.js';
import { cleanVerdict, coreProblems, fasterVariants, hugePageProblems, threadProblems } from '../bench/peer-check.js';
import { withCoretype } from '../bench/blas-core.js';
import { parseOptions, QUICK_SHAPES, SWEEP_SHAPES, UsageError } from '../bench/options.js';
import { PythonPeer, type OpenblasLibrary } from '../bench/python-peer.js';

const test = suite('bench checks');

const numpyCopy: OpenblasLibrary = {
  file: '/site-packages/numpy.libs/libscipy_openblas64_-aaaa.so',
  users: ['numpy'],
  coretype: 'SkylakeX',
  config: 'OpenBLAS 0.3.31.188.0  USE64BITINT DYNAMIC_ARCH NO_AFFINITY SkylakeX MAX_THREADS=64',
  threads: 2,
};
const scipyCopy: OpenblasLibrary = { file: '/site-packages/scipy.libs/libscipy_openblas-bbbb.so', users: ['scipy'], coretype: 'SkylakeX', config: 'OpenBLAS 0.3.30 DYNAMIC_ARCH', threads: 2 };

test('both copies on the chosen core pass, whatever the case of its name', () => {
  assert.equal(coreProblems('peer', [numpyCopy, scipyCopy], 'SkylakeX', true), []);
  assert.equal(coreProblems('peer', [numpyCopy, scipyCopy], 'SKYLAKEX', true), []);
  assert.equal(coreProblems('peer', [{ ...numpyCopy, users: ['numpy', 'scipy'] }], 'skylakex', true), [], 'one copy shared by both');
});

test('one copy on another core fails, naming the copy, its version and both cores', () => {
  const problems = coreProblems('N = M = 2048, the Python peer', [numpyCopy, { ...scipyCopy, coretype: 'Haswell' }], 'SkylakeX', true);
  assert.equal(problems, ["N = M = 2048, the Python peer: scipy's OpenBLAS (libscipy_openblas-bbbb.so, 0.3.30) runs Haswell kernels, not the chosen SkylakeX"]);
  const both = coreProblems('peer', [{ ...numpyCopy, coretype: 'Haswell' }, { ...scipyCopy, coretype: 'Zen' }], 'SkylakeX', true);
  assert.is(both.length, 2);
  assert.match(both[0], /numpy's OpenBLAS \(libscipy_openblas64_-aaaa\.so, 0\.3\.31\.188\.0\) runs Haswell/);
});

test('a copy that is missing or cannot name its core fails; copies that disagree fail when no core was chosen', () => {
  assert.match(coreProblems('peer', [scipyCopy], 'SkylakeX', true).join('\n'), /numpy's BLAS is not an OpenBLAS/);
  assert.match(coreProblems('peer', [numpyCopy], 'SkylakeX', true).join('\n'), /scipy's BLAS is not an OpenBLAS/);
  assert.equal(coreProblems('peer', [numpyCopy], 'SkylakeX', false), [], 'without scipy only numpy\'s copy is needed');
  assert.match(coreProblems('peer', [numpyCopy, { ...scipyCopy, coretype: undefined }], 'SkylakeX', true).join('\n'), /has no openblas_get_corename/);
  assert.match(coreProblems('peer', [numpyCopy, { ...scipyCopy, coretype: 'Haswell' }], undefined, true).join('\n'), /run different cores/);
  assert.equal(coreProblems('peer', [numpyCopy, scipyCopy], undefined, true), [], 'agreeing copies pass when none was chosen');
  assert.is(coreProblems('peer', [], 'SkylakeX', true).length, 2);
});

test('a copy on other threads than asked fails, one message per copy', () => {
  assert.equal(threadProblems('g', [numpyCopy, scipyCopy], 2), []);
  const problems = threadProblems('g', [numpyCopy, { ...scipyCopy, threads: 1 }, { ...scipyCopy, threads: undefined }], 2);
  assert.is(problems.length, 2);
  assert.match(problems[0], /scipy's OpenBLAS .* runs 1 threads, not the 2 asked/);
  assert.match(problems[1], /runs an unknown number of threads/);
});

test('a peer slower in the run than in a fresh process fails beyond the noise, never when faster', () => {
  const steady = (ms: number): number[] => [ms, ms, ms, ms, ms];
  assert.ok(cleanVerdict(steady(100), steady(100), 0.1).ok);
  assert.ok(cleanVerdict(steady(110), steady(100), 0.1).ok, 'exactly the tolerance passes');
  const slow = cleanVerdict(steady(150), steady(100), 0.1);
  assert.not.ok(slow.ok);
  assert.is(slow.ratio, 1.5);
  assert.is(slow.noise, 0.1);
  assert.ok(cleanVerdict(steady(50), steady(100), 0.1).ok, 'faster in the run');
  // A spread-out side widens the allowance to its own p25–p75 over its median.
  const noisy = cleanVerdict([100, 120, 150, 180, 200], steady(100), 0.1);
  assert.is(noisy.noise, (180 - 120) / 150);
  assert.not.ok(noisy.ok, '1.5× against an allowance of 40 %');
  assert.ok(cleanVerdict([100, 120, 130, 180, 200], [60, 80, 100, 140, 150], 0.1).ok, 'a noisy fresh side widens it too');
});

test("a process whose numpy advises huge pages otherwise than chosen fails, and one that cannot say fails too", () => {
  assert.equal(hugePageProblems('peer', false, false), []);
  assert.equal(hugePageProblems('peer', true, true), []);
  assert.equal(hugePageProblems('N = M = 2048, a fresh Python process', true, false), ['N = M = 2048, a fresh Python process: numpy advises huge pages on, not the chosen off']);
  assert.equal(hugePageProblems('peer', false, true), ['peer: numpy advises huge pages off, not the chosen on']);
  for (const mute of [null, undefined]) assert.match(hugePageProblems('peer', mute, false).join('\n'), /numpy cannot say whether it advises huge pages \(the chosen advice is off\)/);
});

test('of each peer kind, the variant with the lower median in the run is the peer; one without samples never is', () => {
  const chosen = fasterVariants([
    { key: 'numpy, huge pages on', kind: 'numpy', samples: [900, 100, 950, 120, 910] }, // median 900: its best samples do not count
    { key: 'numpy, huge pages off', kind: 'numpy', samples: [600, 610, 590, 605, 2000] }, // median 605
    { key: 'zherk, huge pages on', kind: 'zherk', samples: [300, 310, 305] },
    { key: 'zherk, huge pages off', kind: 'zherk', samples: [] },
  ]);
  assert.equal([...chosen].sort(), ['numpy, huge pages off', 'zherk, huge pages on']);
  assert.equal([...fasterVariants([{ key: 'a', kind: 'k', samples: [5] }, { key: 'b', kind: 'k', samples: [5] }])], ['a'], 'a tie keeps the earlier');
  assert.equal(fasterVariants([{ key: 'a', kind: 'k', samples: [] }]).size, 0, 'nothing timed, nothing chosen');
});

test("the peers' environment: OPENBLAS_L2_SIZE goes with the inherited core, and only with it", () => {
  const inherited = { PATH: '/bin', OPENBLAS_CORETYPE: 'Haswell', OPENBLAS_L2_SIZE: '262144', OPENBLAS_VERBOSE: '1' };
  const other = withCoretype(inherited, 'SkylakeX');
  assert.equal(other, { PATH: '/bin', OPENBLAS_CORETYPE: 'SkylakeX', OPENBLAS_VERBOSE: '1' }, 'another core: both replaced together');
  const detect = withCoretype(inherited, undefined, { OPENBLAS_NUM_THREADS: '1' });
  assert.equal(detect, { PATH: '/bin', OPENBLAS_VERBOSE: '1', OPENBLAS_NUM_THREADS: '1' }, "OpenBLAS's own detection: both removed");
  assert.equal(withCoretype(inherited, 'Haswell'), inherited, 'the inherited core keeps its cache size');
  assert.equal(withCoretype({ OPENBLAS_L2_SIZE: '262144' }, undefined), { OPENBLAS_L2_SIZE: '262144' }, 'nothing inherited and nothing chosen: the environment as it is');
  assert.equal(inherited.OPENBLAS_L2_SIZE, '262144', 'the base is not changed');
});

test('--shapes takes N×M pairs and kinds in order, without repeats; bad shapes and clashing flags are refused', () => {
  const shapes = (argv: string[]) => parseOptions(argv)!.shapes.map((s) => `${s.n}x${s.m}:${s.kind}`);
  assert.equal(shapes(['--shapes', 'tall,64x64,512x512,tiny,square']), ['256x65536:tall', '64x64:tiny', '512x512:square', '2048x2048:square']);
  assert.equal(shapes(['--shapes', 'square', '--full']), ['256x256:square', '512x512:square', '1024x1024:square', '2048x2048:square', '4096x4096:square']);
  assert.equal(shapes(['--sizes', '300,100']), ['300x300:square', '100x100:square']);
  assert.equal(shapes(['--shapes', '300x20,8192x64']), ['300x20:custom', '8192x64:hwrite']);
  assert.equal(shapes([]), SWEEP_SHAPES.map((s) => `${s.n}x${s.m}:${s.kind}`));
  assert.equal(shapes(['--quick']), QUICK_SHAPES.map((s) => `${s.n}x${s.m}:${s.kind}`));
  assert.equal(parseOptions(['--quick'])!.memorySizes, [], '--quick measures no peak RSS');
  for (const argv of [
    ['--shapes', '1x64'],
    ['--shapes', '64x'],
    ['--shapes', 'wide'],
    ['--shapes', '64x64', '--sizes', '64'],
    ['--quick', '--full'],
    ['--peer-tolerance', '-0.1'],
    ['--peak-seconds', '11'],
    ['--peak-seconds', 'x'],
  ]) {
    assert.throws(() => parseOptions(argv), (error: unknown) => error instanceof UsageError, argv.join(' '));
  }
  const defaults = parseOptions([])!;
  assert.is(defaults.peerCheck, true);
  assert.is(defaults.peerTolerance, 0.1);
  assert.is(parseOptions(['--no-peer-check', '--peak-seconds', '0'])!.peerCheck, false);
  assert.is(parseOptions(['--peak-seconds', '0'])!.peakSeconds, 0);
});

const hasNumpy = spawnSync('python3', ['-c', 'import numpy'], { stdio: 'ignore' }).status === 0;
testIf(test, 'bench checks', hasNumpy, () => 'python3 with numpy is not installed here (the peer\'s own report)')('the Python peer names every OpenBLAS copy it loaded, with its user, core and threads', async () => {
  const peer = new PythonPeer(process.env);
  try {
    const info = await peer.info();
    const numpy = info.openblas.filter((lib) => lib.users.includes('numpy'));
    if (numpy.length === 0) {
      // numpy on another BLAS here: the bench cannot check its core, and must say so rather than pass.
      assert.match(coreProblems('here', info.openblas, 'SkylakeX', info.scipy !== null).join('\n'), /numpy's BLAS is not an OpenBLAS/);
      return;
    }
    assert.is(numpy.length, 1, 'one copy for numpy');
    assert.type(info.numpyHugePages, 'boolean', 'numpy says whether it advises huge pages');
    if (info.scipy !== null) assert.ok(info.openblas.some((lib) => lib.users.includes('scipy')), 'scipy\'s copy is named');
    for (const lib of info.openblas) assert.type(lib.coretype, 'string', `${lib.file} names its core`);
    const core = numpy[0].coretype as string;
    const agree = new Set(info.openblas.map((lib) => lib.coretype)).size === 1;
    if (agree) assert.equal(coreProblems('here', info.openblas, core, info.scipy !== null), []);
    assert.is(coreProblems('here', info.openblas, 'NoSuchCore', info.scipy !== null).length, info.openblas.length);
    const threads = await peer.threads(1);
    assert.equal(threadProblems('here', threads.openblas, 1), [], 'every copy runs 1 thread when asked');
    assert.is(threadProblems('here', threads.openblas, 3).length, info.openblas.length);
  } finally {
    peer.close();
  }
});

testIf(test, 'bench checks', hasNumpy, () => 'python3 with numpy is not installed here (the peer\'s own report)')("the peer's huge-page advice is the environment's unless a call asks for one, and each call reports what it cost in the kernel", async () => {
  const dir = mkdtempSync(join(tmpdir(), 'hpair-peer-test-'));
  const { expp, distance } = demoProblem(300, 400);
  writeFileSync(join(dir, 'expp.npy'), encodeComplexMatrixNpy(expp));
  writeFileSync(join(dir, 'distance.npy'), encodeFloat64VectorNpy(distance));
  const peers = [false, true].map((advice) => ({ advice, peer: new PythonPeer({ ...process.env, NUMPY_MADVISE_HUGEPAGE: advice ? '1' : '0' }) }));
  try {
    for (const { advice, peer } of peers) {
      const info = await peer.info();
      assert.is(info.numpyHugePages, advice, `NUMPY_MADVISE_HUGEPAGE=${advice ? 1 : 0}`);
      assert.is(info.env.NUMPY_MADVISE_HUGEPAGE, advice ? '1' : '0', 'the variable is among those reported');
      assert.equal(hugePageProblems('here', info.numpyHugePages, advice), []);
      assert.is(hugePageProblems('here', info.numpyHugePages, !advice).length, 1);
      await peer.load(dir);
      await peer.threads(1);
      const sample = await peer.run('numpy');
      assert.is(sample.hugePages, advice, "a call that asks for nothing keeps the environment's advice");
      assert.ok(sample.ms > 0, 'timed');
      assert.ok(Number.isFinite(sample.systemMs) && sample.systemMs >= 0, `system time ${sample.systemMs}`);
      // The first call's A/d and H (about 1.9 and 1.4 MiB) are fresh memory, so it faults pages in.
      assert.ok(Number.isInteger(sample.minorFaults) && sample.minorFaults > 0, `minor faults ${sample.minorFaults}`);
      // A call that asks for the other advice runs with it, and says so; so does scipy's new C, a numpy array.
      assert.is((await peer.run('numpy', !advice)).hugePages, !advice);
      if (info.scipy !== null) assert.is((await peer.run('zherk', advice)).hugePages, advice);
      assert.is((await peer.info()).numpyHugePages, info.scipy !== null ? advice : !advice, 'the advice stays as the last call left it');
    }
  } finally {
    for (const { peer } of peers) peer.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
