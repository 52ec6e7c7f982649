// `hpair compute --max-memory` as a user runs it: the same file as in memory, byte for byte; one-line errors
// naming the flag and the file; SIGINT mid-run and a resume that recomputes nothing journaled; a real full
// disk (a tiny tmpfs, when this runs as root and may mount one).
import { execFileSync } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, statSync, utimesSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { skip } from './helpers/children.js';
import { fixturesDir } from './helpers/support.js';
import { journalIds, problemOnDisk, workDir } from './helpers/out-of-core.js';
import { runCli, type Run, startCli, until } from './helpers/cli-run.js';

const test = suite('out-of-core-cli');
const cli = (...args: string[]): Promise<Run> => runCli(args);
const start = (...args: string[]): ReturnType<typeof startCli> => startCli(args);




const oneLine = (run: Run): void => {
  assert.is(run.stderr.trimEnd().split('\n').length, 1, `one line: ${run.stderr}`);
  assert.match(run.stderr, /^hpair: /);
};

test('compute --max-memory writes the same file as compute in memory, byte for byte', async () => {
  const dir = workDir('ooc-cli');
  const p = problemOnDisk(dir, 302, 97, 11);
  const inMemory = await cli('compute', '--expp', p.expp, '--distance', p.distance, '--out', join(dir, 'H-mem.npy'), '--workers', '2');
  assert.is(inMemory.code, 0, inMemory.stderr);
  const run = await cli('compute', '--expp', p.expp, '--distance', p.distance, '--out', join(dir, 'H.npy'), '--workers', '2', '--max-memory', '2M', '--json');
  assert.is(run.code, 0, run.stderr);
  assert.is(run.stderr, '', 'no progress bar off a terminal');
  const summary = JSON.parse(run.stdout) as Record<string, number | boolean>;
  assert.is(summary.outOfCore, true);
  assert.is(summary.n, 302);
  assert.is(summary.maxMemory, 2 * 2 ** 20);
  assert.ok((summary.blocks as number) > 1 && summary.computed === summary.blocks && summary.skipped === 0);
  assert.ok(readFileSync(join(dir, 'H.npy')).equals(readFileSync(join(dir, 'H-mem.npy'))), 'identical files');
  const text = await cli('compute', '--expp', p.expp, '--distance', p.distance, '--out', join(dir, 'H2.npy'), '--max-memory', '1G');
  assert.is(text.code, 0, text.stderr);
  for (const part of [/out of core: --max-memory 1G/, /H is 301×301/, /blocks\s+1 of 301 rows: 1 computed/, /peak RSS/]) assert.match(text.stdout, part);
  assert.ok(readFileSync(join(dir, 'H2.npy')).equals(readFileSync(join(dir, 'H-mem.npy'))));
});

test('bad flags, paths and inputs: exit 2 with one line naming the flag and the file', async () => {
  const dir = workDir('ooc-cli-bad');
  const p = problemOnDisk(dir, 40, 10, 1);
  const q = problemOnDisk(dir, 40, 11, 1, {}, 'other-');
  const out = join(dir, 'H.npy');
  const base = ['compute', '--expp', p.expp, '--distance', p.distance, '--out', out];
  // Each fails before any work: run side by side.
  const values = ['lots', '0', '-1', '12Q', ''];
  for (const [k, run] of (await Promise.all(values.map((value) => cli(...base, '--max-memory', value)))).entries()) {
    assert.is(run.code, 2, `--max-memory ${values[k]}`);
    oneLine(run);
    assert.match(run.stderr, /--max-memory/);
  }
  const cases: Array<[string[], RegExp]> = [
    [['compute', '--expp', join(dir, 'nope.npy'), '--distance', p.distance, '--out', out, '--max-memory', '1M'], /--expp .*nope\.npy: cannot read it: ENOENT: no such file/],
    [['compute', '--expp', join(fixturesDir, 'distance_f8.npy'), '--distance', p.distance, '--out', out, '--max-memory', '1M'], /--expp .*distance_f8\.npy: expected a 2-D array/],
    [['compute', '--expp', join(fixturesDir, 'make_fixtures.py'), '--distance', p.distance, '--out', out, '--max-memory', '1M'], /--expp .*make_fixtures\.py is not a \.npy file/],
    [['compute', '--expp', p.expp, '--distance', q.distance, '--out', out, '--max-memory', '1M'], /--distance .*other-D\.npy has length 11 but --expp .*E\.npy has M = 10 columns/],
    [['compute', '--expp', p.expp, '--distance', p.distance, '--out', join(dir, 'missing', 'H.npy'), '--max-memory', '1M'], /--out .*missing.*H\.npy: its directory .*missing does not exist/],
    [['compute', '--expp', p.expp, '--distance', p.distance, '--out', dir, '--max-memory', '1M'], /--out .*: it is a directory/],
    [['compute', '--expp', p.expp, '--distance', p.distance, '--out', p.distance, '--max-memory', '1M'], /--out .*D\.npy: it is the same file as --distance/],
    [['compute', '--expp', p.expp, '--distance', p.distance, '--out', out, '--max-memory', '100K'], /budget of 100 KiB cannot hold even a 1×1 block/],
    [['compute', '--expp', join(fixturesDir, 'case_odd.npz'), '--distance', p.distance, '--out', out, '--max-memory', '1M'], /--max-memory needs --expp and --distance as \.npy files \(not \.npz archives/],
  ];
  const runs = await Promise.all(cases.map(([args]) => cli(...args)));
  for (const [k, [args, message]] of cases.entries()) {
    const run = runs[k];
    assert.is(run.code, 2, `${args.join(' ')}: ${run.stderr}`);
    oneLine(run);
    assert.match(run.stderr, message);
  }
  assert.not.ok(existsSync(out) || existsSync(`${out}.partial`) || existsSync(`${out}.journal`), 'nothing written');
});

test('SIGINT mid-run exits 130 with whole blocks journaled; another job is refused; the same command resumes without recomputing them', async () => {
  const dir = workDir('ooc-cli-sigint');
  // Hundreds of blocks on one worker of the JavaScript kernel: seconds on any CPU, so the signal lands mid-run.
  const p = problemOnDisk(dir, 1001, 400, 3);
  const whole = new Date(Math.floor(Date.now() / 1000) * 1000 - 60_000);
  utimesSync(p.distance, whole, whole);
  const out = join(dir, 'H.npy');
  const args = ['compute', '--expp', p.expp, '--distance', p.distance, '--out', out, '--max-memory', '3M', '--workers', '1', '--kernel', 'js'];
  const running = start(...args);
  await until(() => journalIds(`${out}.journal`).length > 0 || existsSync(out), 'a journaled block');
  running.stop('SIGINT');
  const stopped = await running.done;
  if (stopped.code === 0) assert.unreachable('the run finished before SIGINT reached it: this host needs a larger problem here');
  assert.is(stopped.code, 130, stopped.stderr);
  assert.match(stopped.stderr, /^hpair: interrupted by SIGINT: \d+ of \d+ blocks are in .*H\.npy\.journal; run the same command again to resume\n$/);
  const [, journaled, total] = /(\d+) of (\d+) blocks/.exec(stopped.stderr)!.map(Number);
  assert.is(journalIds(`${out}.journal`).length, journaled, 'the journal holds what the message says');
  assert.ok(journaled > 0 && journaled < total, `${journaled} of ${total}`);
  assert.not.ok(existsSync(out));
  assert.ok(existsSync(`${out}.partial`));
  // The same output with a changed input is another job.
  const later = new Date(whole.getTime() + 5000);
  utimesSync(p.distance, later, later);
  const other = await cli(...args);
  assert.is(other.code, 2);
  oneLine(other);
  assert.match(other.stderr, /belongs to a different job \(distance was modified/);
  utimesSync(p.distance, whole, whole);
  // Resumed: the journaled blocks are skipped, the rest computed, and H is what the in-memory run gives.
  const resumed = await cli(...args, '--json');
  assert.is(resumed.code, 0, resumed.stderr);
  const summary = JSON.parse(resumed.stdout) as Record<string, number>;
  assert.equal([summary.blocks, summary.skipped, summary.computed], [total, journaled, total - journaled]);
  assert.not.ok(existsSync(`${out}.partial`) || existsSync(`${out}.journal`));
  const inMemory = await cli('compute', '--expp', p.expp, '--distance', p.distance, '--out', join(dir, 'H-mem.npy'), '--kernel', 'js');
  assert.is(inMemory.code, 0, inMemory.stderr);
  assert.ok(readFileSync(out).equals(readFileSync(join(dir, 'H-mem.npy'))), 'identical to the in-memory H');
});

/** A tmpfs of `bytes` at a fresh directory, or undefined when this process may not mount one. */
function tinyDisk(bytes: number): string | undefined {
  if (process.platform !== 'linux' || process.getuid?.() !== 0) return undefined;
  const dir = workDir('ooc-tmpfs');
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${bytes}`, 'tmpfs', dir], { stdio: 'ignore' });
    return dir;
  } catch {
    rmSync(dir, { recursive: true, force: true });
    return undefined;
  }
}

/** Fills the file system at `dir` until a write fails with ENOSPC. */
function fill(path: string): void {
  const fd = openSync(path, 'w');
  const chunk = Buffer.alloc(64 * 1024, 1);
  try {
    for (;;) writeSync(fd, chunk);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOSPC') throw error;
  } finally {
    closeSync(fd);
  }
}

/** Whether this process may mount a tmpfs (root on Linux, allowed by its container): mounted once and removed. */
function tmpfsMountable(): boolean {
  const probe = tinyDisk(1 << 20);
  if (probe === undefined) return false;
  execFileSync('umount', [probe], { stdio: 'ignore' });
  rmSync(probe, { recursive: true, force: true });
  return true;
}

const fullDisk = 'a full disk: refused up front when H cannot fit; mid-run ENOSPC exits 2 with the journal consistent, and resumes';
if (!tmpfsMountable()) {
  skip('out-of-core-cli', fullDisk, 'cannot mount a tmpfs here (needs root on Linux); ENOSPC is still covered by an injected failure in out-of-core.test.ts');
} else test(fullDisk, async () => {
  const disk = tinyDisk(4 << 20);
  assert.ok(disk !== undefined, 'a tmpfs could be mounted a moment ago, and not now');
  try {
    const dir = workDir('ooc-cli-enospc');
    const p = problemOnDisk(dir, 401, 4000, 5); // H: 2.4 MiB in blocks, seconds on the js kernel; inputs outside the tmpfs
    const out = join(disk, 'H.npy');
    const args = ['compute', '--expp', p.expp, '--distance', p.distance, '--out', out, '--max-memory', '16M', '--workers', '2', '--kernel', 'js'];
    // Too little room from the start: refused before anything is computed.
    mkdirSync(join(disk, 'filler'));
    fill(join(disk, 'filler', 'a'));
    const refused = await cli(...args);
    assert.is(refused.code, 2);
    oneLine(refused);
    assert.match(refused.stderr, /cannot write --out .*H\.npy: H needs 2\.4 MiB more on disk but .* has .* free/);
    rmSync(join(disk, 'filler'), { recursive: true });
    // Room at the start, none once a few blocks are in.
    const running = start(...args);
    let ended = false;
    void running.done.then(() => (ended = true));
    await until(() => journalIds(`${out}.journal`).length > 0 || ended, 'a journaled block');
    fill(join(disk, 'filler-b'));
    const failed = await running.done;
    if (failed.code === 0) {
      assert.unreachable('the run finished before the disk filled: this host needs a larger problem here');
    }
    assert.is(failed.code, 2, failed.stderr);
    oneLine(failed);
    assert.match(failed.stderr, /no space left on device \(ENOSPC\).*\d+ of \d+ blocks are in .*journal; run the same command again to resume/);
    const journaled = journalIds(`${out}.journal`);
    assert.ok(journaled.length > 0);
    assert.is(new Set(journaled).size, journaled.length);
    rmSync(join(disk, 'filler-b'));
    const resumed = await cli(...args, '--json');
    assert.is(resumed.code, 0, resumed.stderr);
    const summary = JSON.parse(resumed.stdout) as Record<string, number>;
    assert.is(summary.skipped, journaled.length);
    assert.is(summary.computed, summary.blocks - journaled.length);
    const reference = join(dir, 'H-mem.npy');
    assert.is((await cli('compute', '--expp', p.expp, '--distance', p.distance, '--out', reference, '--kernel', 'js')).code, 0);
    assert.ok(readFileSync(out).equals(readFileSync(reference)), 'identical to the in-memory H');
    assert.is(statSync(out).size, readFileSync(reference).length);
  } finally {
    execFileSync('umount', [disk], { stdio: 'ignore' });
    rmSync(disk, { recursive: true, force: true });
  }
});

test.run();
