// How long the main thread's event loop stalls while big jobs run: the timings the tests deliberately do not
// assert (they check the behaviour behind them). Each scenario runs --rounds times; the table gives the median
// and the worst round of the longest stall (a 1 ms interval's longest gap) and of monitorEventLoopDelay's p99,
// against a 20 ms target. Pools have one worker, so on a 2-core host the main thread keeps a core of its own.
//
//   amplification  expp of (8000, 1): no flops, a 976 MiB H stored by the worker
//   plain-input    three jobs in a row on a plain (non-shared) 2048×1024 expp, copied in pieces by the caller
//   long-job       one job of a second or more (grown until it is)
//   service-in     examples/service.mjs receiving a 64 MiB body (N = 256, M = 16384)
//   service-out    examples/service.mjs sending a 64 MiB H (N = 2049, M = 64)
//
//   npm run bench:event-loop [-- --rounds 3 --out bench-results-event-loop.json]
import { writeFileSync } from 'node:fs';
import { request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { createComplexMatrix, createPool, demoProblem, encodeComplexMatrixNpy, encodeFloat64VectorNpy, type Pool } from 'hpair';
import { hostFacts, hostLine } from './host.js';
import { ms, progress, summarize, textTable } from './stats.js';

const TARGET_MS = 20;
const MiB = 2 ** 20;
const { values } = parseArgs({ options: { rounds: { type: 'string' }, out: { type: 'string' }, help: { type: 'boolean', short: 'h' } } });
if (values.help === true) {
  process.stdout.write('npm run bench:event-loop [-- --rounds N (default 3) --out FILE (default bench-results-event-loop.json)]\n');
  process.exit(0);
}
const rounds = Number(values.rounds ?? 3);
if (!Number.isInteger(rounds) || rounds < 1) throw new Error(`--rounds must be a positive integer, not ${values.rounds}`);
const outFile = values.out ?? 'bench-results-event-loop.json';

interface Stall {
  /** Longest gap between two turns of the loop, seen by a 1 ms interval. */
  longestMs: number;
  /** monitorEventLoopDelay's p99 and max over the scenario. */
  p99Ms: number;
  maxMs: number;
  /** Wall time of the scenario. */
  ms: number;
}

async function measure(work: () => Promise<unknown>): Promise<Stall> {
  // Let closed pools and freed buffers of the previous round settle: unmapping a big H holds the kernel's
  // memory-map lock, which is a cost of that round, not of this one.
  await new Promise((resolve) => setTimeout(resolve, 300));
  const histogram = monitorEventLoopDelay({ resolution: 1 });
  let last = performance.now();
  let longest = 0;
  const timer = setInterval(() => {
    const now = performance.now();
    longest = Math.max(longest, now - last);
    last = now;
  }, 1);
  histogram.enable();
  const started = performance.now();
  try {
    await work();
  } finally {
    histogram.disable();
    clearInterval(timer);
  }
  return { longestMs: Math.max(longest, performance.now() - last), p99Ms: histogram.percentile(99) / 1e6, maxMs: histogram.max / 1e6, ms: performance.now() - started };
}

async function withPool<T>(work: (pool: Pool) => Promise<T>, inlineFlops?: number): Promise<T> {
  const pool = createPool({ workers: 1, ...(inlineFlops === undefined ? {} : { inlineFlops }) });
  await pool.ready();
  try {
    return await work(pool);
  } finally {
    await pool.close();
  }
}

function post(port: number, body: Uint8Array): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, method: 'POST', path: '/' }, (res) => {
      res.on('data', () => undefined);
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end(body);
  });
}

type Service = Server & { shutdown: () => Promise<void> };
async function withService<T>(work: (port: number) => Promise<T>): Promise<T> {
  const path = fileURLToPath(new URL('../../examples/service.mjs', import.meta.url));
  const { createService } = (await import(path)) as { createService: (pool: Pool, options: Record<string, number>) => Service };
  return withPool(async (pool) => {
    const service = createService(pool, { maxBodyBytes: 80 * MiB, maxOutputBytes: 80 * MiB });
    await new Promise<void>((resolve) => service.listen(0, '127.0.0.1', resolve));
    try {
      return await work((service.address() as AddressInfo).port);
    } finally {
      await service.shutdown();
    }
  });
}

const npyBody = (n: number, m: number): Buffer => {
  const { expp, distance } = demoProblem(n, m);
  return Buffer.concat([encodeComplexMatrixNpy(expp), encodeFloat64VectorNpy(distance)]);
};

const scenarios: Record<string, () => Promise<Stall>> = {
  amplification: () =>
    withPool(async (pool) => {
      const expp = createComplexMatrix(8000, 1);
      return measure(() => pool.hermitian(expp, new Float64Array(1)));
    }),
  'plain-input': () =>
    withPool(async (pool) => {
      const shared = demoProblem(2048, 1024);
      const plain = { rows: 2048, cols: 1024, data: new Float64Array(shared.expp.data) };
      const distance = new Float64Array(shared.distance);
      return measure(async () => {
        for (let k = 0; k < 3; k++) await pool.hermitian(plain, distance);
      });
    }),
  'long-job': () =>
    withPool(async (pool) => {
      let size = pool.kernel === 'js' ? 1200 : 2400;
      for (;;) {
        const { expp, distance } = demoProblem(size, size);
        const stall = await measure(() => pool.hermitian(expp, distance));
        if (stall.ms >= 1000 || size > 20_000) return stall;
        size = Math.ceil(size * Math.cbrt(1400 / stall.ms));
      }
    }, 0),
  'service-in': () => {
    const body = npyBody(256, 16384);
    return withService((port) => measure(() => post(port, body)));
  },
  'service-out': () => {
    const body = npyBody(2049, 64);
    return withService((port) => measure(() => post(port, body)));
  },
};

const host = hostFacts();
progress(`host: ${hostLine(host)}`);
const results: Record<string, Stall[]> = {};
for (const [name, run] of Object.entries(scenarios)) {
  results[name] = [];
  for (let round = 0; round < rounds; round++) {
    const stall = await run();
    results[name].push(stall);
    progress(`${name} round ${round + 1}: ${ms(stall.ms)} ms, longest stall ${ms(stall.longestMs)} ms, delay p99 ${ms(stall.p99Ms)} ms, max ${ms(stall.maxMs)} ms`);
  }
}

const header = ['scenario', 'rounds', 'longest stall median ms', 'worst ms', 'delay p99 median ms', 'worst ms', `within ${TARGET_MS} ms (worst round)`];
const cells = Object.entries(results).map(([name, stalls]) => {
  const longest = summarize(stalls.map((s) => s.longestMs));
  const p99 = summarize(stalls.map((s) => s.p99Ms));
  return [name, String(stalls.length), ms(longest.median), ms(longest.max), ms(p99.median), ms(p99.max), longest.max <= TARGET_MS && p99.max <= TARGET_MS ? 'yes' : 'no'];
});
process.stdout.write(`hpair event-loop bench — ${hostLine(host)}\n${host.date}, hpair ${host.commit?.slice(0, 12) ?? '(no git)'}\n\n${textTable(header, cells)}\n`);
const record = {
  command: ['node', ...process.execArgv, 'dist/bench/event-loop.js', ...process.argv.slice(2)].join(' '),
  host,
  targetMs: TARGET_MS,
  scenarios: results,
  loadAverageAtEnd: (await import('node:os')).loadavg(),
};
writeFileSync(outFile, `${JSON.stringify(record, null, 2)}\n`);
process.stderr.write(`results written to ${outFile}\n`);
