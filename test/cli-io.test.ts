// Where the CLI reads and writes: --out through symlinks, into FIFOs, devices and stdout; the output
// directory checked before any work; signals that leave nothing behind; FIFO inputs with a bound.
import { execFile, execFileSync, spawn } from 'node:child_process';
import { chmodSync, linkSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, statSync, symlinkSync, watch, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { track } from './helpers/children.js';
import { encodeComplexMatrixNpy, encodeFloat64VectorNpy, parseComplexMatrixNpy, type ComplexMatrix } from 'hpair';
import { assertBitIdentical, cliPath, fixture, fixturesDir, randomProblem, relativeError } from './helpers/support.js';

const test = suite('cli-io');
const work = mkdtempSync(join(tmpdir(), 'hpair-cli-io-'));
const f = (name: string): string => join(fixturesDir, name);
const inputs = ['--expp', f('case_odd_expp.npy'), '--distance', f('case_odd_distance.npy')];
const expected = parseComplexMatrixNpy(fixture('case_odd_h.npy'));
const sentinel = 'an existing file the user cares about\n';

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: Buffer;
  stderr: string;
  ms: number;
}

/** Runs the CLI; `started` sees the child (to signal it), `stdin` is written to its standard input. */
function cli(args: string[], { env = {}, stdin, started }: { env?: Record<string, string>; stdin?: Uint8Array; started?: (child: ReturnType<typeof spawn>) => void } = {}): Promise<Run> {
  const begin = performance.now();
  const child = track(spawn(process.execPath, [cliPath, ...args], { env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'pipe'] }));
  const stdout: Buffer[] = [];
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => stdout.push(chunk));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  if (stdin !== undefined) child.stdin.end(stdin);
  else child.stdin.end();
  started?.(child);
  const timer = setTimeout(() => child.kill('SIGKILL'), 30_000); // a run that hangs fails its test instead of the suite
  return new Promise((resolve) =>
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout: Buffer.concat(stdout), stderr, ms: performance.now() - begin });
    }),
  );
}

/** A shell command in its own process group, so that kill() ends it and whatever it started. */
function shell(command: string): { done: Promise<void>; kill(): void } {
  const child = track(spawn('sh', ['-c', command], { detached: true, stdio: 'ignore' }));
  const done = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  return {
    done,
    kill: () => {
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        // already gone
      }
    },
  };
}

function fifo(name: string): string {
  const path = join(work, name);
  execFileSync('mkfifo', [path]);
  return path;
}

function assertH(bytes: Uint8Array, h: ComplexMatrix = expected): void {
  const got = parseComplexMatrixNpy(bytes);
  assert.ok(relativeError(got, h) < 1e-11, `relative error ${relativeError(got, h)}`);
}

const noTempFiles = (dir = work): void => assert.equal(readdirSync(dir).filter((name) => name.endsWith('.tmp')), [], 'a temp file was left behind');

test('--out through a symlink: the link stays, its target is replaced (keeping its mode)', async () => {
  const dir = join(work, 'real');
  mkdirSync(dir);
  const target = join(dir, 'h.npy');
  writeFileSync(target, sentinel);
  chmodSync(target, 0o600);
  const link = join(work, 'link.npy');
  symlinkSync(join('real', 'h.npy'), link);
  const run = await cli(['compute', ...inputs, '--out', link]);
  assert.is(run.code, 0, run.stderr);
  assert.ok(lstatSync(link).isSymbolicLink(), 'the link was replaced by a file');
  assertH(readFileSync(target));
  assert.is(statSync(target).mode & 0o777, 0o600);
  noTempFiles(dir);
});

test('--out through a dangling symlink creates its target', async () => {
  const link = join(work, 'dangling.npy');
  symlinkSync('created-through-link.npy', link);
  const run = await cli(['compute', ...inputs, '--out', link]);
  assert.is(run.code, 0, run.stderr);
  assert.ok(lstatSync(link).isSymbolicLink());
  assertH(readFileSync(join(work, 'created-through-link.npy')));
});

test('--out that is an input, through a symlink or a hard link, is refused', async () => {
  const copy = join(work, 'input-copy.npy');
  writeFileSync(copy, fixture('case_odd_expp.npy'));
  const viaLink = join(work, 'input-link.npy');
  symlinkSync(copy, viaLink);
  const hard = join(work, 'input-hard.npy');
  linkSync(copy, hard);
  for (const out of [viaLink, hard]) {
    const run = await cli(['compute', '--expp', copy, '--distance', f('case_odd_distance.npy'), '--out', out]);
    assert.is(run.code, 2);
    assert.match(run.stderr, /refusing to overwrite an input/);
  }
  assert.equal(readFileSync(copy), Buffer.from(fixture('case_odd_expp.npy')));
});

test('--out FIFO with a reader gets H, written straight in (it stays a FIFO)', async () => {
  const path = fifo('out.fifo');
  const received = join(work, 'from-fifo.npy');
  const reader = shell(`cat "${path}" > "${received}"`);
  const run = await cli(['compute', ...inputs, '--out', path, '--json']);
  const stuck = setTimeout(() => reader.kill(), 5000); // if H never came, do not wait for ever
  await reader.done;
  clearTimeout(stuck);
  assert.is(run.code, 0, run.stderr);
  assertH(readFileSync(received));
  assert.ok(lstatSync(path).isFIFO());
  noTempFiles();
});

test('--out FIFO: no reader within --fifo-timeout, or a reader that leaves early, exits 2', async () => {
  const path = fifo('lonely.fifo');
  const run = await cli(['compute', ...inputs, '--out', path, '--fifo-timeout', '0.5']);
  assert.is(run.code, 2);
  assert.is(run.stderr, `hpair: --out ${path}: no reader opened it within 0.5 s (see --fifo-timeout)\n`);
  assert.ok(lstatSync(path).isFIFO());

  // H of 299×299 (1.4 MB) overflows the pipe's buffer, so the early exit is seen.
  const big = randomProblem(300, 7, 11, false);
  const exppFile = join(work, 'big-expp.npy');
  const distanceFile = join(work, 'big-distance.npy');
  writeFileSync(exppFile, encodeComplexMatrixNpy(big.expp));
  writeFileSync(distanceFile, encodeFloat64VectorNpy(big.distance));
  const early = fifo('early.fifo');
  const reader = shell(`head -c 10 "${early}" > /dev/null`);
  const left = await cli(['compute', '--expp', exppFile, '--distance', distanceFile, '--out', early]);
  reader.kill();
  assert.is(left.code, 2);
  assert.is(left.stderr, `hpair: --out ${early}: the reader closed it before H was written\n`);
});

test('--out a character device (a null device) is written into, not replaced', async () => {
  // As root, a CLI that regressed would replace the device with a file: use a private node, not /dev/null.
  // (Without root, rename() into /dev fails anyway, so /dev/null is safe to use.)
  let device = '/dev/null';
  if (process.getuid?.() === 0) {
    device = join(work, 'null-device');
    execFileSync('mknod', ['-m', '666', device, 'c', '1', '3']);
  }
  const before = statSync(device);
  assert.ok(before.isCharacterDevice());
  const run = await cli(['compute', ...inputs, '--out', device, '--json']);
  assert.is(run.code, 0, run.stderr);
  const after = statSync(device);
  assert.ok(after.isCharacterDevice(), 'the device was replaced');
  assert.is(after.ino, before.ino);
  noTempFiles();
});

test('--out - (and /dev/fd/1, /dev/stdout): stdout carries only the .npy; the summary and errors go to stderr', async () => {
  // /dev/stdout last: as root, a CLI that regressed would replace that link, and the first two catch it.
  for (const out of ['-', '/dev/fd/1', '/dev/stdout']) {
    const run = await cli(['compute', ...inputs, '--out', out]);
    assert.is(run.code, 0, run.stderr);
    assertH(run.stdout);
    assert.match(run.stderr, /^wrote standard output\n {2}size {6}N = 13, M = 9/);
  }
  const json = await cli(['compute', ...inputs, '--out', '-', '--json']);
  assert.is(json.code, 0);
  assertH(json.stdout);
  assert.is((JSON.parse(json.stderr) as { n: number }).n, 13);
  // A shell pipe whose reader quits early (H of 299×299 outgrows the pipe's buffer): exit 2, one line.
  const big = randomProblem(300, 7, 12, false);
  const bigExpp = join(work, 'pipe-expp.npy');
  writeFileSync(bigExpp, encodeComplexMatrixNpy(big.expp));
  const bigDistance = join(work, 'pipe-distance.npy');
  writeFileSync(bigDistance, encodeFloat64VectorNpy(big.distance));
  const errors = join(work, 'pipe-stderr.txt');
  const status = execFileSync('bash', ['-c', `"${process.execPath}" "${cliPath}" compute --expp "${bigExpp}" --distance "${bigDistance}" --out - 2>"${errors}" | head -c 100 >/dev/null; echo \${PIPESTATUS[0]}`], { encoding: 'utf8' });
  assert.is(status.trim(), '2');
  assert.is(readFileSync(errors, 'utf8'), 'hpair: --out -: the reader closed it before H was written\n');

  const bad = await cli(['compute', '--expp', f('bad_unicode.npy'), '--distance', f('case_odd_distance.npy'), '--out', '-', '--json']);
  assert.is(bad.code, 2);
  assert.is(bad.stdout.length, 0);
  assert.is((JSON.parse(bad.stderr) as { error: { code: string } }).error.code, 'BAD_NPY');
});

test('--out - on a terminal is refused (binary data would garble it)', async () => {
  const output = await new Promise<string>((resolve) =>
    execFile('script', ['-qec', `${process.execPath} ${cliPath} compute ${inputs.join(' ')} --out -`, '/dev/null'], { timeout: 60_000 }, (_e, out) => resolve(out)),
  );
  assert.match(output, /hpair: --out -: standard output is a terminal; redirect it to a file or a pipe/);
});

test('the --out directory is checked before any work: missing, not a directory, or --out a directory: exit 2 at once', async () => {
  // --expp is a FIFO nobody writes: had the inputs been read first, this would wait out --fifo-timeout.
  const silent = fifo('silent-input.fifo');
  const missing = join(work, 'no-such-dir', 'h.npy');
  const run = await cli(['compute', '--expp', silent, '--distance', f('case_odd_distance.npy'), '--out', missing, '--fifo-timeout', '30']);
  assert.is(run.code, 2);
  assert.is(run.stderr, `hpair: --out ${missing}: its directory ${join(work, 'no-such-dir')} does not exist\n`);
  assert.ok(run.ms < 10_000, `took ${run.ms} ms`);
  const file = join(work, 'a-file');
  writeFileSync(file, sentinel);
  const notDir = await cli(['compute', ...inputs, '--out', join(file, 'h.npy')]);
  assert.is(notDir.code, 2);
  assert.match(notDir.stderr.trimEnd(), /^hpair: --out \S+: its directory \S+ is not a directory$/);
  const isDir = await cli(['compute', ...inputs, '--out', work]);
  assert.is(isDir.code, 2);
  assert.match(isDir.stderr.trimEnd(), /^hpair: --out \S+: it is a directory; hpair writes regular files, FIFOs and character devices$/);
  assert.is(readFileSync(file, 'utf8'), sentinel);
  noTempFiles();
});

for (const [signal, code] of [['SIGINT', 130], ['SIGTERM', 143]] as const) {
  test(`${signal} while H is being written: the temp file is removed, the old file kept, exit ${code}`, async () => {
    // H of 3999×3999 is 256 MB: writing it takes long enough to be caught. The child is stopped the moment
    // its temp file appears, signalled, then continued, so the signal surely lands mid-write.
    const dir = join(work, `signal-${signal}`);
    mkdirSync(dir);
    const big = randomProblem(4000, 3, 5, false);
    const exppFile = join(work, `sig-expp-${signal}.npy`);
    const distanceFile = join(work, `sig-distance-${signal}.npy`);
    writeFileSync(exppFile, encodeComplexMatrixNpy(big.expp));
    writeFileSync(distanceFile, encodeFloat64VectorNpy(big.distance));
    const out = join(dir, 'h.npy');
    writeFileSync(out, sentinel);
    let sawTemp = false;
    const run = await cli(['compute', '--expp', exppFile, '--distance', distanceFile, '--out', out], {
      started: (child) => {
        const watcher = watch(dir, (_event, name) => {
          if (sawTemp || name === null || !String(name).endsWith('.tmp')) return;
          child.kill('SIGSTOP');
          sawTemp = readdirSync(dir).some((entry) => entry.endsWith('.tmp'));
          watcher.close();
          child.kill(signal);
          child.kill('SIGCONT');
        });
        child.on('close', () => watcher.close());
      },
    });
    assert.ok(sawTemp, 'the temp file was never seen');
    assert.is(run.code, code, run.stderr);
    assert.is(run.stderr, `hpair: interrupted by ${signal}; removed the unfinished --out file\n`);
    assert.is(readFileSync(out, 'utf8'), sentinel);
    noTempFiles(dir);
  });
}

test('SIGINT while waiting for a FIFO input: exit 130 at once; with --json, one JSON object', async () => {
  const path = fifo('waiting.fifo');
  // Signalled once it holds the FIFO open (so its handlers are surely installed), as a user's Ctrl-C would be.
  const interrupt = (child: ReturnType<typeof spawn>): void => {
    const poll = setInterval(() => {
      const open = (() => {
        try {
          return readdirSync(`/proc/${child.pid}/fd`).some((fd) => readlinkSync(`/proc/${child.pid}/fd/${fd}`) === path);
        } catch {
          return false;
        }
      })();
      if (open) {
        clearInterval(poll);
        child.kill('SIGINT');
      }
    }, 20);
    child.on('close', () => clearInterval(poll));
  };
  const run = await cli(['compute', '--expp', path, '--distance', f('case_odd_distance.npy'), '--out', join(work, 'never.npy')], { started: interrupt });
  assert.is(run.code, 130);
  assert.is(run.stderr, 'hpair: interrupted by SIGINT\n');
  const json = await cli(['compute', '--expp', path, '--distance', f('case_odd_distance.npy'), '--out', join(work, 'never.npy'), '--json'], { started: interrupt });
  assert.is(json.code, 130);
  assert.equal(JSON.parse(json.stdout.toString()), { error: { code: 'INTERRUPTED', message: 'interrupted by SIGINT' } });
});

test('a FIFO input with no writer fails after --fifo-timeout (IO_ERROR, exit 2), with no thread left blocked', async () => {
  // One libuv thread: a blocking open() or read() on the FIFO would hold it, and --distance (a regular
  // file, read on that thread) would never be read: the run would hang instead of timing out.
  const path = fifo('nobody.fifo');
  const run = await cli(['compute', '--expp', path, '--distance', f('case_odd_distance.npy'), '--out', join(work, 'never.npy'), '--fifo-timeout', '0.5'], {
    env: { UV_THREADPOOL_SIZE: '1' },
  });
  assert.is(run.code, 2);
  assert.is(run.stderr, `hpair: --expp ${path}: no writer opened it within 0.5 s (see --fifo-timeout)\n`);
  assert.ok(run.ms > 400 && run.ms < 10_000, `took ${run.ms} ms`);
});

test('FIFO inputs whose writers come early, late, and in either order are read (process substitution, named pipes)', async () => {
  const exppFifo = fifo('late-expp.fifo');
  const distanceFifo = fifo('late-distance.fifo');
  // The writer feeds --distance first, then --expp (a .npz, picked by key): reading one before the other would deadlock.
  const writer = shell(`sleep 0.3; cat "${f('case_odd_distance.npy')}" > "${distanceFifo}"; sleep 0.2; cat "${f('case_odd_compressed.npz')}" > "${exppFifo}"`);
  const out = join(work, 'late.npy');
  const run = await cli(['compute', '--expp', `${exppFifo}:expp`, '--distance', distanceFifo, '--out', out], { env: { UV_THREADPOOL_SIZE: '1' } });
  writer.kill();
  assert.is(run.code, 0, run.stderr);
  assertH(readFileSync(out));
  // A writer already waiting in open() when hpair opens the FIFO.
  const early = shell(`cat "${f('case_odd_expp.npy')}" > "${exppFifo}"`);
  await new Promise((resolve) => setTimeout(resolve, 200));
  const first = await cli(['compute', '--expp', exppFifo, '--distance', f('case_odd_distance.npy'), '--out', out]);
  early.kill();
  assert.is(first.code, 0, first.stderr);
  assertH(readFileSync(out));
});

test('standard input as --expp /dev/stdin: a shell pipe, or the socket a Node parent gives its child', async () => {
  const out = join(work, 'from-stdin.npy');
  const piped = await new Promise<{ code: number; stderr: string }>((resolve) =>
    execFile('sh', ['-c', `cat "${f('case_odd_expp.npy')}" | "${process.execPath}" "${cliPath}" compute --expp /dev/stdin --distance "${f('case_odd_distance.npy')}" --out "${out}"`], (error, _stdout, stderr) =>
      resolve({ code: error === null ? 0 : Number(error.code), stderr }),
    ),
  );
  assert.is(piped.code, 0, piped.stderr);
  assertH(readFileSync(out));
  const run = await cli(['compute', '--expp', '/dev/stdin', '--distance', f('case_odd_distance.npy'), '--out', out], { stdin: fixture('case_odd_expp.npy') });
  assert.is(run.code, 0, run.stderr);
  const fromFile = join(work, 'from-file.npy');
  assert.is((await cli(['compute', ...inputs, '--out', fromFile])).code, 0);
  assertBitIdentical(parseComplexMatrixNpy(readFileSync(out)).data, parseComplexMatrixNpy(readFileSync(fromFile)).data, 'stdin vs file');
});

test.run();
