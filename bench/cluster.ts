// The distributed run on this machine: `hpair cluster submit` with 1, 2 and 3 worker processes against
// `hpair compute` on the same N, and the queue's overhead per block (what the automatic block size is chosen
// from). Starts its own redis-server on a free loopback port (or takes --redis URL).
//   npm run bench:cluster [-- --n 3072 --rounds 3 --redis redis://127.0.0.1:6379]
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { availableParallelism, cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { demoProblem, encodeComplexMatrixNpy, encodeFloat64VectorNpy } from 'hpair';

const { values } = parseArgs({ options: { n: { type: 'string' }, rounds: { type: 'string' }, redis: { type: 'string' }, 'overhead-blocks': { type: 'string' } } });
const N = Number(values.n ?? '3072');
const rounds = Number(values.rounds ?? '3');
const cli = fileURLToPath(new URL('../cli.js', import.meta.url));
const cores = availableParallelism();
const work = mkdtempSync(join(tmpdir(), 'hpair-bench-cluster-'));
const children = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of children) child.kill('SIGKILL');
  rmSync(work, { recursive: true, force: true });
});

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

async function redisUrl(): Promise<string> {
  if (values.redis !== undefined) return values.redis;
  const port = await freePort();
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', work], { stdio: 'ignore' });
  children.add(child);
  for (let k = 0; k < 100; k++) {
    await new Promise((resolve) => setTimeout(resolve, 50));
    if (spawnSync('redis-cli', ['-p', String(port), 'ping'], { encoding: 'utf8' }).stdout.trim() === 'PONG') return `redis://127.0.0.1:${port}`;
  }
  throw new Error('redis-server did not start (apt-get install redis-server, or pass --redis URL)');
}

function run(args: string[]): Promise<{ stdout: string; ms: number }> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(process.execPath, [cli, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
    let stdout = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk));
    child.once('close', (code) => (code === 0 ? resolve({ stdout, ms: performance.now() - started }) : reject(new Error(`hpair ${args.join(' ')} exited ${code}`))));
  });
}

/** Worker processes, each with `threads` threads, started and ready (a cluster keeps its workers up). */
async function startWorkers(redis: string, queue: string, count: number, threads: number): Promise<ChildProcess[]> {
  const started = Array.from({ length: count }, () => {
    const child = spawn(process.execPath, [cli, 'cluster', 'worker', '--redis', redis, '--queue', queue, '--workers', String(threads)], { stdio: ['ignore', 'pipe', 'inherit'] });
    children.add(child);
    return new Promise<ChildProcess>((resolve) => {
      let text = '';
      child.stdout.on('data', (chunk: Buffer) => {
        text += chunk;
        if (text.includes('waiting for blocks')) resolve(child);
      });
    });
  });
  return Promise.all(started);
}

async function stopWorkers(workers: ChildProcess[]): Promise<void> {
  await Promise.all(workers.map((child) => new Promise((resolve) => {
    child.once('close', resolve);
    child.kill('SIGINT');
  })));
  for (const child of workers) children.delete(child);
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const files = (name: string, n: number, m: number): { expp: string; distance: string } => {
  const { expp, distance } = demoProblem(n, m);
  const paths = { expp: join(work, `${name}_expp.npy`), distance: join(work, `${name}_distance.npy`) };
  writeFileSync(paths.expp, encodeComplexMatrixNpy(expp));
  writeFileSync(paths.distance, encodeFloat64VectorNpy(distance));
  return paths;
};

const redis = await redisUrl();
let queues = 0;
console.log(`CPU: ${cpus()[0]?.model ?? 'unknown'}, ${cores} cores; Node ${process.version}; Redis at ${redis}`);

// 1. The queue's overhead per block: blocks with next to no flops (M = 2), one worker process of one thread.
{
  const blocks = Number(values['overhead-blocks'] ?? '528'); // 32 rows of blocks of 64
  let k = 1;
  while ((k * (k + 1)) / 2 < blocks) k++;
  const n = 64 * k;
  const input = files('overhead', n + 1, 2);
  const queue = `bench-${process.pid}-${queues++}`;
  const [worker] = await startWorkers(redis, queue, 1, 1);
  const perBlock: number[] = [];
  for (let r = 0; r < rounds; r++) {
    const out = join(work, `overhead_${r}.npy`);
    const { stdout } = await run(['cluster', 'submit', '--redis', redis, '--queue', queue, '--expp', input.expp, '--distance', input.distance, '--out', out, '--block', '64', '--json']);
    const summary = JSON.parse(stdout) as { seconds: number; blocks: number; workerSeconds: { read: number; compute: number; write: number } };
    perBlock.push((summary.seconds * 1000) / summary.blocks);
    console.log(`overhead round ${r + 1}: ${summary.blocks} blocks of 64 at M = 2 in ${summary.seconds.toFixed(2)} s: ${((summary.seconds * 1000) / summary.blocks).toFixed(2)} ms a block ` +
      `(worker: read ${((summary.workerSeconds.read * 1000) / summary.blocks).toFixed(2)}, compute ${((summary.workerSeconds.compute * 1000) / summary.blocks).toFixed(2)}, write+sync ${((summary.workerSeconds.write * 1000) / summary.blocks).toFixed(2)} ms)`);
    rmSync(out, { force: true });
  }
  await stopWorkers([worker]);
  const ping = spawnSync('redis-cli', ['-u', redis, '--latency', '-i', '1', '--raw'], { encoding: 'utf8', timeout: 1500 }).stdout.trim().split('\n').pop();
  console.log(`\nqueue overhead per block: median ${median(perBlock).toFixed(2)} ms over ${rounds} rounds (redis-cli --latency: min/max/avg ms ${ping ?? '?'})\n`);
}

// 2. hpair compute against the cluster with 1, 2, 3 worker processes on this machine's cores, rounds interleaved.
const input = files('main', N, N);
const times: Record<string, number[]> = {};
const notes: Record<string, string> = {};
const reference = join(work, 'compute.npy');
for (let r = 0; r < rounds; r++) {
  const { stdout, ms } = await run(['compute', '--expp', input.expp, '--distance', input.distance, '--out', reference, '--json']);
  const summary = JSON.parse(stdout) as { seconds: number; gflops: number; kernel: string; workers: number };
  (times['hpair compute'] ??= []).push(ms / 1000);
  (times['hpair compute (compute only)'] ??= []).push(summary.seconds);
  notes['hpair compute'] = `${summary.workers} threads, ${summary.kernel}`;
  for (const processes of [1, 2, 3]) {
    const threads = Math.max(1, Math.floor(cores / processes));
    const queue = `bench-${process.pid}-${queues++}`;
    const workers = await startWorkers(redis, queue, processes, threads);
    const out = join(work, `cluster_${processes}.npy`);
    const { stdout: text, ms: wall } = await run(['cluster', 'submit', '--redis', redis, '--queue', queue, '--expp', input.expp, '--distance', input.distance, '--out', out, '--json']);
    await stopWorkers(workers);
    const s = JSON.parse(text) as { seconds: number; blocks: number; blockSize: number; blockChoice?: { why: string; overhead: number; minForOverhead: number; maxForBalance: number; maxForMemory: number }; workers: string[] };
    const name = `cluster, ${processes} worker process${processes > 1 ? 'es' : ''}`;
    (times[name] ??= []).push(wall / 1000);
    const c = s.blockChoice;
    notes[name] = `${threads} thread${threads > 1 ? 's' : ''} each; ${s.blocks} blocks of ${s.blockSize}` + (c === undefined ? '' : ` (${c.why}; overhead ${(c.overhead * 1000).toFixed(1)} ms, min ${c.minForOverhead}, balance ${c.maxForBalance}, memory ${c.maxForMemory})`);
    const same = Buffer.compare(readFileSync(out), readFileSync(reference)) === 0;
    if (!same) throw new Error(`${name}: H differs from hpair compute's`);
    rmSync(out, { force: true });
  }
  console.log(`round ${r + 1} done`);
}
const base = median(times['hpair compute']);
console.log(`\nN = M = ${N}; wall time of the whole command (inputs read, H computed, written and synced), median of ${rounds}; every H identical to hpair compute's\n`);
console.log('| run | median s | vs hpair compute | notes |');
console.log('|---|---|---|---|');
for (const [name, xs] of Object.entries(times)) {
  console.log(`| ${name} | ${median(xs).toFixed(2)} | ${(median(xs) / base).toFixed(2)}× | ${notes[name] ?? ''} |`);
}
process.exit(0);
