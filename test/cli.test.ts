// The CLI as a user runs it: results against numpy's (A/d) @ A.conj().T, exit codes, one-line messages,
// and an --out file that no failure can damage.
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { parseComplexMatrixNpy } from 'hpair';
import { assertExactlyHermitian, cliPath, fixture, fixturesDir, relativeError } from './helpers/support.js';

const test = suite('cli');
const work = mkdtempSync(join(tmpdir(), 'hpair-cli-'));

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function cli(...args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(process.execPath, [cliPath, ...args], { timeout: 60_000 }, (error, stdout, stderr) => {
      resolve({ code: error === null ? 0 : typeof error.code === 'number' ? error.code : -1, stdout, stderr });
    });
  });
}

const f = (name: string): string => join(fixturesDir, name);

for (const name of ['odd', 'n1', 'n2', 'm1', 'm2', 'wide']) {
  test(`compute matches numpy: case ${name}`, async () => {
    const out = join(work, `h_${name}.npy`);
    const run = await cli('compute', '--expp', f(`case_${name}_expp.npy`), '--distance', f(`case_${name}_distance.npy`), '--out', out, '--workers', '2', '--json');
    assert.is(run.code, 0, run.stderr);
    const summary = JSON.parse(run.stdout) as Record<string, number>;
    for (const key of ['n', 'm', 'workers', 'seconds', 'gflops']) assert.type(summary[key], 'number', key);
    assert.match(String(summary.kernel), /^(js|wasm-simd|wasm-relaxed-simd)$/);
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
  assert.match(text.stdout, /kernel\s+(js|wasm-simd|wasm-relaxed-simd)/);
  const forced = JSON.parse((await cli('demo', '--n', '40', '--m', '30', '--kernel', 'js', '--json')).stdout) as Record<string, unknown>;
  assert.is(forced.kernel, 'js');
  const json = await cli('demo', '--n', '150', '--m', '90', '--workers', '1', '--json');
  const summary = JSON.parse(json.stdout) as Record<string, number>;
  assert.equal([summary.n, summary.m, summary.workers], [150, 90, 1]);
  assert.ok(summary.seconds > 0 && summary.gflops > 0);
  const again = JSON.parse((await cli('demo', '--n', '150', '--m', '90', '--workers', '2', '--json')).stdout) as Record<string, number>;
  assert.is(again.checksum, summary.checksum, 'checksum differs between 1 and 2 workers');
});

test('on a terminal, a job over a second shows a progress bar on stderr; --json never does', async () => {
  // `script` (util-linux) runs the CLI on a pseudo-terminal, as a user's shell would.
  const onTty = (extra: string): Promise<string> =>
    new Promise((resolve) => {
      const command = `${process.execPath} ${cliPath} demo --n 1600 --m 1600 --kernel js --workers 2 ${extra}`;
      execFile('script', ['-qec', command, '/dev/null'], { timeout: 120_000 }, (_error, stdout) => resolve(stdout));
    });
  const shown = await onTty('');
  assert.match(shown, /\[#+ *\] +\d+%/);
  assert.match(shown, /checksum/);
  const json = await onTty('--json');
  assert.not.match(json, /\[#/);
  assert.ok(JSON.parse(json.trim()).n === 1600);
});

const sentinel = 'an existing file the user cares about\n';
const badRuns: Array<[string, string[], RegExp]> = [
  ['no command', [], /^hpair: missing command/],
  ['unknown command', ['frobnicate'], /^hpair: unknown command 'frobnicate'/],
  ['unknown flag', ['demo', '--bogus'], /^hpair: .*bogus/],
  ['unknown kernel', ['demo', '--kernel', 'cuda'], /^hpair: kernel must be one of 'auto', 'native', .*'js'; got cuda/],
  ['missing --distance', ['compute', '--expp', f('case_odd_expp.npy'), '--out', 'OUT'], /^hpair: compute needs --distance FILE/],
  ['bad --workers', ['compute', '--expp', f('case_odd_expp.npy'), '--distance', f('case_odd_distance.npy'), '--out', 'OUT', '--workers', 'two'], /--workers must be a positive integer/],
  ['missing file', ['compute', '--expp', f('nope.npy'), '--distance', f('case_odd_distance.npy'), '--out', 'OUT'], /^hpair: cannot read --expp .*ENOENT/],
  ['not .npy', ['compute', '--expp', f('make_fixtures.py'), '--distance', f('case_odd_distance.npy'), '--out', 'OUT'], /^hpair: not a \.npy file/],
  ['wrong dtype', ['compute', '--expp', f('bad_int64.npy'), '--distance', f('case_odd_distance.npy'), '--out', 'OUT'], /^hpair: unsupported dtype/],
  ['wrong dimensionality', ['compute', '--expp', f('bad_3d.npy'), '--distance', f('case_odd_distance.npy'), '--out', 'OUT'], /^hpair: expected a 2-D array/],
  ['distance length', ['compute', '--expp', f('case_odd_expp.npy'), '--distance', f('case_m2_distance.npy'), '--out', 'OUT'], /^hpair: distance has length 2 but expp has M = 9/],
  ['out is an input', ['compute', '--expp', f('case_odd_expp.npy'), '--distance', f('case_odd_distance.npy'), '--out', f('case_odd_expp.npy')], /refusing to overwrite/],
];
for (const [what, args, message] of badRuns) {
  test(`exit 2 with one line: ${what}; --out untouched`, async () => {
    const out = join(work, `kept_${what.replace(/\W+/g, '_')}.npy`);
    writeFileSync(out, sentinel);
    const run = await cli(...args.map((a) => (a === 'OUT' ? out : a)));
    assert.is(run.code, 2, `${run.stderr}`);
    assert.is(run.stderr.trimEnd().split('\n').length, 1, `more than one line: ${run.stderr}`);
    assert.match(run.stderr, message);
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
  assert.match(nan.stderr, /^hpair: expp\[4, 2\] has a non-finite imaginary part \(NaN\)/);
  const zero = await cli('compute', '--expp', f('case_odd_expp.npy'), '--distance', zeroDistance, '--out', out);
  assert.is(zero.code, 2);
  assert.match(zero.stderr, /^hpair: distance\[5\] is 0/);
  assert.is(readFileSync(out, 'utf8'), sentinel);
});

test('an unwritable --out exits 2, leaves no temp file, and a failed write keeps the old file', async () => {
  const run = await cli('compute', '--expp', f('case_odd_expp.npy'), '--distance', f('case_odd_distance.npy'), '--out', join(work, 'no-such-dir', 'h.npy'));
  assert.is(run.code, 2);
  assert.match(run.stderr, /^hpair: cannot write --out/);
  assert.ok(readdirSync(work).every((name) => !name.endsWith('.tmp')));
});

test.run();
