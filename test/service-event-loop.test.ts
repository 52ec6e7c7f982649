// The example service's event loop while it serves 64 MiB: a 64 MiB body streamed into shared memory, and a
// 64 MiB H streamed out of it. monitorEventLoopDelay runs over the request only; inputs are made before it
// starts and answers checked after it stops, so what it sees is the service (and a client that only collects).
import type { Server } from 'node:http';
import { request as httpRequest } from 'node:http';
import type { AddressInfo } from 'node:net';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { createPool, hermitianReference, parseComplexMatrixNpy, type Pool } from 'hpair';
import { npyBody, servicePath } from './helpers/service-clients.js';
import { assertBitIdentical, randomProblem, relativeError } from './helpers/support.js';

type CreateService = (pool: Pool, options?: Record<string, number>) => Server & { shutdown: () => Promise<void> };

const test = suite('service-event-loop');
const MiB = 2 ** 20;
let pool: Pool;
let service: Server & { shutdown: () => Promise<void> };
let port = 0;

test.before(async () => {
  const { createService } = (await import(servicePath)) as { createService: CreateService };
  // One worker: on a 2-core host the main thread then has a core of its own, so what the histogram sees is the
  // service's own work on it rather than the scheduler sharing two cores among three busy threads.
  pool = createPool({ workers: 1 });
  await pool.ready();
  service = createService(pool, { maxBodyBytes: 80 * MiB, maxOutputBytes: 80 * MiB });
  await new Promise<void>((resolve) => service.listen(0, '127.0.0.1', resolve));
  port = (service.address() as AddressInfo).port;
});
test.after(async () => {
  await service.shutdown();
  await pool.close();
});

/** POSTs body; the answer's chunks are only collected (no concatenation) while the loop is measured. */
function postCollect(body: Uint8Array): Promise<{ status: number; chunks: Buffer[] }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, method: 'POST', path: '/' }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, chunks }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

interface Measured {
  status: number;
  chunks: Buffer[];
  maxMs: number;
  p99Ms: number;
  ms: number;
}

async function measureOnce(body: Uint8Array): Promise<Measured> {
  const histogram = monitorEventLoopDelay({ resolution: 1 });
  const started = performance.now();
  histogram.enable();
  const answer = await postCollect(body);
  histogram.disable();
  return { ...answer, maxMs: histogram.max / 1e6, p99Ms: histogram.percentile(99) / 1e6, ms: performance.now() - started };
}

// The longest single stall; 20 ms is the target, the margin is for a 2-core host shared with the workers.
const within = (r: Measured): boolean => r.p99Ms <= 20 && r.maxMs <= 30;

/**
 * The first of up to five runs that keeps within both bounds, else the one with the lowest p99: a stall the
 * service causes shows in every run, while a host busy with other work (the suite runs on 2 shared vCPUs, where
 * a VM's page faults cost ~10 µs and the scheduler takes ~6 ms slices from the main thread) can push any one run
 * over.
 */
async function measured(what: string, body: Uint8Array): Promise<Measured> {
  let best: Measured | undefined;
  for (let run = 0; run < 5 && (best === undefined || !within(best)); run++) {
    const r = await measureOnce(body);
    console.log(`  ${what}: ${r.ms.toFixed(0)} ms, event-loop delay max ${r.maxMs.toFixed(1)} ms, p99 ${r.p99Ms.toFixed(1)} ms`);
    if (best === undefined || within(r) || r.p99Ms < best.p99Ms) best = r;
  }
  const r = best as Measured;
  assert.ok(r.p99Ms <= 20, `${what}: p99 event-loop delay ${r.p99Ms.toFixed(1)} ms`);
  assert.ok(r.maxMs <= 30, `${what}: the event loop stalled ${r.maxMs.toFixed(1)} ms`);
  return r;
}

test('a 64 MiB body (N = 256, M = 16384) streams into shared memory without stalling the loop', async () => {
  const problem = randomProblem(256, 16384, 1);
  const body = npyBody(problem);
  assert.ok(body.length > 64 * MiB);
  const r = await measured('64 MiB in', body);
  assert.is(r.status, 200);
  const h = parseComplexMatrixNpy(new Uint8Array(Buffer.concat(r.chunks)));
  assertBitIdentical(h.data, (await pool.hermitian(problem.expp, problem.distance)).data, 'H through the service vs the pool');
});

test('a 64 MiB H (N = 2049, M = 64) streams out of shared memory without stalling the loop', async () => {
  const problem = randomProblem(2049, 64, 2);
  const r = await measured('64 MiB out', npyBody(problem));
  assert.is(r.status, 200);
  const h = parseComplexMatrixNpy(new Uint8Array(Buffer.concat(r.chunks)));
  assert.is(h.data.byteLength, 64 * MiB);
  assert.ok(relativeError(h, hermitianReference(problem.expp, problem.distance)) < 1e-12);
});

test.run();
