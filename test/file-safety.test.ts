// Out of core in a directory others can write to: a symlink, FIFO or device planted at the partial output's,
// the journal's or the lock's name is refused before anything is written (its target byte for byte as it was,
// no H.npy); a partial output swapped for a link mid-run is never published; H keeps --out's permission bits;
// another host's lock goes stale once its heartbeat is old, which its writer keeps fresh; SIGHUP stops a run as
// SIGINT does, releasing the lock, and the same command resumes to the in-memory H.
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, lstatSync, readFileSync, renameSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { computeToNpy, createPool, LOCK_HEARTBEAT_MS, LOCK_STALE_MS, parseComplexMatrixNpy, type ComplexMatrix, type Pool } from 'hpair';
import { assertBitIdentical } from './helpers/support.js';
import { journalIds, problemOnDisk, workDir } from './helpers/out-of-core.js';
import { runCli, type Run, startCli, until } from './helpers/cli-run.js';

const test = suite('file-safety');
const cli = (...args: string[]): Promise<Run> => runCli(args);
const start = (...args: string[]): ReturnType<typeof startCli> => startCli(args);
let pool: Pool;
test.before(() => {
  pool = createPool({ workers: 2, inlineFlops: 0 });
});
test.after(async () => {
  await pool.close();
});


async function rejection(promise: Promise<unknown>): Promise<Error & { code?: string }> {
  try {
    await promise;
  } catch (error) {
    return error as Error & { code?: string };
  }
  return assert.unreachable('expected a rejection') as never;
}

async function assertSameAsInMemory(out: string, values: { expp: ComplexMatrix; distance: Float64Array }, what: string): Promise<void> {
  const whole = await pool.hermitian(values.expp, values.distance);
  const written = parseComplexMatrixNpy(readFileSync(out));
  assertBitIdentical(written.data, whole.data, what);
}

/** A victim file somewhere else, and a check that it is byte for byte (and by mtime) what it was. */
function victim(dir: string): { path: string; intact: (what: string) => void } {
  const path = join(dir, 'victim.txt');
  writeFileSync(path, 'precious bytes\n');
  const before = statSync(path);
  return {
    path,
    intact(what) {
      const now = statSync(path);
      assert.is(readFileSync(path, 'utf8'), 'precious bytes\n', `${what}: the link's target is untouched`);
      assert.is(now.size, before.size, `${what}: size`);
      assert.is(now.mtimeMs, before.mtimeMs, `${what}: mtime`);
      assert.is(now.mode, before.mode, `${what}: mode`);
    },
  };
}

function mkfifo(path: string): boolean {
  try {
    execFileSync('mkfifo', [path], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

test('a symlink or FIFO at the partial output, journal, lock or manifest name: refused before anything is written', async () => {
  const dir = workDir('safety-planted');
  const problem = problemOnDisk(dir, 120, 17, 3);
  const out = join(dir, 'H.npy');
  const args = { expp: problem.expp, distance: problem.distance, out, blockSize: 30 };
  const target = victim(dir);
  for (const suffix of ['.partial', '.journal', '.lock', '.manifest.json']) {
    for (const kind of ['link', 'dangling link', 'fifo'] as const) {
      const planted = `${out}${suffix}`;
      const what = `a ${kind} at ${suffix}`;
      if (kind === 'link') symlinkSync(target.path, planted);
      else if (kind === 'dangling link') symlinkSync(join(dir, 'would-be-created'), planted);
      else if (!mkfifo(planted)) {
        console.log(`  skipped (${what}): no mkfifo here`);
        continue;
      }
      const error = await rejection(computeToNpy(pool, args));
      assert.is(error.code, 'IO_ERROR', `${what}: ${error.message}`);
      assert.match(error.message, kind === 'fifo' ? /a FIFO/ : /a symbolic link/, what);
      assert.match(error.message, /remove it/, what);
      target.intact(what);
      assert.not.ok(existsSync(join(dir, 'would-be-created')), `${what}: the dangling link's target is not created`);
      assert.not.ok(existsSync(out), `${what}: no H.npy`);
      assert.is(lstatSync(planted).isSymbolicLink(), kind !== 'fifo', `${what}: left as it was`);
      for (const other of ['.partial', '.journal', '.lock', '.manifest.json']) if (other !== suffix) assert.not.ok(existsSync(`${out}${other}`), `${what}: no ${other} written`);
      rmSync(planted);
    }
  }
  // `out` itself a link (the library replaces `out` by a rename): refused too, the link and its target kept.
  symlinkSync(target.path, out);
  const linked = await rejection(computeToNpy(pool, args));
  assert.is(linked.code, 'IO_ERROR', linked.message);
  assert.match(linked.message, /H\.npy is a symbolic link/);
  assert.ok(lstatSync(out).isSymbolicLink());
  target.intact('out a link');
  rmSync(out);
  // The CLI says so in one line, exit 2, the target intact.
  symlinkSync(target.path, `${out}.partial`);
  const run = await cli('compute', '--expp', problem.expp, '--distance', problem.distance, '--out', out, '--max-memory', '1M');
  assert.is(run.code, 2, run.stderr);
  assert.is(run.stderr.trimEnd().split('\n').length, 1, run.stderr);
  assert.match(run.stderr, /^hpair: .*H\.npy\.partial is a symbolic link/);
  target.intact('the CLI');
  assert.not.ok(existsSync(out));
  rmSync(`${out}.partial`);
  // With the link gone, the same call computes H.
  await computeToNpy(pool, args);
  await assertSameAsInMemory(out, problem.values, 'after the refusals');
  rmSync(dir, { recursive: true, force: true });
});

test('resuming: a partial output that became a symlink is refused; one swapped for a link mid-run is never published', async () => {
  const dir = workDir('safety-swap');
  const problem = problemOnDisk(dir, 120, 17, 4);
  const out = join(dir, 'H.npy');
  const target = victim(dir);
  const args = { expp: problem.expp, distance: problem.distance, out, blockSize: 30 };
  // Stop after the first write, so a journal and a partial output exist; then put a link in the partial's place.
  const controller = new AbortController();
  await rejection(computeToNpy(pool, { ...args, signal: controller.signal, commitIntervalMs: 0, beforeWrite: () => controller.abort() }));
  assert.ok(existsSync(`${out}.journal`) && existsSync(`${out}.partial`));
  rmSync(`${out}.partial`);
  symlinkSync(target.path, `${out}.partial`);
  const error = await rejection(computeToNpy(pool, args));
  assert.is(error.code, 'IO_ERROR', error.message);
  assert.match(error.message, /a symbolic link/);
  target.intact('resume through a link');
  assert.not.ok(existsSync(out));
  rmSync(`${out}.partial`);
  rmSync(`${out}.journal`);
  // Mid-run, the partial output is moved away and a link planted at its name: the run writes on into the file
  // it opened, and at the end refuses to rename the link onto H.npy.
  let swapped = false;
  const swap = await rejection(
    computeToNpy(pool, {
      ...args,
      beforeWrite: () => {
        if (swapped) return;
        swapped = true;
        renameSync(`${out}.partial`, join(dir, 'moved-away'));
        symlinkSync(target.path, `${out}.partial`);
      },
    }),
  );
  assert.is(swap.code, 'IO_ERROR', swap.message);
  assert.match(swap.message, /was replaced while the run wrote it .*nothing was published/);
  assert.not.ok(existsSync(out), 'H.npy is not created');
  assert.not.ok(lstatSync(out, { throwIfNoEntry: false })?.isSymbolicLink() ?? false, 'and is no symlink');
  target.intact('swap mid-run');
  assert.not.ok(existsSync(`${out}.lock`), 'the lock is released');
  rmSync(dir, { recursive: true, force: true });
});

test('H keeps --out\'s permission bits (0600 stays 0600, out of core as in memory); a new H gets the umask\'s', async () => {
  const dir = workDir('safety-mode');
  const problem = problemOnDisk(dir, 90, 13, 5);
  const out = join(dir, 'H.npy');
  writeFileSync(out, 'old');
  chmodSync(out, 0o600);
  let partialMode = -1;
  await computeToNpy(pool, {
    expp: problem.expp,
    distance: problem.distance,
    out,
    blockSize: 30,
    beforeWrite: () => {
      if (partialMode < 0) partialMode = statSync(`${out}.partial`).mode & 0o777;
    },
  });
  assert.is(partialMode, 0o600, 'the partial output is never more open than --out');
  assert.is(statSync(out).mode & 0o7777, 0o600, 'library');
  await assertSameAsInMemory(out, problem.values, 'mode kept');
  for (const [name, extra] of [['ooc.npy', ['--max-memory', '3M']], ['mem.npy', []]] as const) {
    const path = join(dir, name);
    writeFileSync(path, 'old');
    chmodSync(path, 0o640);
    const run = await cli('compute', '--expp', problem.expp, '--distance', problem.distance, '--out', path, ...extra);
    assert.is(run.code, 0, run.stderr);
    assert.is(statSync(path).mode & 0o7777, 0o640, name);
  }
  assert.ok(readFileSync(join(dir, 'ooc.npy')).equals(readFileSync(join(dir, 'mem.npy'))));
  const fresh = join(dir, 'fresh.npy');
  await computeToNpy(pool, { expp: problem.expp, distance: problem.distance, out: fresh });
  const umask = process.umask();
  assert.is(statSync(fresh).mode & 0o777, 0o666 & ~umask, `umask ${umask.toString(8)}`);
  rmSync(dir, { recursive: true, force: true });
});

test('a new H gets 0666 less the umask, in memory as out of core (umask 002 and 077; the default 022 would hide a fixed 0644)', async () => {
  const dir = workDir('safety-umask');
  const problem = problemOnDisk(dir, 61, 9, 8);
  const previous = process.umask(0o002); // the children inherit it
  try {
    for (const umask of [0o002, 0o077]) {
      process.umask(umask);
      for (const [name, extra] of [['ooc', ['--max-memory', '3M']], ['mem', []]] as const) {
        const path = join(dir, `${name}-${umask.toString(8)}.npy`);
        const run = await cli('compute', '--expp', problem.expp, '--distance', problem.distance, '--out', path, ...extra, '--json');
        assert.is(run.code, 0, run.stderr);
        assert.is(JSON.parse(run.stdout).outOfCore === true, name === 'ooc', `${name}: ${run.stdout}`);
        assert.is(statSync(path).mode & 0o7777, 0o666 & ~umask, `${name} under umask ${umask.toString(8)}`);
        await assertSameAsInMemory(path, problem.values, `${name} under umask ${umask.toString(8)}`);
      }
    }
  } finally {
    process.umask(previous);
  }
  rmSync(dir, { recursive: true, force: true });
});

test('another host\'s lock: refused while its heartbeat is fresh, taken over once it is older than LOCK_STALE_MS; the writer refreshes its own', async () => {
  assert.ok(LOCK_HEARTBEAT_MS * 4 <= LOCK_STALE_MS, 'several heartbeats fit in the stale time');
  const dir = workDir('safety-lock');
  const problem = problemOnDisk(dir, 120, 17, 6);
  const out = join(dir, 'H.npy');
  const args = { expp: problem.expp, distance: problem.distance, out, blockSize: 30 };
  const lock = (heartbeat: number | undefined): string =>
    JSON.stringify({ pid: 4242, host: 'elsewhere.example', since: new Date(Date.now() - 3_600_000).toISOString(), token: 't', ...(heartbeat === undefined ? {} : { heartbeat: new Date(heartbeat).toISOString() }) });
  // Fresh (and one from a clock ahead of ours): refused, naming when it would go stale.
  for (const beat of [Date.now() - 1000, Date.now() + 60_000]) {
    writeFileSync(`${out}.lock`, lock(beat));
    const error = await rejection(computeToNpy(pool, args));
    assert.is(error.code, 'IO_ERROR');
    assert.match(error.message, new RegExp(`pid 4242 on elsewhere\\.example, since .*, last heartbeat .*\\) is writing it; it is taken over once its heartbeat is ${LOCK_STALE_MS / 1000} s old`));
    assert.ok(existsSync(`${out}.lock`), 'left alone');
    assert.not.ok(existsSync(`${out}.partial`), 'nothing written');
  }
  // Without a heartbeat (an older hpair's): nothing says its writer is gone, so it is never stale.
  writeFileSync(`${out}.lock`, lock(undefined));
  assert.is((await rejection(computeToNpy(pool, args))).code, 'IO_ERROR');
  // Stale: taken over, H computed, the lock removed.
  writeFileSync(`${out}.lock`, lock(Date.now() - LOCK_STALE_MS - 5000));
  await computeToNpy(pool, args);
  await assertSameAsInMemory(out, problem.values, 'after taking over a stale lock');
  assert.not.ok(existsSync(`${out}.lock`));
  // The writer's own heartbeat moves on while it runs (refreshed every few ms here), and another host's
  // view of it stays fresh.
  rmSync(out);
  const beats = new Set<string>();
  let holder: Record<string, unknown> | undefined;
  await computeToNpy(pool, {
    ...args,
    lockHeartbeatMs: 5,
    beforeWrite: async () => {
      if (beats.size >= 3) return;
      for (let spins = 0; beats.size < 3 && spins < 2000; spins++) {
        holder = JSON.parse(readFileSync(`${out}.lock`, 'utf8')) as Record<string, unknown>;
        beats.add(String(holder.heartbeat));
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
    },
  });
  assert.ok(beats.size >= 3, `the heartbeat changed: ${[...beats].join(', ')}`);
  assert.equal([holder?.pid, holder?.host], [process.pid, hostname()]);
  assert.type(holder?.since, 'string');
  assert.not.ok(existsSync(`${out}.lock`));
  rmSync(dir, { recursive: true, force: true });
});



test('SIGHUP mid-run: exit 129, one line saying what is journaled, the lock released; a second signal exits at once, lock released too; the same command resumes', async () => {
  const dir = workDir('safety-sighup');
  const p = problemOnDisk(dir, 1001, 400, 7);
  const out = join(dir, 'H.npy');
  const args = ['compute', '--expp', p.expp, '--distance', p.distance, '--out', out, '--max-memory', '3M', '--workers', '1', '--kernel', 'js'];
  const running = start(...args);
  let stopped: Run;
  try {
    await until(() => journalIds(`${out}.journal`).length > 0 || existsSync(out), 'a journaled block');
    running.stop('SIGHUP');
    stopped = await running.done;
  } finally {
    running.stop('SIGKILL'); // a no-op once it has exited; stops it if the wait above failed
  }
  if (stopped.code === 0) assert.unreachable('the run finished before SIGHUP reached it: this host needs a larger problem here');
  assert.is(stopped.code, 129, stopped.stderr);
  assert.match(stopped.stderr, /^hpair: interrupted by SIGHUP: \d+ of \d+ blocks are in .*H\.npy\.journal; run the same command again to resume\n$/);
  assert.not.ok(existsSync(`${out}.lock`), 'the lock is released');
  assert.ok(existsSync(`${out}.partial`) && journalIds(`${out}.journal`).length > 0);
  // Two signals back to back: whichever way it ends, the lock is gone.
  const again = start(...args);
  let twice: Run;
  try {
    await until(() => existsSync(`${out}.lock`) || existsSync(out), 'the second run\'s lock');
    again.stop('SIGHUP');
    again.stop('SIGTERM');
    twice = await again.done;
  } finally {
    again.stop('SIGKILL');
  }
  assert.ok([129, 143, 0].includes(twice.code), `exit ${twice.code}: ${twice.stderr}`);
  if (twice.code === 143) assert.match(twice.stderr, /interrupted by SIGTERM again while stopping/);
  assert.not.ok(existsSync(`${out}.lock`), 'the lock is released by a second signal too');
  const resumed = await cli(...args);
  assert.is(resumed.code, 0, resumed.stderr);
  // Bit for bit what the same kernel gives in memory.
  const inMemory = await cli('compute', '--expp', p.expp, '--distance', p.distance, '--out', join(dir, 'H-mem.npy'), '--kernel', 'js');
  assert.is(inMemory.code, 0, inMemory.stderr);
  assert.ok(readFileSync(out).equals(readFileSync(join(dir, 'H-mem.npy'))), 'resumed after SIGHUP: identical to the in-memory H');
  rmSync(dir, { recursive: true, force: true });
});

test.run();
