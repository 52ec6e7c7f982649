// The example service (examples/service.mjs) on loopback: a bounded load test with every answer checked,
// bad bodies answered 4xx, a client that disconnects has its job aborted; then the same load in a child
// process alongside hostile clients (slow readers, stalled uploads, amplification, oversize Content-Length),
// with its peak RSS bounded, and a SIGINT mid-load after which it must exit within its shutdown bound.
import { request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { createPool, demoProblem, encodeComplexMatrixNpy, encodeFloat64VectorNpy, hermitianReference, parseComplexMatrixNpy, type Pool } from 'hpair';
import { post as postTo, raw, residentMiB, sleep, slowReader, startServiceProcess, tinyBody, type Answer } from './helpers/service-clients.js';
import { npyBytes, randomProblem, relativeError } from './helpers/support.js';

const test = suite('http');
let pool: Pool;
let server: Server;
let port = 0;
let createService: (pool: Pool) => Server;

test.before(async () => {
  ({ createService } = (await import(new URL('../../examples/service.mjs', import.meta.url).href)) as { createService: (pool: Pool) => Server });
  pool = createPool({ workers: 2 });
  server = createService(pool);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as AddressInfo).port;
});
test.after(async () => {
  await new Promise((resolve) => server.close(resolve));
  await pool.close();
});

function post(body: Uint8Array | undefined, method = 'POST'): Promise<{ status: number; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, method, path: '/', timeout: 30_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

const npyBody = ({ expp, distance }: ReturnType<typeof randomProblem>): Uint8Array =>
  Buffer.concat([encodeComplexMatrixNpy(expp), encodeFloat64VectorNpy(distance)]);

test('load: 4 concurrent clients, 240 requests, every answer correct, the service stays up', async () => {
  let next = 0;
  const client = async (): Promise<void> => {
    while (next < 240) {
      const k = next++;
      const problem = randomProblem(5 + (k % 37), 3 + (k % 23), k);
      const res = await post(npyBody(problem));
      assert.is(res.status, 200, res.body.toString());
      const h = parseComplexMatrixNpy(new Uint8Array(res.body));
      assert.ok(relativeError(h, hermitianReference(problem.expp, problem.distance)) < 1e-12, `request ${k}`);
    }
  };
  await Promise.all([client(), client(), client(), client()]);
});

test('bad bodies get a 4xx with the message', async () => {
  const garbage = await post(new TextEncoder().encode('not npy at all'));
  assert.is(garbage.status, 400);
  assert.match(garbage.body.toString(), /not a \.npy file/);
  const problem = randomProblem(6, 5, 1);
  const mismatched = Buffer.concat([encodeComplexMatrixNpy(problem.expp), encodeFloat64VectorNpy(new Float64Array(4).fill(1))]);
  const res = await post(mismatched);
  assert.is(res.status, 400);
  assert.match(res.body.toString(), /distance has length 4 but expp has M = 5/);
  assert.is((await post(undefined, 'GET')).status, 405);
});

test('a client that disconnects has its job aborted; the service goes on', async () => {
  // On the JavaScript kernel, so the job is still computing when the client leaves on any CPU.
  const slow = createPool({ workers: 2, kernel: 'js' });
  const own = createService(slow);
  await new Promise<void>((resolve) => own.listen(0, '127.0.0.1', resolve));
  const big = demoProblem(2048, 2048);
  await new Promise<void>((resolve) => {
    const req = httpRequest({ host: '127.0.0.1', port: (own.address() as AddressInfo).port, method: 'POST', path: '/' });
    req.on('error', () => resolve());
    req.end(Buffer.concat([encodeComplexMatrixNpy(big.expp), encodeFloat64VectorNpy(big.distance)]), () => {
      setTimeout(() => {
        req.destroy();
        resolve();
      }, 400);
    });
  });
  const deadline = Date.now() + 5000;
  while (slow.stats().failed === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  assert.is(slow.stats().failed, 1, 'the abandoned job was not aborted');
  assert.is(slow.stats().completed, 0);
  await new Promise((resolve) => own.close(resolve));
  await slow.close();
  const problem = randomProblem(9, 4, 2);
  assert.is((await post(npyBody(problem))).status, 200);
});

const MiB = 2 ** 20;
/** Short timeouts, so hostile clients are cut off within a test's time. */
const CHILD_OPTIONS = {
  maxBodyBytes: 40 * MiB,
  maxOutputBytes: 32 * MiB,
  maxMemoryBytes: 160 * MiB,
  headersTimeout: 500,
  requestTimeout: 3000,
  idleTimeout: 500,
  writeTimeout: 500,
  jobTimeout: 20_000,
  keepAliveTimeout: 1000,
  shutdownTimeout: 1000,
};
/**
 * Peak RSS allowed for the child, in MiB: Node and two workers idle (the test logs it), what maxMemoryBytes
 * lets requests hold at once (160 MiB), socket buffers and garbage not yet collected. A service that let slow
 * readers pin their 22 MiB answers for as long as they liked would not stay under it.
 */
const RSS_BOUND_MIB = 420;

/** A normal client's request k: small random problems, every fifth a larger one; the answer must be right. */
async function normalRequest(port: number, k: number): Promise<Answer & { problem: ReturnType<typeof randomProblem> }> {
  const problem = k % 5 === 4 ? randomProblem(200 + (k % 50), 150 + (k % 31), k) : randomProblem(5 + (k % 37), 3 + (k % 23), k);
  return { ...(await postTo(port, npyBody(problem))), problem };
}

function assertCorrect(res: Answer & { problem: ReturnType<typeof randomProblem> }, what: string): void {
  assert.is(res.status, 200, `${what}: ${res.body.toString().slice(0, 200)}`);
  const h = parseComplexMatrixNpy(new Uint8Array(res.body));
  assert.ok(relativeError(h, hermitianReference(res.problem.expp, res.problem.distance)) < 1e-12, what);
}

test('hostile load on the service in a child process: normal answers right, hostile ones 4xx or cut off, RSS bounded', async () => {
  const child = await startServiceProcess(CHILD_OPTIONS);
  try {
    const idle = residentMiB(child.process.pid as number);
    let next = 0;
    const normal = async (): Promise<void> => {
      while (next < 160) {
        const k = next++;
        assertCorrect(await normalRequest(child.port, k), `request ${k}`);
      }
    };
    // Slow readers: H of 22 MiB each, not read for 1.2 s (writeTimeout is 0.5 s), then read to the end.
    const slow = async (): Promise<void> => {
      for (let round = 0; round < 3; round++) {
        for (const reader of await Promise.all([0, 1, 2].map(() => slowReader(child.port, tinyBody(1200, 2), 1200)))) {
          if (reader.status === 503) continue; // over maxMemoryBytes at that moment: refused, which is fine too
          assert.is(reader.status, 200);
          assert.ok(reader.received < reader.declared, `a slow reader got all ${reader.declared} bytes: it was not cut off`);
        }
      }
    };
    // Stalled uploads: Content-Length 4 MiB, expp's header and 1 KB, then nothing: cut off at idleTimeout.
    const stalled = async (): Promise<void> => {
      const head = npyBytes(`{'descr': '<c16', 'fortran_order': False, 'shape': (256, 1024), }`, new Uint8Array(1024));
      for (let round = 0; round < 4; round++) {
        for (const upload of await Promise.all([0, 1].map(() => raw(child.port, `POST / HTTP/1.1\r\nContent-Length: ${4 * MiB + 9000}`, { body: [head] })))) {
          assert.is(upload.status, 0, upload.text);
          assert.ok(upload.closedMs >= 450 && upload.closedMs < 1500, `a stalled upload was closed after ${upload.closedMs.toFixed(0)} ms`);
        }
      }
    };
    // Amplification: bodies of a few hundred bytes (M = 0) or 16·N (M = 1) declaring N = 8000 or more.
    const amplification = async (): Promise<void> => {
      for (let k = 0; k < 24; k++) {
        const [N, M] = [[8000, 0], [8000, 1], [100_000, 0], [1500, 1]][k % 4];
        // 413 is decided from expp's header alone (the service checks H's size before it allocates or computes).
        const res = await postTo(child.port, tinyBody(N, M));
        assert.is(res.status, 413, `(${N}, ${M}): ${res.body.toString()}`);
      }
    };
    // Oversize Content-Length: 413 before any body byte is read.
    const oversize = async (): Promise<void> => {
      for (let k = 0; k < 10; k++) {
        const res = await raw(child.port, `POST / HTTP/1.1\r\nContent-Length: ${2 ** 30}`, { body: [tinyBody(3, 2)] });
        assert.is(res.status, 413, res.text);
        // Answered and closed by the server, though the client never sent the gigabyte it declared.
        assert.ok(res.firstByteMs !== undefined && Number.isFinite(res.closedMs), 'the server waited for the body');
      }
    };
    const started = performance.now();
    await Promise.all([normal(), normal(), normal(), normal(), slow(), stalled(), amplification(), oversize()]);
    const rss = residentMiB(child.process.pid as number);
    console.log(`  hostile load: ${(performance.now() - started).toFixed(0)} ms; child RSS idle ${idle?.now.toFixed(0)} MiB, peak ${rss?.peak.toFixed(0)} MiB, after ${rss?.now.toFixed(0)} MiB`);
    if (rss !== undefined) assert.ok(rss.peak <= RSS_BOUND_MIB, `the service's peak RSS was ${rss.peak.toFixed(0)} MiB (bound ${RSS_BOUND_MIB})`);
    // Still healthy.
    assertCorrect(await normalRequest(child.port, 7), 'after the load');
  } finally {
    child.process.kill('SIGKILL');
    await child.exited;
  }
});

test('SIGINT mid-load: running job and stalled upload get 503 or a closed socket; the service exits within its bound', async () => {
  // The JavaScript kernel, so the long job is still computing when the signal comes on any CPU (native AVX-512
  // finishes it in a tenth of a second).
  const child = await startServiceProcess({ ...CHILD_OPTIONS, kernel: 'js' });
  let stop = false;
  try {
    const signalledBase = performance.now();
    const outcomes: number[] = [];
    const normal = async (): Promise<void> => {
      for (let k = 0; !stop; k++) {
        try {
          const res = await normalRequest(child.port, k);
          outcomes.push(res.status);
          if (res.status === 200) assertCorrect(res, `request ${k} during shutdown`);
          else assert.is(res.status, 503, res.body.toString());
        } catch {
          outcomes.push(0); // refused or reset once the service stopped listening
          await sleep(20);
        }
      }
    };
    const clients = [normal(), normal()];
    const head = npyBytes(`{'descr': '<c16', 'fortran_order': False, 'shape': (256, 1024), }`, new Uint8Array(1024));
    const stalled = raw(child.port, `POST / HTTP/1.1\r\nContent-Length: ${4 * MiB + 9000}`, { body: [head], giveUpMs: 8000 });
    const long = randomProblem(1400, 1600, 3); // 12.5 GFLOP, H of 31 MiB: seconds on two workers of the js kernel
    let sent!: () => void;
    const uploaded = new Promise<void>((resolve) => (sent = resolve));
    const job = new Promise<{ status: number; text: string }>((resolve) => {
      const req = httpRequest({ host: '127.0.0.1', port: child.port, method: 'POST', path: '/' }, (res) => {
        let text = '';
        res.on('data', (chunk: Buffer) => (text += chunk.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
        res.on('error', () => resolve({ status: 0, text }));
      });
      req.on('error', () => resolve({ status: 0, text: '' }));
      req.end(npyBody(long), sent);
    });
    await uploaded;
    await sleep(300); // the body is in: the job is computing
    console.log(`  SIGINT sent ${(performance.now() - signalledBase).toFixed(0)} ms into the test, 300 ms after the long job's body was sent`);
    const signalled = performance.now();
    child.process.kill('SIGINT');
    const code = await child.exited;
    const exitMs = performance.now() - signalled;
    stop = true;
    await Promise.all(clients);
    console.log(`  SIGINT: exited ${code} after ${exitMs.toFixed(0)} ms; answers during the test: ${outcomes.filter((s) => s === 200).length} × 200, ${outcomes.filter((s) => s === 503).length} × 503, ${outcomes.filter((s) => s === 0).length} refused`);
    assert.is(code, 0, child.stderr());
    const answer = await job;
    assert.ok(answer.status === 503 || answer.status === 0, `the running job's client got ${answer.status}`);
    if (answer.status === 503) assert.match(answer.text, /shutting down/);
    const upload = await stalled;
    assert.ok(upload.status === 503 || upload.status === 0, `the stalled upload got ${upload.status}`);
    assert.ok(upload.closedMs < Infinity, 'the stalled upload was never closed');
  } finally {
    stop = true;
    child.process.kill('SIGKILL'); // no-op once it has exited
    await child.exited;
  }
});

test.run();
