// hpair cluster on a real Redis: worker processes and submit as a user runs them. Each test uses its own
// queue. Without HPAIR_TEST_REDIS and without redis-server installed, the tests that need Redis are skipped.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { closeSync, copyFileSync, existsSync, lstatSync, mkdtempSync, openSync, readdirSync, readFileSync, renameSync, rmSync, statSync, symlinkSync, truncateSync, writeFileSync, writeSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { hostname, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { createPool, encodeComplexMatrixNpy, encodeFloat64VectorNpy, parseComplexMatrixNpy, type ComplexMatrix } from 'hpair';
import { assertBitIdentical, cliPath, NATIVE_VARIANTS, randomProblem } from './helpers/support.js';
import { freePort, redisServerBinary, startRedis, testRedisUrl } from './helpers/redis.js';
import { testIf, track, trackServer, untrackServer } from './helpers/children.js';

const test = suite('cluster');
const work = mkdtempSync(join(tmpdir(), 'hpair-cluster-'));
const url = await testRedisUrl();
const binary = redisServerBinary();
if (url === undefined) {
  console.log('\n  cluster: the tests that need Redis are SKIPPED: no HPAIR_TEST_REDIS and no redis-server (apt-get install redis-server)');
}
const withRedis = testIf(test, 'cluster', url !== undefined, () => 'no HPAIR_TEST_REDIS and no redis-server');
const withOwnRedis = testIf(test, 'cluster', binary !== undefined, () => 'no redis-server to start');

let queues = 0;
const newQueue = (): string => `t${process.pid}-${Date.now().toString(36)}-${queues++}`;

interface Problem {
  expp: string;
  distance: string;
  h: ComplexMatrix;
}

const problems = new Map<string, Promise<Problem>>();
/** Input files and the reference H from pool.hermitian (same machine, same auto kernel as the CLI). */
function problem(N: number, M: number, seed: number): Promise<Problem> {
  const key = `${N}x${M}s${seed}`;
  let made = problems.get(key);
  if (made === undefined) {
    made = (async () => {
      const { expp, distance } = randomProblem(N, M, seed);
      const files = { expp: join(work, `${key}_expp.npy`), distance: join(work, `${key}_distance.npy`) };
      writeFileSync(files.expp, encodeComplexMatrixNpy(expp));
      writeFileSync(files.distance, encodeFloat64VectorNpy(distance));
      const pool = createPool({ workers: 2 });
      const h = await pool.hermitian(expp, distance);
      await pool.close();
      return { ...files, h };
    })();
    problems.set(key, made);
  }
  return made;
}

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  ms: number;
}

/** Children of this file still running (the suite-level guard in helpers/children.ts kills them too). */
const children = new Set<ChildProcess>();

/** `hpair …` as a child process; `onStart` gets the child (to signal it). */
function cli(args: string[], onStart?: (child: ChildProcess) => void, timeoutMs = 90_000): Promise<Run> {
  return new Promise((resolve) => {
    const started = performance.now();
    const child = track(spawn(process.execPath, [cliPath, ...args], { stdio: ['ignore', 'pipe', 'pipe'] }));
    children.add(child);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      children.delete(child);
      resolve({ code, signal, stdout, stderr, ms: performance.now() - started });
    });
    onStart?.(child);
  });
}

interface WorkerProcess {
  child: ChildProcess;
  output(): string;
  /** Resolves once the output matches (or rejects after ms). */
  waitFor(pattern: RegExp, ms?: number): Promise<void>;
  /** Ids of the blocks it logged as done. */
  blocks(): number[];
  stop(signal?: NodeJS.Signals): Promise<void>;
}

function startWorker(redis: string, queue: string, extra: string[] = []): WorkerProcess {
  const child = spawn(process.execPath, [cliPath, 'cluster', 'worker', '--redis', redis, '--queue', queue, '--workers', '1', '--lock-duration', '2000', '--stalled-interval', '500', ...extra], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return adopt(child);
}

const workerChildren = new Set<ChildProcess>();

function adopt(child: ChildProcess): WorkerProcess {
  track(child);
  children.add(child);
  workerChildren.add(child);
  let text = '';
  const waiters: Array<() => void> = [];
  const append = (chunk: Buffer): void => {
    text += chunk;
    for (const waiter of waiters) waiter();
  };
  child.stdout!.on('data', append);
  child.stderr!.on('data', append);
  const exited = new Promise<void>((resolve) => child.once('close', () => resolve()));
  return {
    child,
    output: () => text,
    waitFor(pattern, ms = 30_000) {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`worker output never matched ${pattern}:\n${text}`)), ms);
        const check = (): void => {
          if (pattern.test(text)) {
            clearTimeout(timer);
            resolve();
          }
        };
        waiters.push(check);
        check();
      });
    },
    blocks: () => [...text.matchAll(/^block (\d+) .*: read/gm)].map((match) => Number(match[1])),
    async stop(signal = 'SIGINT') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      await exited;
    },
  };
}

/** Stops every worker (SIGKILL for one that ignores SIGINT for 10 s): for a test's `finally`. */
async function stopAll(workers: readonly WorkerProcess[]): Promise<void> {
  await Promise.all(
    workers.map(async (w) => {
      const late = setTimeout(() => w.child.kill('SIGKILL'), 10_000);
      await w.stop();
      clearTimeout(late);
    }),
  );
}

function assertSameH(path: string, reference: ComplexMatrix, what: string): void {
  const h = parseComplexMatrixNpy(readFileSync(path));
  assert.is(h.rows, reference.rows, `${what}: rows`);
  assertBitIdentical(h.data, reference.data, what);
}

function summaryOf(run: Run): Record<string, unknown> {
  assert.is(run.code, 0, `submit failed (${run.code}, ${run.signal}):\n${run.stderr}\n${run.stdout}`);
  return JSON.parse(run.stdout.trim().split('\n').pop()!) as Record<string, unknown>;
}

const submitArgs = (redis: string, queue: string, p: Problem, out: string, block: number): string[] => [
  'cluster', 'submit', '--redis', redis, '--queue', queue, '--expp', p.expp, '--distance', p.distance, '--out', out, '--block', String(block), '--json',
];

test('chooseClusterBlockSize: before any worker has measured its rate, a native worker is taken as faster than a wasm one', async () => {
  const { chooseClusterBlockSize } = await import('hpair/cluster');
  const base = { n: 40_000, m: 4096, roundTrip: 0.0002, workers: 2 };
  const wasm = chooseClusterBlockSize({ ...base, kernel: 'wasm-simd' });
  assert.not.ok(wasm.rateMeasured);
  for (const kernel of NATIVE_VARIANTS) {
    const native = chooseClusterBlockSize({ ...base, kernel });
    assert.not.ok(native.rateMeasured, kernel);
    assert.ok(native.minForOverhead > wasm.minForOverhead, `${kernel}: ${native.minForOverhead} vs ${wasm.minForOverhead}`);
    // A measured rate wins over the guess.
    assert.is(chooseClusterBlockSize({ ...base, kernel, rate: 20e9 }).minForOverhead, wasm.minForOverhead, kernel);
  }
});

test('bad URLs and unreachable Redis: one clear line, exit 2, within seconds, no file written', async () => {
  const p = await problem(41, 30, 1);
  const out = join(work, 'unreachable.npy');
  const closed = await freePort(); // nothing listens there
  // A server that accepts and never answers, and one that answers in another protocol.
  const silent: Server = trackServer(createServer(() => undefined).listen(0, '127.0.0.1'));
  const chatty: Server = trackServer(createServer((socket) => socket.end('HTTP/1.1 400 Bad Request\r\n\r\n')).listen(0, '127.0.0.1'));
  try {
    await Promise.all([silent, chatty].map((server) => new Promise((resolve) => server.once('listening', resolve))));
    const portOf = (server: Server): number => (server.address() as { port: number }).port;
    const cases: Array<[string, RegExp]> = [
      ['not a url', /is not a Redis URL \(it does not parse as a URL/],
      ['http://127.0.0.1:6379', /is not a Redis URL \(the scheme is 'http'/],
      ['redis://127.0.0.1:99999', /port '99999' is not 1–65535/],
      ['redis://127.0.0.1:6379/abc', /is not a database number/],
      [`redis://127.0.0.1:${closed}`, /cannot reach Redis at redis:\/\/127\.0\.0\.1:\d+: connection refused/],
      [`redis://127.0.0.1:${portOf(silent)}`, /cannot reach Redis at .*(no answer|timed out)/],
      [`redis://127.0.0.1:${portOf(chatty)}`, /cannot reach Redis at .*: /],
    ];
    const runs = cases.flatMap(([redis, message], k) => [
      { args: ['cluster', 'submit', '--redis', redis, '--expp', p.expp, '--distance', p.distance, '--out', out, '--connect-timeout', '2000'], message },
      // The worker parses and connects the same way: two of the cases suffice.
      ...(k === 0 || k === 4 ? [{ args: ['cluster', 'worker', '--redis', redis, '--workers', '1', '--connect-timeout', '2000'], message }] : []),
    ]);
    // Two at a time: each waits on a socket, not on a core.
    for (let k = 0; k < runs.length; k += 2) {
      await Promise.all(runs.slice(k, k + 2).map(async ({ args, message }) => {
        const redis = args[3];
        const run = await cli(args, undefined, 20_000);
        assert.is(run.code, 2, `${args[1]} ${redis}: exit ${run.code} ${run.signal}\n${run.stderr}`);
        assert.match(run.stderr, message, `${args[1]} ${redis}`);
        assert.is(run.stderr.trim().split('\n').length, 1, `one line: ${run.stderr}`);
      }));
    }
    for (const name of [out, `${out}.partial`, `${out}.journal`]) assert.not.ok(existsSync(name), `${name} exists`);
    const usage = await cli(['cluster', 'submit', '--expp', p.expp]);
    assert.is(usage.code, 2);
    assert.match(usage.stderr, /needs --redis/);
  } finally {
    for (const server of [silent, chatty]) {
      server.close();
      untrackServer(server);
    }
  }
});

test('without bullmq installed: hpair/cluster still imports, and using it fails at once with the install command', async () => {
  // dist/ copied where no node_modules can be found: bullmq and ioredis are the only packages it imports.
  const bare = mkdtempSync(join(tmpdir(), 'hpair-no-bullmq-'));
  const dist = dirname(cliPath);
  for (const name of readdirSync(dist)) if (/\.(js|cjs)$/.test(name)) copyFileSync(join(dist, name), join(bare, name));
  const script = `import('${pathToFileURL(join(bare, 'cluster.js')).href}').then((m) => m.createClusterWorker({ connection: 'redis://127.0.0.1:1' })).then(() => process.exit(3), (e) => { console.log(e.code + ': ' + e.message); process.exit(0); })`;
  const library = await new Promise<string>((resolve) => {
    const child = track(spawn(process.execPath, ['--input-type=module', '-e', script], { cwd: bare, stdio: ['ignore', 'pipe', 'inherit'] }));
    let text = '';
    child.stdout.on('data', (chunk: Buffer) => (text += chunk));
    child.once('close', () => resolve(text));
  });
  assert.match(library, /^INVALID_ARGUMENT: hpair cluster needs the optional peer dependency 'bullmq', which is not installed: npm install bullmq ioredis/);
  const run = await new Promise<Run>((resolve) => {
    const child = track(spawn(process.execPath, [join(bare, 'cli.js'), 'cluster', 'worker', '--redis', 'redis://127.0.0.1:1'], { cwd: bare, stdio: ['ignore', 'pipe', 'pipe'] }));
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk));
    child.once('close', (code, signal) => resolve({ code, signal, stdout: '', stderr, ms: 0 }));
  });
  assert.is(run.code, 2);
  assert.match(run.stderr, /^hpair: hpair cluster needs the optional peer dependency 'bullmq'/);
});

withRedis('three worker processes compute H bit-identical to pool.hermitian; the summary counts blocks and workers', async () => {
  const p = await problem(401, 300, 2);
  const queue = newQueue();
  const workers = [0, 1, 2].map(() => startWorker(url!, queue));
  const out = join(work, 'three.npy');
  let summary: Record<string, unknown>;
  try {
    await Promise.all(workers.map((w) => w.waitFor(/waiting for blocks/)));
    summary = summaryOf(await cli(submitArgs(url!, queue, p, out, 64)));
  } finally {
    await stopAll(workers);
  }
  assertSameH(out, p.h, 'three workers');
  assert.is(summary.blocks, 28);
  assert.is(summary.computed, 28);
  assert.is(summary.skipped, 0);
  assert.ok((summary.workers as string[]).length >= 2, `workers seen: ${String(summary.workers)}`);
  assert.ok((summary.gflops as number) > 0);
  const done = workers.flatMap((w) => w.blocks()).sort((a, b) => a - b);
  assert.equal(done, Array.from({ length: 28 }, (_, k) => k), 'each block computed once');
  assert.not.ok(existsSync(`${out}.partial`) || existsSync(`${out}.journal`), 'partial output and journal are gone');
  for (const w of workers) assert.match(w.output(), /stopped after \d+ blocks/);
});

withRedis('a NaN in expp fails its block at once (no retries) and submit stops with the row named, exit 2', async () => {
  const { expp, distance } = randomProblem(201, 50, 9);
  expp.data[2 * (150 * 50 + 7) + 1] = Number.NaN;
  const files = { expp: join(work, 'nan_expp.npy'), distance: join(work, 'nan_distance.npy') };
  writeFileSync(files.expp, encodeComplexMatrixNpy(expp));
  writeFileSync(files.distance, encodeFloat64VectorNpy(distance));
  const queue = newQueue();
  const worker = startWorker(url!, queue);
  const out = join(work, 'nan.npy');
  let run: Run;
  try {
    await worker.waitFor(/waiting for blocks/);
    run = await cli(['cluster', 'submit', '--redis', url!, '--queue', queue, '--expp', files.expp, '--distance', files.distance, '--out', out, '--block', '50']);
  } finally {
    await stopAll([worker]);
  }
  assert.is(run.code, 2, run.stderr);
  assert.match(run.stderr, /^hpair: expp\[150, 7\] has a non-finite imaginary part \(NaN\).*\(block \d+\); \d+ of 10 blocks are in/);
  assert.ok(run.ms < 20_000, `took ${run.ms.toFixed(0)} ms: the block must not be retried with backoff`);
  assert.not.ok(existsSync(out), 'no output');
});

withRedis('a worker killed with SIGKILL mid-block: its block is taken over after the lock expires, H is still identical', async () => {
  const p = await problem(961, 1200, 3);
  const queue = newQueue();
  const [victim, survivor] = [startWorker(url!, queue), startWorker(url!, queue)];
  const out = join(work, 'killed.npy');
  let summary: Record<string, unknown>;
  try {
    await Promise.all([victim, survivor].map((w) => w.waitFor(/waiting for blocks/)));
    const run = cli(submitArgs(url!, queue, p, out, 160));
    // Right after its first block the victim holds the next one (BullMQ takes it as it completes the first).
    await victim.waitFor(/^block \d+ .*: read/m);
    victim.child.kill('SIGKILL');
    summary = summaryOf(await run);
  } finally {
    await stopAll([survivor, victim]);
  }
  assertSameH(out, p.h, 'after a kill');
  assert.is(summary.computed, 21);
  assert.ok((summary.retries as number) >= 1, `retries ${String(summary.retries)}: the killed worker's block was taken over`);
});

withOwnRedis('Redis restarted mid-run, losing every key: the submitter re-adds the lost jobs, workers reconnect, H is identical', async () => {
  const redis = await startRedis(binary!);
  const p = await problem(961, 1200, 3);
  const queue = newQueue();
  const workers = [startWorker(redis.url, queue), startWorker(redis.url, queue)];
  const out = join(work, 'restart.npy');
  let summary: Record<string, unknown>;
  try {
    await Promise.all(workers.map((w) => w.waitFor(/waiting for blocks/)));
    const run = cli(submitArgs(redis.url, queue, p, out, 160));
    await workers[0].waitFor(/^block \d+ .*: read/m);
    await redis.stop();
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    await redis.start();
    summary = summaryOf(await run);
  } finally {
    await stopAll(workers);
    await redis.stop();
  }
  assertSameH(out, p.h, 'after a Redis restart');
  assert.ok((summary.requeued as number) > 0, `requeued ${String(summary.requeued)}`);
  for (const w of workers) assert.match(w.output(), /lost Redis[\s\S]*Redis is back/);
});

withRedis('submit cancelled with SIGINT removes its waiting jobs and keeps the journal; a re-run resumes without recomputing', async () => {
  const p = await problem(961, 1200, 3);
  const queue = newQueue();
  const worker = startWorker(url!, queue);
  try {
    await worker.waitFor(/waiting for blocks/);
    const out = join(work, 'cancelled.npy');
    const journal = `${out}.journal`;
    const journaled = (): number => (existsSync(journal) ? readFileSync(journal, 'utf8').trim().split('\n').length - 1 : 0);
    const first = await cli(submitArgs(url!, queue, p, out, 160), (child) => {
      const poll = setInterval(() => {
        if (journaled() >= 3) {
          clearInterval(poll);
          child.kill('SIGINT');
        }
      }, 20);
      child.once('close', () => clearInterval(poll));
    });
    assert.is(first.code, 130, first.stderr);
    assert.match(first.stderr, /^hpair: cancelled: \d+ waiting blocks removed from the queue.*run the same command again to resume/);
    assert.ok(existsSync(`${out}.partial`) && existsSync(journal), 'partial output and journal stay');
    assert.not.ok(existsSync(out));
    const before = journaled();
    assert.ok(before >= 3 && before < 21, `journaled ${before}`);
    // The waiting jobs are gone: the worker finishes at most the block it holds, then idles.
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    const doneWhileCancelled = worker.blocks().length;
    assert.ok(doneWhileCancelled <= before + 2, `the worker went on with ${doneWhileCancelled} blocks after the cancel (journal had ${before})`);

    const second = summaryOf(await cli(submitArgs(url!, queue, p, out, 160)));
    await worker.stop();
    assertSameH(out, p.h, 'resumed');
    assert.is(second.skipped, before);
    const blocks = worker.blocks().sort((a, b) => a - b);
    assert.equal(blocks, Array.from({ length: 21 }, (_, k) => k), 'every block computed exactly once over both runs');
  } finally {
    await stopAll([worker]);
  }
});

withRedis('library: createClusterWorker and submitToCluster in one process over an ioredis client; the main entry never loads BullMQ', async () => {
  const { createClusterWorker, submitToCluster, connectRedis } = await import('hpair/cluster');
  const p = await problem(401, 300, 2);
  const queue = newQueue();
  const client = await connectRedis(url!);
  const pool = createPool({ workers: 2 });
  let worker: Awaited<ReturnType<typeof createClusterWorker>> | undefined;
  try {
    worker = await createClusterWorker({ connection: client, queue, pool });
    await worker.ready();
    const out = join(work, 'library.npy');
    const seen: number[] = [];
    const summary = await submitToCluster({ connection: client, queue, expp: p.expp, distance: p.distance, out, blockSize: 100, onProgress: (progress) => seen.push(progress.done) });
    // An output another run holds (its lock names a live process of this host: our parent) is refused before any
    // file is written.
    const held = join(work, 'held.npy');
    writeFileSync(`${held}.lock`, JSON.stringify({ pid: process.ppid, host: hostname(), since: new Date().toISOString(), token: 'theirs' }));
    const refusal = await submitToCluster({ connection: client, queue, expp: p.expp, distance: p.distance, out: held, blockSize: 100 }).then(
      () => undefined,
      (error: Error & { code?: string }) => error,
    );
    assert.is(refusal?.code, 'IO_ERROR');
    assert.match(String(refusal?.message), /is writing it; if none is, delete .*held\.npy\.lock/);
    assert.not.ok(existsSync(`${held}.partial`) || existsSync(`${held}.journal`), 'nothing written');
    await worker.close();
    assert.not.ok(pool.closed, 'a pool of yours stays open');
    await pool.close();
    assert.is(client.status, 'ready', 'a connection of yours stays open');
    await client.quit();
    assertSameH(out, p.h, 'library');
    assert.is(summary.blocks, 10);
    assert.is(summary.workers.length, 1);
    assert.is(seen[seen.length - 1], 10);
  } finally {
    await worker?.close().catch(() => undefined);
    await pool.close().catch(() => undefined);
    if (client.status !== 'end') client.disconnect();
  }
  // The main entry, and every chunk it imports, names neither bullmq nor ioredis.
  const seenFiles = new Set<string>();
  const visit = (file: URL): void => {
    if (seenFiles.has(file.href)) return;
    seenFiles.add(file.href);
    const text = readFileSync(file, 'utf8');
    assert.not.match(text, /["'](bullmq|ioredis)["']/, `${file.pathname} names bullmq or ioredis`);
    for (const match of text.matchAll(/(?:from|import)\s*["'](\.\/[^"']+)["']/g)) visit(new URL(match[1], file));
  };
  visit(new URL(import.meta.resolve('hpair')));
  assert.ok(seenFiles.size > 1, 'the main entry imports its chunks');
});

// ---- Integrity: runs that must never adopt another run's work, workers that see other inputs ----

/** Whether this process may start a worker in a mount namespace of its own (root with CAP_SYS_ADMIN). */
const canUnshare = await new Promise<boolean>((resolve) => {
  const child = spawn('unshare', ['-m', 'sh', '-c', 'mount -t tmpfs none /mnt'], { stdio: 'ignore' });
  child.once('error', () => resolve(false));
  child.once('close', (code) => resolve(code === 0));
});
if (url !== undefined && !canUnshare) {
  console.log('\n  cluster: the tests of workers that see other files at the same path are SKIPPED: `unshare -m` (root) is not available here');
}
const withNamespace = testIf(test, 'cluster', url !== undefined && canUnshare, () => (url === undefined ? 'no Redis' : '`unshare -m` (root) is not available here'));

/**
 * A worker process in a mount namespace of its own, where `mounts` (shell commands) run first: it sees other
 * files at the submitter's paths, as a machine with a stale copy on its mount would.
 */
function startWorkerIn(mounts: string[], redis: string, queue: string): WorkerProcess {
  const quote = (text: string): string => `'${text.replace(/'/g, `'\\''`)}'`;
  const command = [...mounts, `exec ${[process.execPath, cliPath, 'cluster', 'worker', '--redis', redis, '--queue', queue, '--workers', '1', '--lock-duration', '2000', '--stalled-interval', '500'].map(quote).join(' ')}`].join(' && ');
  const child = spawn('unshare', ['-m', 'sh', '-c', command], { stdio: ['ignore', 'pipe', 'pipe'] });
  return adopt(child);
}

/** Keys of the queue's block jobs left in Redis (any run). */
async function jobKeys(redis: string, queue: string): Promise<string[]> {
  const { connectRedis } = await import('hpair/cluster');
  const client = await connectRedis(redis);
  try {
    return (await client.keys(`bull:${queue}:hp-*`)).filter((key) => /:hp-[0-9a-f]+-\d+$/.test(key));
  } finally {
    await client.quit();
  }
}

/** Ends any `hpair` command a test started and did not wait for (a test that failed half-way); workers are stopped apart. */
function killCommands(): void {
  for (const child of children) if (!workerChildren.has(child) && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
}

async function until(condition: () => boolean | Promise<boolean>, what: string, ms = 60_000): Promise<void> {
  const end = performance.now() + ms;
  while (!(await condition())) {
    if (performance.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

withRedis('start over after submit was killed (-9) and its files deleted: the rerun computes every block afresh, never adopts the old jobs, and removes them', async () => {
  const p = await problem(201, 60, 41);
  const queue = newQueue();
  const workers: WorkerProcess[] = [];
  try {
    const out = join(work, 'start-over.npy');
    const journal = `${out}.journal`;
    // No worker yet, so the first submit cannot finish before it is killed: it queues its 55 blocks and waits.
    const first = await cli(submitArgs(url!, queue, p, out, 20), (child) => {
      const queued = async (): Promise<boolean> => child.exitCode !== null || (await jobKeys(url!, queue)).length === 55;
      until(queued, 'the first submit to queue its blocks').finally(() => child.kill('SIGKILL')).catch(() => undefined);
    });
    assert.is(first.signal, 'SIGKILL', `the first submit ended by itself (${first.code}): ${first.stderr}`);
    assert.ok(existsSync(journal) && existsSync(`${out}.partial`));
    // Workers come, and finish the queue with nobody collecting: 55 blocks in all.
    workers.push(startWorker(url!, queue), startWorker(url!, queue));
    await Promise.all(workers.map((w) => w.waitFor(/waiting for blocks/)));
    await until(() => new Set(workers.flatMap((w) => w.blocks())).size === 55, 'the workers to finish the old queue');
    const doneBefore = workers.reduce((sum, w) => sum + w.blocks().length, 0);
    for (const name of [`${out}.partial`, journal]) rmSync(name);
    const second = summaryOf(await cli(submitArgs(url!, queue, p, out, 20)));
    assert.equal([second.blocks, second.computed, second.skipped], [55, 55, 0], 'every block computed again, none adopted');
    assertSameH(out, p.h, 'started over');
    assert.ok(workers.reduce((sum, w) => sum + w.blocks().length, 0) - doneBefore >= 55, 'the workers computed all 55 blocks again');
    assert.equal(await jobKeys(url!, queue), [], 'no job of either run is left in Redis');
    const verified = await cli(['verify', out]);
    assert.is(verified.code, 0, verified.stderr);
  } finally {
    killCommands();
    await Promise.all(workers.map((w) => w.stop()));
  }
});

withRedis('a partial output changed between two submits: the resumed run re-reads every block, recomputes the one that differs, names it, and H is right', async () => {
  const p = await problem(201, 60, 42);
  const queue = newQueue();
  let worker: WorkerProcess | undefined;
  try {
    const out = join(work, 'zeroed.npy');
    // As above: no worker until the first submit, its blocks queued, is killed.
    const first = await cli(submitArgs(url!, queue, p, out, 20), (child) => {
      const queued = async (): Promise<boolean> => child.exitCode !== null || (await jobKeys(url!, queue)).length === 55;
      until(queued, 'the first submit to queue its blocks').finally(() => child.kill('SIGKILL')).catch(() => undefined);
    });
    assert.is(first.signal, 'SIGKILL', `the first submit ended by itself (${first.code}): ${first.stderr}`);
    worker = startWorker(url!, queue);
    await worker.waitFor(/waiting for blocks/);
    await until(() => new Set(worker!.blocks()).size === 55, 'the worker to finish the queue');
    // H[150, 30] lies in block (7, 1): id 7·8/2 + 1 = 29.
    const fd = openSync(`${out}.partial`, 'r+');
    writeSync(fd, Buffer.alloc(16, 0x40), 0, 16, 128 + 16 * (150 * 200 + 30));
    closeSync(fd);
    const run = await cli(submitArgs(url!, queue, p, out, 20));
    const summary = summaryOf(run);
    assert.equal(summary.recomputed, [29], 'the changed block is named and recomputed');
    assert.is((summary.skipped as number) + (summary.computed as number), 55);
    assertSameH(out, p.h, 'after the change');
    const text = await cli(['verify', out]);
    assert.is(text.code, 0, text.stderr);
  } finally {
    killCommands();
    await worker?.stop();
  }
});

withNamespace('one worker sees another expp at the same path (another size or the same size): it refuses the run and gives its blocks back; H is right', async () => {
  const p = await problem(201, 60, 43);
  // Same shape and size, other values: only the content tells it apart.
  const { expp } = randomProblem(201, 60, 44);
  const stale = join(work, 'stale-expp.npy');
  writeFileSync(stale, encodeComplexMatrixNpy(expp));
  assert.is(statSync(stale).size, statSync(p.expp).size);
  const queue = newQueue();
  const good = startWorker(url!, queue);
  const bad = startWorkerIn([`mount --bind '${stale}' '${p.expp}'`], url!, queue);
  try {
    await Promise.all([bad, good].map((w) => w.waitFor(/waiting for blocks/)));
    // The good worker, stopped (still connected), takes nothing until the bad one has refused the run.
    good.child.kill('SIGSTOP');
    const out = join(work, 'stale.npy');
    const running = cli([...submitArgs(url!, queue, p, out, 20)]);
    await bad.waitFor(/refusing run/);
    good.child.kill('SIGCONT');
    const run = await running;
    const summary = summaryOf(run);
    assertSameH(out, p.h, 'with a worker that sees another expp');
    assert.is(bad.blocks().length, 0, `the worker with the other file computed blocks:\n${bad.output()}`);
    assert.match(bad.output(), /refusing run [0-9a-f]{16}: its expp .* is not the submitter's \(\d+ bytes, SHA-256 [0-9a-f]{16}… here; \d+ bytes, [0-9a-f]{16}… there\); its blocks are left to the other workers/);
    assert.is((bad.output().match(/refusing run/g) ?? []).length, 1, 'said once per run');
    const refused = summary.refused as Array<{ worker: string; reason: string }>;
    assert.is(refused.length, 1);
    assert.match(run.stderr, /worker .* refused this run: its expp/);
    assert.is(good.blocks().length, 55);
  } finally {
    killCommands();
    good.child.kill('SIGCONT');
    await Promise.all([bad, good].map((w) => w.stop()));
  }
});

withNamespace('a worker without the inputs: alone it makes submit stop with exit 2 naming why; beside others it gives its blocks back and the run ends right', async () => {
  const p = await problem(201, 60, 45);
  // The inputs in a directory of their own, hidden from the bad worker by an empty tmpfs over it.
  const inputs = mkdtempSync(join(tmpdir(), 'hpair-inputs-'));
  const moved = { ...p, expp: join(inputs, 'E.npy'), distance: join(inputs, 'D.npy') };
  copyFileSync(p.expp, moved.expp);
  copyFileSync(p.distance, moved.distance);
  const queue = newQueue();
  const bad = startWorkerIn([`mount -t tmpfs none '${inputs}'`], url!, queue);
  const others: WorkerProcess[] = [];
  try {
    await bad.waitFor(/waiting for blocks/);
    const out = join(work, 'no-inputs.npy');
    const alone = await cli(submitArgs(url!, queue, moved, out, 20), undefined, 60_000);
    assert.is(alone.code, 2, `${alone.code} ${alone.signal}: ${alone.stderr}`);
    const failure = (JSON.parse(alone.stdout.trim()) as { error: { code: string; message: string } }).error; // --json: on stdout
    assert.is(failure.code, 'IO_ERROR');
    assert.match(failure.message, /every worker refused this run \(.*: cannot read expp .*E\.npy \(ENOENT\)\); 0 of 55 blocks are in/);
    assert.not.ok(existsSync(out));
    others.push(startWorker(url!, queue), startWorker(url!, queue));
    await Promise.all(others.map((w) => w.waitFor(/waiting for blocks/)));
    const summary = summaryOf(await cli(submitArgs(url!, queue, moved, out, 20)));
    assertSameH(out, p.h, 'with a worker that cannot read the inputs');
    assert.is(bad.blocks().length, 0);
    assert.is(summary.computed, 55);
    assert.is(new Set(others.flatMap((w) => w.blocks())).size, 55);
  } finally {
    killCommands();
    await Promise.all([bad, ...others].map((w) => w.stop()));
  }
});

withRedis('a FIFO, a symbolic link or a dangling one at the partial output\'s name (no journal), a FIFO at the journal\'s: submit refuses it, and it and its target stay as they were', async () => {
  const { submitToCluster } = await import('hpair/cluster');
  const p = await problem(41, 30, 3);
  const queue = newQueue();
  const dir = mkdtempSync(join(work, 'special-'));
  const victim = join(dir, 'victim.txt');
  writeFileSync(victim, 'not yours to truncate\n');
  const plant: Array<[string, string, (path: string) => void, (path: string) => boolean]> = [
    ['partial', 'a FIFO', (path) => execFileSync('mkfifo', [path]), (path) => lstatSync(path).isFIFO()],
    ['partial', 'a symbolic link', (path) => symlinkSync(victim, path), (path) => lstatSync(path).isSymbolicLink()],
    ['partial', 'a symbolic link', (path) => symlinkSync(join(dir, 'nowhere'), path), (path) => lstatSync(path).isSymbolicLink() && !existsSync(join(dir, 'nowhere'))],
    // A FIFO at the journal's name: read as a journal, it would wait for a writer for ever.
    ['journal', 'a FIFO', (path) => execFileSync('mkfifo', [path]), (path) => lstatSync(path).isFIFO()],
  ];
  for (const [k, [where, kind, make, still]] of plant.entries()) {
    const out = join(dir, `H${k}.npy`);
    const planted = `${out}.${where}`;
    make(planted);
    // No worker runs: a submit that accepted the name would wait for its blocks, so it is stopped after a while.
    const error = await submitToCluster({ connection: url!, queue, expp: p.expp, distance: p.distance, out, blockSize: 10, signal: AbortSignal.timeout(30_000) }).then(
      () => undefined,
      (failure: Error & { code?: string }) => failure,
    );
    assert.is(error?.code, 'IO_ERROR', `${kind}: ${String(error?.message)}`);
    assert.match(String(error?.message), new RegExp(`H${k}\\.npy\\.${where} is ${kind}; hpair never writes through or replaces a file it did not create`));
    assert.ok(still(planted), `${kind}: left where it was`);
    for (const name of [out, `${out}.partial`, `${out}.journal`, `${out}.lock`, `${out}.manifest.json`]) {
      if (name !== planted) assert.not.ok(existsSync(name), `${kind}: ${name} exists`);
    }
  }
  assert.is(readFileSync(victim, 'utf8'), 'not yours to truncate\n', 'the link\'s target is untouched');
  assert.equal(await jobKeys(url!, queue), [], 'no job was queued');
  rmSync(dir, { recursive: true, force: true });
});

withRedis('a file put at the partial output\'s name mid-run (same header, same size): no worker writes into it, and nothing is published', async () => {
  const { createClusterWorker, submitToCluster } = await import('hpair/cluster');
  const p = await problem(401, 300, 5);
  const queue = newQueue();
  const dir = mkdtempSync(join(work, 'planted-'));
  const out = join(dir, 'H.npy');
  const partial = `${out}.partial`;
  const planted = join(dir, 'planted-bytes');
  const pool = createPool({ workers: 1 });
  let worker: Awaited<ReturnType<typeof createClusterWorker>> | undefined;
  let swapped = false;
  try {
    // After the first block is in, the file the run made is moved away and a look-alike (its bytes then, a new
    // inode) takes its name: a worker writing by name would fill it with the next blocks.
    worker = await createClusterWorker({
      connection: url!,
      queue,
      pool,
      onBlock: (event) => {
        if (event.outcome !== 'done' || swapped) return;
        swapped = true;
        renameSync(partial, join(dir, 'moved-away'));
        copyFileSync(join(dir, 'moved-away'), partial);
        copyFileSync(partial, planted);
      },
    });
    await worker.ready();
    const error = await submitToCluster({ connection: url!, queue, expp: p.expp, distance: p.distance, out, blockSize: 100, attempts: 1, signal: AbortSignal.timeout(60_000) }).then(
      () => undefined,
      (failure: Error & { code?: string }) => failure,
    );
    assert.ok(swapped, 'a block was done before the swap');
    assert.ok(error !== undefined, 'submit fails');
    assert.match(String(error?.message), /\[STALE\] .*H\.npy\.partial is no longer the output this block was planned for/);
    assert.ok(readFileSync(partial).equals(readFileSync(planted)), 'the file at the name was never written');
    assert.not.ok(existsSync(out), 'H.npy is not published');
    assert.not.ok(existsSync(`${out}.manifest.json`), 'nor its manifest');
  } finally {
    await worker?.close().catch(() => undefined);
    await pool.close().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  }
});

withRedis('a look-alike swapped in between a worker\'s check of the partial\'s name and its open is never written; one swapped in after the last block is never read as H nor published', async () => {
  const { createClusterWorker, submitToCluster } = await import('hpair/cluster');
  const p = await problem(401, 300, 6);
  const pool = createPool({ workers: 1 });
  const dir = mkdtempSync(join(work, 'swap-'));
  /**
   * Moves the file at the partial's name away and puts a look-alike there (a new inode of the same size and
   * header): a copy, or with `zeroed` its data all zeros.
   */
  let swaps = 0;
  const swap = (partial: string, zeroed = false): Buffer => {
    const moved = join(dir, `moved-${swaps++}`);
    renameSync(partial, moved);
    copyFileSync(moved, partial);
    if (zeroed) {
      const size = statSync(partial).size;
      truncateSync(partial, 128);
      truncateSync(partial, size);
    }
    return readFileSync(partial);
  };
  try {
    // 1. The race a check by name leaves open: the name passes the check, then changes hands before the open.
    {
      const queue = newQueue();
      const out = join(dir, 'race.npy');
      let planted: Buffer | undefined;
      const worker = await createClusterWorker({
        connection: url!,
        queue,
        pool,
        beforeOpen: () => {
          planted ??= swap(`${out}.partial`);
        },
      });
      try {
        await worker.ready();
        const error = await submitToCluster({ connection: url!, queue, expp: p.expp, distance: p.distance, out, blockSize: 100, attempts: 1, signal: AbortSignal.timeout(60_000) }).then(
          () => undefined,
          (failure: Error & { code?: string }) => failure,
        );
        assert.ok(planted !== undefined, 'the swap happened');
        assert.match(String(error?.message), /\[STALE\] .*race\.npy\.partial is no longer the output this block was planned for/);
        assert.ok(readFileSync(`${out}.partial`).equals(planted!), 'the file opened after the swap was never written');
        assert.not.ok(existsSync(out) || existsSync(`${out}.manifest.json`), 'nothing published');
      } finally {
        await worker.close();
      }
    }
    // 2. After the last block: submit's re-read (which would find every block changed, and have them computed
    // again into the file the workers check by identity) and its rename find another file there: nothing is
    // read as H, nothing published.
    {
      const queue = newQueue();
      const out = join(dir, 'late.npy');
      let done = 0;
      let planted: Buffer | undefined;
      const worker = await createClusterWorker({
        connection: url!,
        queue,
        pool,
        onBlock: (event) => {
          if (event.outcome === 'done' && ++done === 10) planted = swap(`${out}.partial`, true);
        },
      });
      try {
        await worker.ready();
        const error = await submitToCluster({ connection: url!, queue, expp: p.expp, distance: p.distance, out, blockSize: 100, signal: AbortSignal.timeout(60_000) }).then(
          () => undefined,
          (failure: Error & { code?: string }) => failure,
        );
        assert.ok(planted !== undefined, 'the swap happened after the 10th block');
        assert.is(error?.code, 'IO_ERROR', String(error?.message));
        assert.match(String(error?.message), /late\.npy\.partial was replaced while the run wrote it \(it is now another file\); nothing was published/);
        assert.ok(readFileSync(`${out}.partial`).equals(planted!), 'the look-alike is as it was put there');
        assert.not.ok(existsSync(out) || existsSync(`${out}.manifest.json`), 'nothing published');
      } finally {
        await worker.close();
      }
    }
  } finally {
    await pool.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

withRedis('a database index the server does not have, for submit and worker: one line, exit 2, no file written, no worker ready', async () => {
  const p = await problem(41, 30, 1);
  const out = join(work, 'bad-db.npy');
  const redis = `${url!.replace(/\/\d+$/, '')}/99`;
  const submit = await cli(['cluster', 'submit', '--redis', redis, '--expp', p.expp, '--distance', p.distance, '--out', out, '--block', '10'], undefined, 20_000);
  assert.is(submit.code, 2, submit.stderr);
  assert.is(submit.stderr.trim().split('\n').length, 1, submit.stderr);
  assert.match(submit.stderr, /^hpair: cannot reach Redis at redis:\/\/127\.0\.0\.1:\d+\/99: the database index is out of range/);
  for (const name of [out, `${out}.partial`, `${out}.journal`, `${out}.lock`]) assert.not.ok(existsSync(name), `${name} exists`);
  const worker = await cli(['cluster', 'worker', '--redis', redis, '--workers', '1'], undefined, 20_000);
  assert.is(worker.code, 2, worker.stderr);
  assert.is(worker.stderr.trim().split('\n').length, 1, worker.stderr);
  assert.match(worker.stderr, /database index is out of range/);
  assert.not.match(worker.stdout, /waiting for blocks/);
});

test.run();
