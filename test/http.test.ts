// The README's service (examples/service.mjs) on loopback: a bounded load test with every answer checked,
// bad bodies answered 4xx, and a client that disconnects has its job aborted.
import { request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { createPool, demoProblem, encodeComplexMatrixNpy, encodeFloat64VectorNpy, hermitianReference, parseComplexMatrixNpy, type Pool } from 'hpair';
import { randomProblem, relativeError } from './helpers/support.js';

const test = suite('http');
let pool: Pool;
let server: Server;
let port = 0;

test.before(async () => {
  const { createService } = (await import(new URL('../../examples/service.mjs', import.meta.url).href)) as { createService: (pool: Pool) => Server };
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
  const big = demoProblem(2048, 2048);
  const failedBefore = pool.stats().failed;
  await new Promise<void>((resolve) => {
    const req = httpRequest({ host: '127.0.0.1', port, method: 'POST', path: '/' });
    req.on('error', () => resolve());
    req.end(Buffer.concat([encodeComplexMatrixNpy(big.expp), encodeFloat64VectorNpy(big.distance)]), () => {
      setTimeout(() => {
        req.destroy();
        resolve();
      }, 400);
    });
  });
  const deadline = Date.now() + 5000;
  while (pool.stats().failed === failedBefore && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  assert.is(pool.stats().failed, failedBefore + 1, 'the abandoned job was not aborted');
  const problem = randomProblem(9, 4, 2);
  assert.is((await post(npyBody(problem))).status, 200);
});

test.run();
