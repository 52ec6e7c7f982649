// examples/service.mjs against one hostile client at a time, in process and with short timeouts: every limit
// answers as documented, before the work or the memory it guards against.
import type { Server } from 'node:http';
import { Agent } from 'node:http';
import type { AddressInfo } from 'node:net';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { createPool, encodeFloat64VectorNpy, hermitianReference, parseComplexMatrixNpy, parseFloat64VectorNpy, type Pool } from 'hpair';
import { npyBody, post, raw, servicePath, sleep, slowReader, tinyBody } from './helpers/service-clients.js';
import { fixture, npyBytes, randomProblem, relativeError } from './helpers/support.js';

type Service = Server & { shutdown: () => Promise<void>; stats: () => { requests: number; heldBytes: number } };
type CreateService = (pool: Pool, options?: Record<string, number>) => Service;

const test = suite('service-limits');
const MiB = 2 ** 20;
const OPTIONS = {
  maxBodyBytes: 8 * MiB,
  maxOutputBytes: 48 * MiB,
  maxMemoryBytes: 80 * MiB,
  headersTimeout: 400,
  requestTimeout: 1000,
  idleTimeout: 400,
  writeTimeout: 400,
  jobTimeout: 20_000,
  keepAliveTimeout: 1000,
  shutdownTimeout: 800,
};
let createService: CreateService;
let pool: Pool;
let service: Service;
let port = 0;

async function listen(options: Record<string, number> = OPTIONS, on: Pool = pool): Promise<{ service: Service; port: number }> {
  const server = createService(on, options);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { service: server, port: (server.address() as AddressInfo).port };
}

async function settled(): Promise<void> {
  const deadline = Date.now() + 3000;
  while (service.stats().requests > 0 && Date.now() < deadline) await sleep(10);
  assert.equal(service.stats(), { requests: 0, heldBytes: 0 }, 'a request is still open or holds memory');
}

test.before(async () => {
  ({ createService } = (await import(servicePath)) as { createService: CreateService });
  pool = createPool({ workers: 2 });
  ({ service, port } = await listen());
});
test.after(async () => {
  await service.shutdown();
  await pool.close();
});

test('a Content-Length over maxBodyBytes gets 413 at once, without the body being read', async () => {
  const jobs = pool.stats().completed + pool.stats().failed;
  const result = await raw(port, `POST / HTTP/1.1\r\nContent-Length: ${10 * 2 ** 30}`, { body: [tinyBody(3, 2)] });
  assert.is(result.status, 413, result.text);
  assert.match(result.text, /a body of 10737418240 bytes; at most 8388608/);
  assert.match(result.text, /connection: close/i);
  // Answered, and the connection closed by the server, though the client never sent what it declared.
  assert.ok(result.firstByteMs !== undefined && Number.isFinite(result.closedMs), 'the server waited for the body');
  // With Expect: 100-continue the client is told before it sends anything, and never gets a 100.
  const expecting = await raw(port, `POST / HTTP/1.1\r\nContent-Length: ${9 * MiB}\r\nExpect: 100-continue`, { giveUpMs: 3000 });
  assert.is(expecting.status, 413);
  assert.not.match(expecting.text, /100 Continue/);
  assert.is(pool.stats().completed + pool.stats().failed, jobs, 'a job ran');
  await settled();
});

test('Expect: 100-continue within the limit gets 100, then the answer', async () => {
  const problem = randomProblem(6, 4, 8);
  const res = await post(port, npyBody(problem), { headers: { expect: '100-continue' } });
  assert.is(res.status, 200, res.body.toString());
  assert.ok(relativeError(parseComplexMatrixNpy(new Uint8Array(res.body)), hermitianReference(problem.expp, problem.distance)) < 1e-12);
});

test('amplification: tiny bodies declaring a huge N (M = 0 or 1) get 413 from the header, before the pool', async () => {
  const jobs = pool.stats().completed + pool.stats().failed;
  for (const [N, M] of [[8000, 0], [8000, 1], [1800, 2], [100_000, 0]]) {
    const body = tinyBody(N, M);
    assert.ok(body.length < 400 + 24 * N * M, `${body.length} bytes`);
    const res = await post(port, body);
    assert.is(res.status, 413, `(${N}, ${M}): ${res.body.toString()}`);
    assert.match(res.body.toString(), new RegExp(`expp has N = ${N}: H would take \\d+ bytes; at most ${48 * MiB}`));
  }
  // Under maxOutputBytes but over maxOutputRatio times the body: H of 44 MiB from a 27 KB body.
  for (const [N, M] of [[1701, 1], [300, 0]]) {
    const res = await post(port, tinyBody(N, M));
    assert.is(res.status, 413, `(${N}, ${M}): ${res.body.toString()}`);
    assert.match(res.body.toString(), new RegExp(`expp is ${N}×${M}: H would take \\d+ bytes, over 1024 times the \\d+-byte body`));
  }
  assert.is(pool.stats().completed + pool.stats().failed, jobs, 'a job ran');
  // Within both bounds: served (H of 16·1199² bytes = 22 MiB from a 38 KB body, 600 times it).
  const res = await post(port, tinyBody(1200, 2));
  assert.is(res.status, 200, res.body.toString().slice(0, 200));
  assert.is(res.body.length, 128 + 16 * 1199 * 1199);
  // Small problems are always allowed up to 1 MiB of H, whatever the ratio.
  const small = await post(port, tinyBody(256, 0));
  assert.is(small.status, 200, small.body.toString().slice(0, 200));
  await settled();
});

test('amplification at the defaults: a 200-byte body gets 413 for N = 8000 (976 MiB > 512 MiB) and N = 5793 (512 MiB)', async () => {
  const defaults = await listen({});
  try {
    const res = await post(defaults.port, tinyBody(8000, 0));
    assert.is(res.status, 413, res.body.toString());
    assert.match(res.body.toString(), /H would take 1023744016 bytes; at most 536870912/);
    const ratio = await post(defaults.port, tinyBody(5793, 0));
    assert.is(ratio.status, 413, ratio.body.toString().slice(0, 100));
    assert.match(ratio.body.toString(), /H would take 536756224 bytes, over 1024 times the \d+-byte body/);
  } finally {
    await defaults.service.shutdown();
  }
});

test('headers that say more than Content-Length allows: 400 before allocating', async () => {
  const held = service.stats().heldBytes;
  // expp declares 4 MiB of data but the body is 300 bytes long.
  const liar = npyBytes(`{'descr': '<c16', 'fortran_order': False, 'shape': (512, 512), }`, new Uint8Array(100));
  const res = await post(port, liar);
  assert.is(res.status, 400);
  assert.match(res.body.toString(), /expp with distance declares \d+ bytes but Content-Length is 228/);
  assert.is(service.stats().heldBytes, held);
  // A distance header that disagrees with expp's M is refused before its data.
  const problem = randomProblem(6, 5, 1);
  const mismatched = Buffer.concat([npyBody(problem).subarray(0, 128 + 16 * 30), encodeFloat64VectorNpy(new Float64Array(4).fill(1))]);
  const bad = await post(port, mismatched);
  assert.is(bad.status, 400);
  assert.match(bad.body.toString(), /distance has length 4 but expp has M = 5/);
  // Bytes after distance, and a body that ends early.
  assert.match((await post(port, Buffer.concat([npyBody(problem), Buffer.from('x')]))).body.toString(), /bytes after distance/);
  assert.match((await post(port, npyBody(problem).subarray(0, 128 + 16 * 30))).body.toString(), /expp with distance declares \d+ bytes but Content-Length is 608/);
  assert.match((await post(port, npyBody(problem).subarray(0, 128 + 16 * 30), { chunked: true })).body.toString(), /the body ends before distance/);
  assert.match((await post(port, npyBody(problem).subarray(0, 200), { chunked: true })).body.toString(), /truncated \.npy file/);
  await settled();
});

test('a chunked body (no Content-Length) is read, and bounded by maxBodyBytes as it streams', async () => {
  const problem = randomProblem(33, 17, 4);
  const ok = await post(port, npyBody(problem), { chunked: true });
  assert.is(ok.status, 200, ok.body.toString());
  assert.ok(relativeError(parseComplexMatrixNpy(new Uint8Array(ok.body)), hermitianReference(problem.expp, problem.distance)) < 1e-12);
  // expp declares 9 MiB: over maxBodyBytes, refused from its header.
  const big = npyBytes(`{'descr': '<c16', 'fortran_order': False, 'shape': (576, 1024), }`, new Uint8Array(4096));
  const refused = await post(port, big, { chunked: true });
  assert.is(refused.status, 413);
  assert.match(refused.body.toString(), /the body may have at most 8388608/);
  await settled();
});

test('every dtype and layout the readers accept arrives intact through the stream', async () => {
  for (const [exppName, distanceName] of [
    ['expp_c8.npy', 'distance_f4.npy'],
    ['expp_c16_fortran.npy', 'distance_f8_bigendian.npy'],
    ['expp_c16_bigendian.npy', 'distance_f8.npy'],
    ['expp_f8.npy', 'distance_f8.npy'],
  ]) {
    const expp = parseComplexMatrixNpy(fixture(exppName));
    const distance = parseFloat64VectorNpy(fixture(distanceName));
    const res = await post(port, Buffer.concat([fixture(exppName), fixture(distanceName)]));
    assert.is(res.status, 200, `${exppName}: ${res.body.toString()}`);
    assert.ok(relativeError(parseComplexMatrixNpy(new Uint8Array(res.body)), hermitianReference(expp, distance)) < 1e-12, exppName);
  }
});

test('a stalled upload is cut off after idleTimeout; a trickling one gets 408 at requestTimeout', async () => {
  // Each timeout must not fire before its time; how late it fires depends on the host's load, so the upper
  // bounds only rule out "never" (the service's own timing is measured by npm run bench:service).
  const LATE = 10_000;
  const head = npyBytes(`{'descr': '<c16', 'fortran_order': False, 'shape': (256, 256), }`, new Uint8Array(1000));
  const stalled = await raw(port, `POST / HTTP/1.1\r\nContent-Length: ${2 * MiB}`, { body: [head] });
  assert.is(stalled.status, 0, 'no answer is owed to a stalled upload');
  assert.ok(stalled.closedMs >= 350 && stalled.closedMs < LATE, `closed after ${stalled.closedMs.toFixed(0)} ms`);
  // One byte every 20 ms is never idle for long (a stall of the client's own event loop would need to pass
  // idleTimeout to look idle), but the whole request has 1000 ms.
  const pieces = Array.from({ length: 400 }, (_, i) => head.subarray(i, i + 1));
  const trickle = await raw(port, `POST / HTTP/1.1\r\nContent-Length: ${2 * MiB}`, { body: pieces, gapMs: 20 });
  assert.is(trickle.status, 408, trickle.text);
  assert.ok(trickle.closedMs >= 950 && trickle.closedMs < LATE, `closed after ${trickle.closedMs.toFixed(0)} ms`);
  // Headers that never end: 408 at headersTimeout.
  const lines = Array.from({ length: 100 }, (_, i) => Buffer.from(`X-Slow-${i}: 1\r\n`));
  const headers = await raw(port, 'POST / HTTP/1.1\r\n', { endHeaders: false, body: lines, gapMs: 20 });
  assert.is(headers.status, 408, headers.text);
  assert.ok(headers.closedMs >= 350 && headers.closedMs < LATE, `closed after ${headers.closedMs.toFixed(0)} ms`);
  await settled();
});

test('a client that never reads is cut off after writeTimeout and its H released; others are served meanwhile', async () => {
  // H of 16·1199² bytes = 22 MiB each: far more than the socket buffers hold; both fit in maxMemoryBytes.
  const body = tinyBody(1200, 2);
  const readers = [slowReader(port, body, 1000), slowReader(port, body, 1000)];
  await sleep(300);
  const problem = randomProblem(20, 9, 3);
  const served = await post(port, npyBody(problem));
  assert.is(served.status, 200);
  for (const reader of await Promise.all(readers)) {
    assert.is(reader.status, 200);
    assert.is(reader.declared, 128 + 16 * 1199 * 1199);
    assert.ok(reader.received < reader.declared, `the slow reader got all ${reader.received} bytes: it was not cut off`);
  }
  await settled();
});

test('maxMemoryBytes: requests past the budget get 503 with Retry-After; the budget comes back', async () => {
  // Each holds 46 MiB of H while its client does not read: the second does not fit in 80 MiB.
  const body = tinyBody(1737, 2);
  const first = slowReader(port, body, 900);
  await sleep(200);
  const second = await post(port, body);
  assert.is(second.status, 503, second.body.toString().slice(0, 200));
  assert.is(second.headers['retry-after'], '1');
  await first;
  await settled();
  assert.is((await post(port, npyBody(randomProblem(5, 5, 5)))).status, 200);
});

test('keep-alive: many requests on one connection, each with its own timeouts', async () => {
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  for (let k = 0; k < 5; k++) {
    const problem = randomProblem(4 + k, 3 + k, k);
    const res = await post(port, npyBody(problem), { agent });
    assert.is(res.status, 200);
    await sleep(k === 2 ? 600 : 0); // longer than idleTimeout between requests: only keepAliveTimeout applies
  }
  agent.destroy();
});

test('shutdown(): uploads and jobs get 503 or a closed socket, idle connections close, all within shutdownTimeout', async () => {
  // The JavaScript kernel, so the long job is still computing at shutdown on any CPU.
  const slow = createPool({ workers: 2, kernel: 'js' });
  const own = await listen({ ...OPTIONS, maxBodyBytes: 64 * MiB }, slow);
  const agent = new Agent({ keepAlive: true });
  assert.is((await post(own.port, npyBody(randomProblem(5, 4, 1)), { agent })).status, 200); // leaves an idle keep-alive socket
  const head = npyBytes(`{'descr': '<c16', 'fortran_order': False, 'shape': (256, 256), }`, new Uint8Array(1000));
  const stalledAt = performance.now();
  const stalled = raw(own.port, `POST / HTTP/1.1\r\nContent-Length: ${2 * MiB}`, { body: [head] });
  const long = randomProblem(1500, 1500, 2);
  const computing = post(own.port, npyBody(long)).catch((error: Error) => ({ status: 0, body: Buffer.from(error.message), headers: {} }));
  await sleep(300);
  const started = performance.now();
  await own.service.shutdown();
  const elapsed = performance.now() - started;
  assert.ok(elapsed < OPTIONS.shutdownTimeout + 300, `shutdown took ${elapsed.toFixed(0)} ms`);
  const job = await computing;
  assert.ok(job.status === 503 || job.status === 0, `the running job's client got ${job.status}`);
  const upload = await stalled;
  assert.ok(upload.status === 503 || upload.status === 0, `the stalled upload got ${upload.status}`);
  const closedAfterShutdown = stalledAt + upload.closedMs - started;
  assert.ok(closedAfterShutdown < elapsed + 100, `the stalled upload was closed ${closedAfterShutdown.toFixed(0)} ms after shutdown began`);
  console.log(`shutdown ${elapsed.toFixed(0)} ms; job ${job.status}, upload ${upload.status} closed after ${closedAfterShutdown.toFixed(0)} ms`);
  assert.is(own.service.listening, false);
  agent.destroy();
  await slow.close();
});

test.run();
