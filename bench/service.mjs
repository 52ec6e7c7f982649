// The example service under a storm, as a deployment sees it: `npm run bench:service`.
//
//   storm        CLIENTS clients at once, each POSTing one of PROBLEMS problems (N = 200, M = 64) and reading H
//                back, in ROUNDS rounds, every answer compared byte for byte with its problem's H (taken from
//                the service before the storms and checked against hpair's reference): the service's event-loop delay during each round (max and p99, from
//                monitorEventLoopDelay at 1 ms resolution) and its RSS when idle before the first round and
//                IDLE_MS after each (no manual collection anywhere). Targets: max delay ≤ 50 ms, idle RSS after a
//                burst ≤ 2× the idle RSS before it.
//   slow-readers SLOW clients POST and then never read their answer, and leave after LEAVE_MS; the service's idle
//                RSS and array-buffer bytes are taken IDLE_MS after the last one is gone.
//
// Environment: CLIENTS (500), ROUNDS (3), SLOW (100), IDLE_MS (16000: the pool's idle collections, at 1, 3, 7 and
// 15 s after it drains, are over by then), WORKERS (the service pool's threads; default: one per core),
// WORKER_NICE (the pool's workerNice; "0" for an A/B run against the default), READ_BYTES_PER_TURN (the service's readBytesPerTurn; "Infinity" reads every upload as it comes, for an A/B run),
// NEW_CONNECTIONS_AT_ONCE (the service's newConnectionsAtOnce; "Infinity" reads every connection as it comes),
// REUSE_OUTPUT_BYTES (the service's reuseOutputBytes; "0" allocates a new H for every request), JOBS_AT_ONCE (the
// service's jobsAtOnce),
// HOST_ARGV (Node flags for the service's process only, e.g. "--cpu-prof --cpu-prof-dir=prof" to see what holds
// its loop).
//
// The service runs in a child process (examples/service.mjs, one pool, default options but a short
// writeTimeout), so the clients' own work never counts against its event loop. The clients share the host's cores
// with the service by default, the harder case on a small host; CLIENT_NICE=N (Linux) runs them N steps of nice
// below the service, as clients on other machines would take none of its cores.
import { fork } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { request } from 'node:http';
import { connect } from 'node:net';
import { fileURLToPath } from 'node:url';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { availableParallelism, cpus, getPriority, setPriority, totalmem } from 'node:os';

const CLIENTS = Number(process.env.CLIENTS ?? 500);
const ROUNDS = Number(process.env.ROUNDS ?? 3);
const SLOW = Number(process.env.SLOW ?? 100);
const IDLE_MS = Number(process.env.IDLE_MS ?? 16000);
const CLIENT_NICE = Number(process.env.CLIENT_NICE ?? 0);
const LEAVE_MS = 4000;
const N = 200;
const M = 64;
const MiB = 2 ** 20;
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** The child: the example service and a probe the parent reads over IPC. */
async function host() {
  const { createPool } = await import('hpair');
  const { createService } = await import(new URL('../examples/service.mjs', import.meta.url).href);
  const pool = createPool({
    ...(process.env.WORKERS === undefined ? {} : { workers: Number(process.env.WORKERS) }),
    ...(process.env.WORKER_NICE === undefined ? {} : { workerNice: Number(process.env.WORKER_NICE) }),
  });
  await pool.ready();
  const turn = {};
  for (const [name, key] of [['READ_BYTES_PER_TURN', 'readBytesPerTurn'], ['NEW_CONNECTIONS_AT_ONCE', 'newConnectionsAtOnce'], ['REUSE_OUTPUT_BYTES', 'reuseOutputBytes'], ['JOBS_AT_ONCE', 'jobsAtOnce']]) {
    if (process.env[name] !== undefined) turn[key] = Number(process.env[name]);
  }
  const service = createService(pool, { writeTimeout: 2000, idleTimeout: 2000, ...turn });
  const delay = monitorEventLoopDelay({ resolution: 1 });
  service.listen(0, '127.0.0.1', () => process.send({ port: service.address().port }));
  process.on('message', async (message) => {
    if (message === 'start') {
      delay.reset();
      delay.enable();
      process.send({ started: true });
    } else if (message === 'stop') {
      delay.disable();
      process.send({ maxMs: delay.max / 1e6, p99Ms: delay.percentile(99) / 1e6 });
    } else if (message === 'memory') {
      const { rss, arrayBuffers, heapUsed } = process.memoryUsage();
      process.send({ rss, arrayBuffers, heapUsed, ...service.stats() });
    } else if (message === 'exit') {
      await service.shutdown();
      await pool.close();
      process.exit(0);
    }
  });
}

function ask(child, message) {
  return new Promise((resolve) => {
    child.once('message', resolve);
    child.send(message);
  });
}

/** Distinct problems the clients take turns at, so that an answer carrying another request's H shows. */
const PROBLEMS = 4;

/** Problem `variant`: expp and distance as plain arrays (the reference reads them), and the request body the clients
 * POST, the two encoded as .npy one after the other. */
async function problem(variant) {
  const { encodeComplexMatrixNpy, encodeFloat64VectorNpy } = await import('hpair');
  const expp = { rows: N, cols: M, data: new Float64Array(2 * N * M).map((_, k) => Math.sin(k * 0.37 + variant)) };
  const distance = new Float64Array(M).map((_, k) => 1 + (k % 7));
  return { expp, distance, body: Buffer.concat([encodeComplexMatrixNpy(expp), encodeFloat64VectorNpy(distance)]) };
}

/** POSTs `payload`; with `expected`, says whether the answer was those bytes exactly, compared as they arrive. */
function post(port, payload, expected) {
  return new Promise((resolve) => {
    const req = request({ host: '127.0.0.1', port, method: 'POST', path: '/', agent: false, headers: { 'content-length': payload.length } }, (res) => {
      let bytes = 0;
      let same = expected !== undefined;
      const chunks = expected === undefined ? [] : undefined;
      res.on('data', (chunk) => {
        if (chunks !== undefined) chunks.push(chunk);
        else if (same) same = bytes + chunk.length <= expected.length && chunk.equals(expected.subarray(bytes, bytes + chunk.length));
        bytes += chunk.length;
      });
      res.on('end', () => resolve({ status: res.statusCode, bytes, exact: same && bytes === expected.length, body: chunks && Buffer.concat(chunks) }));
      res.on('error', () => resolve({ status: 0, bytes }));
    });
    req.on('error', () => resolve({ status: 0, bytes: 0 }));
    req.end(payload);
  });
}

/** Sends the request and never reads the answer: the service's writes block until it gives up. */
function slowReader(port, payload) {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1', () => {
      socket.write(`POST / HTTP/1.1\r\nhost: x\r\ncontent-length: ${payload.length}\r\n\r\n`);
      socket.write(payload);
      socket.pause();
    });
    socket.setNoDelay(true);
    // It leaves after a while, as slow clients do, however much it has read.
    const leave = setTimeout(() => socket.destroy(), LEAVE_MS);
    socket.on('close', () => {
      clearTimeout(leave);
      resolve();
    });
    socket.on('error', () => undefined);
  });
}

const mb = (bytes) => `${(bytes / MiB).toFixed(0)} MiB`;

/**
 * Puts every thread of this process (the clients, and V8's threads that collect their garbage) CLIENT_NICE steps
 * below the service; says what it did. Threads started later inherit it from the thread that starts them.
 */
function lowerClients() {
  if (!(CLIENT_NICE > 0)) return 'at the service\'s priority, sharing its cores (CLIENT_NICE=10 puts them below it)';
  if (process.platform !== 'linux') return `at the service's priority (CLIENT_NICE is per thread on Linux only)`;
  try {
    const before = getPriority();
    for (const tid of readdirSync('/proc/self/task')) setPriority(Number(tid), Math.min(19, getPriority(Number(tid)) + CLIENT_NICE));
    return `at nice ${getPriority()}, the service at ${before} (CLIENT_NICE=0, the default, shares the cores equally)`;
  } catch (error) {
    return `at the service's priority or partly lowered (${error.message})`;
  }
}

async function main() {
  process.stdout.write(`hpair bench:service — ${cpus()[0]?.model ?? 'unknown CPU'}, ${availableParallelism()} cores, ${mb(totalmem())}, Node ${process.versions.node}\n`);
  // HOST_ARGV: Node flags for the service's process only (e.g. --cpu-prof to see what holds its event loop).
  const execArgv = (process.env.HOST_ARGV ?? '').split(' ').filter(Boolean);
  const child = fork(fileURLToPath(import.meta.url), ['--host'], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv });
  // After the fork, so the service keeps its priority (on Linux each thread has its own nice value).
  const clients = lowerClients();
  process.stdout.write(`clients      in this process, ${clients}\n`);
  try {
    const { port } = await new Promise((resolve) => child.once('message', resolve));
    const problems = await Promise.all(Array.from({ length: PROBLEMS }, (_, p) => problem(p)));
    const payloads = problems.map(({ body }) => body);
    const payload = payloads[0];
    // Each problem's answer, taken from the service before any storm and checked against hpair's reference.
    const { hermitianReference, parseComplexMatrixNpy } = await import('hpair');
    const expected = [];
    for (const { expp, distance, body } of problems) {
      const answer = await post(port, body);
      const h = parseComplexMatrixNpy(new Uint8Array(answer.body));
      const reference = hermitianReference(expp, distance);
      let error = 0;
      let scale = 0;
      for (let k = 0; k < h.data.length; k++) {
        error = Math.max(error, Math.abs(h.data[k] - reference.data[k]));
        scale = Math.max(scale, Math.abs(reference.data[k]));
      }
      if (!(error <= 1e-12 * scale)) throw new Error(`the service's H is off hpair's reference by ${error} (max |H| ${scale})`);
      expected.push(answer.body);
    }
    await sleep(IDLE_MS);
    const before = await ask(child, 'memory');
    process.stdout.write(`idle         RSS ${mb(before.rss)}, array buffers ${mb(before.arrayBuffers)}, heap ${mb(before.heapUsed)}\n`);
    let worst = 1;
    let maxDelay = 0;
    for (let round = 1; round <= ROUNDS; round++) {
      await ask(child, 'start');
      const answers = await Promise.all(Array.from({ length: CLIENTS }, (_, k) => post(port, payloads[k % PROBLEMS], expected[k % PROBLEMS])));
      const delay = await ask(child, 'stop');
      const ok = answers.filter((a) => a.status === 200 && a.exact).length;
      await sleep(IDLE_MS);
      const after = await ask(child, 'memory');
      worst = Math.max(worst, after.rss / before.rss);
      maxDelay = Math.max(maxDelay, delay.maxMs);
      process.stdout.write(
        `storm ${round}      ${CLIENTS} clients, ${ok} answered in full with the exact H; event-loop delay max ${delay.maxMs.toFixed(1)} ms, p99 ${delay.p99Ms.toFixed(1)} ms; ` +
          `idle ${IDLE_MS} ms later: RSS ${mb(after.rss)} (${(after.rss / before.rss).toFixed(2)}× idle before), array buffers ${mb(after.arrayBuffers)}, held ${after.heldBytes}\n`,
      );
    }
    await Promise.all(Array.from({ length: SLOW }, () => slowReader(port, payload)));
    await sleep(IDLE_MS);
    const slow = await ask(child, 'memory');
    worst = Math.max(worst, slow.rss / before.rss);
    process.stdout.write(`slow-readers ${SLOW} clients that never read, all cut off; idle ${IDLE_MS} ms later: RSS ${mb(slow.rss)} (${(slow.rss / before.rss).toFixed(2)}×), array buffers ${mb(slow.arrayBuffers)}, held ${slow.heldBytes}\n`);
    process.stdout.write(`targets      idle RSS after a burst ≤ 2× before: ${worst <= 2 ? 'met' : 'missed'} (worst ${worst.toFixed(2)}×); event-loop max delay ≤ 50 ms: ${maxDelay <= 50 ? 'met' : 'missed'} (worst ${maxDelay.toFixed(1)} ms)\n`);
    await ask(child, 'exit').catch(() => undefined);
  } finally {
    child.kill();
  }
}

if (process.argv[2] === '--host') await host();
else await main();
