// The CLI as a user runs it: results against numpy's (A/d) @ A.conj().T from .npy and .npz inputs, exit
// codes, one-line messages naming the flag and the file, --json errors, --version, the progress bar, and an
// --out file that no failure can damage. (--out kinds, FIFOs and signals: cli-io.test.ts.)
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { parseComplexMatrixNpy } from 'hpair';
import { assertExactlyHermitian, cliPath, fixture, fixturesDir, KERNEL_VARIANT_PATTERN, relativeError } from './helpers/support.js';
import { runCli, type Run } from './helpers/cli-run.js';

const test = suite('cli');
const cli = (...args: string[]): Promise<Run> => runCli(args, { timeoutMs: 60_000 });
const work = mkdtempSync(join(tmpdir(), 'hpair-cli-'));


const f = (name: string): string => join(fixturesDir, name);

const npyCase = (name: string): [string, string, string] => [name, f(`case_${name}_expp.npy`), f(`case_${name}_distance.npy`)];
const cases: Array<[string, string, string]> = [
  ...['odd', 'n1', 'n2', 'm1', 'm2', 'wide'].map(npyCase),
  npyCase('int'), // distance = np.arange(9), int64
  ['odd', `${f('case_odd.npz')}:expp`, `${f('case_odd.npz')}:distance`], // np.savez
  ['odd', `${f('case_odd_compressed.npz')}:expp`, `${f('case_odd_zip64.npz')}:distance`], // savez_compressed, ZIP64
  ['odd', f('expp_only.npz'), `${f('case_odd_stream.npz')}:distance.npy`], // one array needs no key; written to a pipe
  ['odd', `${f('expp_only.npz')}:arr_0`, f('distance_only.npz')],
];
for (const [name, exppArg, distanceArg] of cases) {
  test(`compute matches numpy: case ${name}, --expp ${exppArg.replace(fixturesDir, '')} --distance ${distanceArg.replace(fixturesDir, '')}`, async () => {
    const out = join(work, `h_${name}.npy`);
    const run = await cli('compute', '--expp', exppArg, '--distance', distanceArg, '--out', out, '--workers', '2', '--json');
    assert.is(run.code, 0, run.stderr);
    const summary = JSON.parse(run.stdout) as Record<string, number>;
    for (const key of ['n', 'm', 'workers', 'seconds', 'gflops']) assert.type(summary[key], 'number', key);
    assert.match(String(summary.kernel), KERNEL_VARIANT_PATTERN);
    assert.is(summary.workers, 2);
    const h = parseComplexMatrixNpy(readFileSync(out));
    const expected = parseComplexMatrixNpy(fixture(`case_${name}_h.npy`));
    assert.ok(relativeError(h, expected) < 1e-11, `relative error ${relativeError(h, expected)}`);
    assertExactlyHermitian(h);
  });
}

test('demo prints size, workers, time, GFLOP/s and checksum; --json is one object', async () => {
  const text = await cli('demo', '--n', '150', '--m', '90', '--workers', '2');
  assert.is(text.code, 0, text.stderr);
  assert.is(text.stderr, '', 'no progress bar when stdout is not a terminal');
  for (const part of [/N = 150, M = 90/, /workers\s+2/, /GFLOP\/s/, /checksum\s+-?\d/]) assert.match(text.stdout, part);
  assert.match(text.stdout.match(/kernel\s+(\S+)/)?.[1] ?? '', KERNEL_VARIANT_PATTERN);
  const forced = JSON.parse((await cli('demo', '--n', '40', '--m', '30', '--kernel', 'js', '--json')).stdout) as Record<string, unknown>;
  assert.is(forced.kernel, 'js');
  const json = await cli('demo', '--n', '150', '--m', '90', '--workers', '1', '--json');
  const summary = JSON.parse(json.stdout) as Record<string, number>;
  assert.equal([summary.n, summary.m, summary.workers], [150, 90, 1]);
  assert.ok(summary.seconds > 0 && summary.gflops > 0);
  const again = JSON.parse((await cli('demo', '--n', '150', '--m', '90', '--workers', '2', '--json')).stdout) as Record<string, number>;
  assert.is(again.checksum, summary.checksum, 'checksum differs between 1 and 2 workers');
  assert.is((summary as Record<string, unknown>).accuracy, 'default');
  assert.match(text.stdout, /accuracy\s+default/);
});

test('compute and demo say which accuracy computed H, in memory and out of core, text and --json', async () => {
  const compensated = await cli('demo', '--n', '60', '--m', '40', '--accuracy', 'compensated', '--json');
  assert.is(compensated.code, 0, compensated.stderr);
  assert.is((JSON.parse(compensated.stdout) as Record<string, unknown>).accuracy, 'compensated');
  for (const [name, extra] of [['in memory', []], ['out of core', ['--max-memory', '4M']]] as const) {
    const out = join(work, `h_accuracy_${name.replace(/ /g, '_')}.npy`);
    const args = ['compute', '--expp', f('case_odd_expp.npy'), '--distance', f('case_odd_distance.npy'), '--out', out, '--accuracy', 'compensated', ...extra];
    const json = await cli(...args, '--json');
    assert.is(json.code, 0, json.stderr);
    const summary = JSON.parse(json.stdout) as Record<string, unknown>;
    assert.is(summary.accuracy, 'compensated', name);
    assert.is(summary.outOfCore === true, extra.length > 0, name);
    rmSync(out, { force: true });
    rmSync(`${out}.manifest.json`, { force: true });
    const text = await cli(...args);
    assert.is(text.code, 0, text.stderr);
    assert.match(text.stdout, /accuracy\s+compensated/, name);
  }
});

test('progress bar: drawn when stderr is a terminal (whatever stdout is), with percent, ETA and GFLOP/s, at most ~10×/s, cleared', async () => {
  // `script` (util-linux) runs the CLI on a pseudo-terminal, as a user's shell would; redirections inside
  // the command take stdout or stderr off the terminal.
  // The bar waits 1 s before its first draw, so the drawn run must last a few seconds on any host: the js kernel
  // on one worker at N = M = 1600 (about 13 GFLOP of scalar JavaScript on one thread). The runs that must show no
  // bar last over 1 s too, or they could not fail.
  const onTty = (redirect: string, extra = '', size = 1600): Promise<string> =>
    new Promise((resolve) => {
      const command = `${process.execPath} ${cliPath} demo --n ${size} --m ${size} --kernel js --workers 1 ${extra} ${redirect}`;
      execFile('script', ['-qec', command, '/dev/null'], { timeout: 120_000 }, (_error, stdout) => resolve(stdout));
    });
  const bar = /\[#* *\] +(\d+)%  ETA (\d+s|\d+m\d\ds)  \d+\.\d GFLOP\/s/g;
  const summaryFile = join(work, 'summary.txt');
  const shown = await onTty(`> ${summaryFile}`); // stdout is a file, stderr the terminal
  const draws = [...shown.matchAll(bar)];
  assert.ok(draws.length >= 2, `no bar on the terminal: ${JSON.stringify(shown.slice(0, 300))}`);
  const seconds = Number(/compute\s+([\d.]+) s/.exec(readFileSync(summaryFile, 'utf8'))?.[1]);
  assert.ok(draws.length <= 10 * seconds + 2, `${draws.length} draws in ${seconds} s`);
  assert.ok(shown.endsWith('\r\x1b[2K') || /\r\x1b\[2K\s*$/.test(shown), 'the bar is cleared at the end');
  assert.not.match(readFileSync(summaryFile, 'utf8'), /\[#|ETA/, 'no bar in the redirected stdout');
  assert.match(readFileSync(summaryFile, 'utf8'), /checksum/);

  const logFile = join(work, 'stderr.log');
  const hidden = await onTty(`2> ${logFile}`, '', 1300); // stderr is a file: no bar anywhere (hpair demo 2>log)
  assert.is(readFileSync(logFile, 'utf8'), '', 'the log stays empty');
  assert.not.match(hidden, /ETA/);
  assert.match(hidden, /checksum/);

  const json = await onTty('', '--json', 1300);
  assert.not.match(json, /ETA|\[#/);
  const summary = JSON.parse(json.trim()) as { n: number; seconds: number };
  assert.is(summary.n, 1300);
  assert.ok(summary.seconds > 1, 'the --json run ended before the bar could have shown');
});

const sentinel = 'an existing file the user cares about\n';
const badRuns: Array<[string, string[], RegExp]> = [
  ['no command', [], /^hpair: missing command \(see hpair --help\)$/],
  ['unknown command', ['frobnicate'], /^hpair: unknown command 'frobnicate'/],
  ['unknown flag', ['demo', '--bogus'], /^hpair: .*bogus/],
  ['unknown kernel', ['demo', '--kernel', 'cuda'], /^hpair: kernel must be one of 'auto', 'native', .*'js'; got cuda/],
  ['missing --distance', ['compute', '--expp', f('case_odd_expp.npy'), '--out', 'OUT'], /^hpair: compute needs --distance FILE/],
  ['bad --workers', ['compute', '--expp', f('case_odd_expp.npy'), '--distance', f('case_odd_distance.npy'), '--out', 'OUT', '--workers', 'two'], /--workers must be a positive integer/],
  ['bad --fifo-timeout', ['compute', '--expp', f('case_odd_expp.npy'), '--distance', f('case_odd_distance.npy'), '--out', 'OUT', '--fifo-timeout', '-1'], /^hpair: .*fifo-timeout/],
  ['missing file', ['compute', '--expp', f('nope.npy'), '--distance', f('case_odd_distance.npy'), '--out', 'OUT'], /^hpair: --expp \S*nope\.npy: cannot read it: ENOENT: no such file or directory$/],
  ['a directory', ['compute', '--expp', fixturesDir, '--distance', f('case_odd_distance.npy'), '--out', 'OUT'], /^hpair: --expp \S+: it is a directory; hpair reads regular files and FIFOs$/],
  ['not .npy', ['compute', '--expp', f('make_fixtures.py'), '--distance', f('case_odd_distance.npy'), '--out', 'OUT'], /^hpair: --expp \S*make_fixtures\.py: not a \.npy or \.npz file/],
  ['wrong dtype', ['compute', '--expp', f('bad_int64.npy'), '--distance', f('case_odd_distance.npy'), '--out', 'OUT'], /^hpair: --expp \S*bad_int64\.npy: unsupported dtype '<i8' \(int64; accepted: complex128, complex64, float64\)$/],
  ['wrong distance dtype', ['compute', '--expp', f('case_odd_expp.npy'), '--distance', f('bad_unicode.npy'), '--out', 'OUT'], /^hpair: --distance \S*bad_unicode\.npy: unsupported dtype '<U3' \(accepted: float64, float32, integers\)$/],
  ['inexact integer', ['compute', '--expp', f('case_odd_expp.npy'), '--distance', f('bad_int64_inexact.npy'), '--out', 'OUT'], /^hpair: --distance \S*bad_int64_inexact\.npy: element 2 of the int64 array is 9007199254740993, which has no exact float64/],
  ['wrong dimensionality', ['compute', '--expp', f('bad_3d.npy'), '--distance', f('case_odd_distance.npy'), '--out', 'OUT'], /^hpair: --expp \S*bad_3d\.npy: expected a 2-D array/],
  ['distance length', ['compute', '--expp', f('case_odd_expp.npy'), '--distance', f('case_m2_distance.npy'), '--out', 'OUT'], /^hpair: --distance \S*case_m2_distance\.npy: it has length 2 but --expp \S*case_odd_expp\.npy has M = 9 columns$/],
  ['.npz with two arrays and no key', ['compute', '--expp', f('case_odd.npz'), '--distance', f('case_odd_distance.npy'), '--out', 'OUT'], /^hpair: --expp \S*case_odd\.npz: holds 2 arrays \(expp, distance\); pick one as \S*case_odd\.npz:KEY$/],
  ['.npz without that key', ['compute', '--expp', `${f('case_odd.npz')}:nope`, '--distance', f('case_odd_distance.npy'), '--out', 'OUT'], /^hpair: --expp \S*case_odd\.npz:nope: no array 'nope' in \S*case_odd\.npz \(it holds: expp, distance\)$/],
  ['a key on a .npy', ['compute', '--expp', `${f('case_odd_expp.npy')}:expp`, '--distance', f('case_odd_distance.npy'), '--out', 'OUT'], /^hpair: --expp \S*case_odd_expp\.npy:expp: \S+ is not a \.npz archive, so ':expp' picks nothing$/],
  ['out is an input', ['compute', '--expp', f('case_odd_expp.npy'), '--distance', f('case_odd_distance.npy'), '--out', f('case_odd_expp.npy')], /^hpair: --out \S+: it is the same file as --expp .*refusing to overwrite an input$/],
];
for (const [what, args, message] of badRuns) {
  test(`exit 2 with one line: ${what}; --out untouched`, async () => {
    const out = join(work, `kept_${what.replace(/\W+/g, '_')}.npy`);
    writeFileSync(out, sentinel);
    const run = await cli(...args.map((a) => (a === 'OUT' ? out : a)));
    assert.is(run.code, 2, `${run.stderr}`);
    assert.is(run.stderr.trimEnd().split('\n').length, 1, `more than one line: ${run.stderr}`);
    assert.match(run.stderr.trimEnd(), message);
    assert.is(readFileSync(out, 'utf8'), sentinel);
  });
}

test('non-finite and zero-distance inputs exit 2 naming the index; --out untouched', async () => {
  // Build the files from a valid fixture's bytes so numpy is not needed here.
  const expp = new Uint8Array(fixture('case_odd_expp.npy'));
  const dataStart = expp.length - 13 * 9 * 16;
  new DataView(expp.buffer).setFloat64(dataStart + 16 * (4 * 9 + 2) + 8, NaN, true);
  const distance = new Uint8Array(fixture('case_odd_distance.npy'));
  new DataView(distance.buffer).setFloat64(distance.length - 9 * 8 + 5 * 8, 0, true);
  const badExpp = join(work, 'nan_expp.npy');
  const zeroDistance = join(work, 'zero_distance.npy');
  writeFileSync(badExpp, expp);
  writeFileSync(zeroDistance, distance);
  const out = join(work, 'kept_values.npy');
  writeFileSync(out, sentinel);
  const nan = await cli('compute', '--expp', badExpp, '--distance', f('case_odd_distance.npy'), '--out', out);
  assert.is(nan.code, 2);
  assert.match(nan.stderr, /^hpair: --expp \S*nan_expp\.npy: expp\[4, 2\] has a non-finite imaginary part \(NaN\)/);
  const zero = await cli('compute', '--expp', f('case_odd_expp.npy'), '--distance', zeroDistance, '--out', out);
  assert.is(zero.code, 2);
  assert.match(zero.stderr, /^hpair: --distance \S*zero_distance\.npy: distance\[5\] is 0/);
  assert.is(readFileSync(out, 'utf8'), sentinel);
});

test('--json: an error is one JSON object on stdout (code, message, flag, file), stderr empty, exit code unchanged', async () => {
  const bad = await cli('compute', '--expp', f('case_odd_expp.npy'), '--distance', f('bad_unicode.npy'), '--out', join(work, 'j.npy'), '--json');
  assert.is(bad.code, 2);
  assert.is(bad.stderr, '');
  assert.is(bad.stdout.trimEnd().split('\n').length, 1);
  assert.equal(JSON.parse(bad.stdout), {
    error: {
      code: 'BAD_NPY',
      message: `--distance ${f('bad_unicode.npy')}: unsupported dtype '<U3' (accepted: float64, float32, integers)`,
      flag: '--distance',
      file: f('bad_unicode.npy'),
    },
  });
  const usage = await cli('compute', '--json', '--bogus');
  assert.is(usage.code, 2);
  const { error } = JSON.parse(usage.stdout) as { error: Record<string, string> };
  assert.is(error.code, 'USAGE');
  assert.match(error.message, /bogus.*\(see hpair compute --help\)$/);
  assert.is(error.flag, undefined);
  const missing = await cli('compute', '--expp', f('case_odd_expp.npy'), '--distance', f('case_odd_distance.npy'), '--out', join(work, 'no-such-dir', 'h.npy'), '--json');
  assert.is(missing.code, 2);
  assert.equal(Object.keys((JSON.parse(missing.stdout) as { error: object }).error), ['code', 'message', 'flag', 'file']);
});

test('--version prints the version from package.json', async () => {
  const run = await cli('--version');
  assert.is(run.code, 0);
  const manifest = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  assert.is(run.stdout, `${manifest.version}\n`);
});

test.run();
