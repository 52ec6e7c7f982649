// The example service reuses sent H buffers as the pool's `out` and hands the pool a few jobs at a time. These
// tests break both on purpose: answers the clients do not read while requests of the same shape come and go, an
// answer whose last writes are still on their way after end(), clients that leave mid-answer, requests that wait
// for a job while their client leaves or their deadline passes.
// Every answer is checked bit for bit against the pool's own H for its problem.
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { connect, type AddressInfo, type Socket } from 'node:net';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { createPool, type ComplexMatrix, type HermitianOptions, type Pool } from 'hpair';
import { assertExactAnswer, npyBody, post, servicePath, sleep } from './helpers/service-clients.js';
import { randomProblem } from './helpers/support.js';

type Service = Server & { shutdown: () => Promise<void>; stats: () => { requests: number; heldBytes: number } };
type CreateService = (pool: Pool, options?: Record<string, number>) => Service;
type Problem = { expp: ComplexMatrix; distance: Float64Array };

const test = suite('service-reuse');
let pool: Pool;
let createService: CreateService;

test.before(async () => {
  ({ createService } = (await import(servicePath)) as { createService: CreateService });
  pool = createPool({ workers: 1 });
  await pool.ready();
});
test.after(async () => {
  await pool.close();
});

const listen = async (service: Service): Promise<number> => {
  await new Promise<void>((resolve) => service.listen(0, '127.0.0.1', resolve));
  return (service.address() as AddressInfo).port;
};

/** Until `done()` holds, bounded for liveness only. */
async function until(done: () => boolean): Promise<void> {
  for (let wait = 0; wait < 1000 && !done(); wait++) await sleep(10);
}

/**
 * A client that sends its request and reads nothing until `read()`: the service's writes of its answer block
 * once the socket's buffers are full. `read()` then takes the whole answer and closes; `leave()` closes unread.
 */
function stalledClient(port: number, body: Uint8Array): { socket: Socket; read: () => Promise<{ status: number; body: Buffer }>; leave: () => void } {
  const socket = connect(port, '127.0.0.1');
  socket.on('error', () => undefined);
  socket.once('connect', () => {
    socket.write(`POST / HTTP/1.1\r\nhost: x\r\ncontent-length: ${body.length}\r\n\r\n`);
    socket.write(body);
  });
  socket.pause();
  const read = (): Promise<{ status: number; body: Buffer }> =>
    new Promise((resolve, reject) => {
      const chunks: Buffer[] = [];
      let have = 0;
      // The head's end and the answer's length, once the head is in: the body is joined once, when all of it is.
      let head: { text: string; end: number; length: number } | undefined;
      const onData = (chunk: Buffer): void => {
        chunks.push(chunk);
        have += chunk.length;
        if (head === undefined) {
          const start = Buffer.concat(chunks);
          const end = start.indexOf('\r\n\r\n');
          if (end < 0) return;
          const text = start.subarray(0, end).toString('latin1');
          head = { text, end, length: Number(/content-length: *(\d+)/i.exec(text)?.[1] ?? NaN) };
        }
        const { text, end, length } = head;
        if (have < end + 4 + length) return;
        const all = Buffer.concat(chunks);
        socket.off('data', onData);
        socket.destroy();
        resolve({ status: Number(text.split(' ')[1]), body: all.subarray(end + 4, end + 4 + length) });
      };
      socket.on('data', onData);
      socket.once('close', () => reject(new Error('the service closed the connection before the whole answer')));
      socket.resume();
    });
  return { socket, read, leave: () => socket.destroy() };
}

/**
 * A pool for the service that records what it is asked: every `out` it is handed, and whether one was handed
 * while a response that had sent bytes from it was still unfinished (its writes not all taken by the OS) on an
 * open socket (`attach` the service before it listens). `hold(k)` keeps the k-th job (from 0) from the pool until `release()`.
 */
function watchedPool(): {
  pool: Pool;
  attach: (service: Service) => void;
  outs: ArrayBufferLike[];
  results: ArrayBufferLike[];
  violations: string[];
  most: () => number;
  hold: (k: number) => void;
  release: () => void;
} {
  const writers = new Map<ArrayBufferLike, { response: ServerResponse; socket: Socket }[]>();
  const outs: ArrayBufferLike[] = [];
  const results: ArrayBufferLike[] = [];
  const violations: string[] = [];
  let running = 0;
  let most = 0;
  let calls = 0;
  let held = -1;
  let release: () => void = () => undefined;
  const gate = new Promise<void>((resolve) => (release = resolve));
  const attach = (service: Service): void => {
    service.on('request', (_request: IncomingMessage, response: ServerResponse) => {
      const socket = response.socket as Socket;
      const write = response.write;
      response.write = function (this: ServerResponse, chunk: unknown, ...rest: unknown[]): boolean {
        if (chunk instanceof Uint8Array && chunk.buffer instanceof SharedArrayBuffer) {
          const list = writers.get(chunk.buffer) ?? [];
          if (!list.some((entry) => entry.response === response)) list.push({ response, socket });
          writers.set(chunk.buffer, list);
        }
        return (write as (...args: unknown[]) => boolean).call(this, chunk, ...rest);
      } as typeof response.write;
    });
  };
  const watched = {
    async hermitian(expp: ComplexMatrix, distance: Float64Array, options: HermitianOptions = {}) {
      const k = calls++;
      running++;
      most = Math.max(most, running);
      try {
        if (k === held) await gate;
        const out = options.out?.data.buffer;
        if (out !== undefined) {
          outs.push(out);
          for (const { response, socket } of writers.get(out) ?? []) {
            if (!response.writableFinished && !socket.closed) violations.push(`job ${k} was handed an H that an unfinished answer still sends`);
          }
        }
        const h = await pool.hermitian(expp, distance, options);
        results.push(h.data.buffer);
        return h;
      } finally {
        running--;
      }
    },
  };
  return { pool: watched as unknown as Pool, attach, outs, results, violations, most: () => most, hold: (k) => void (held = k), release: () => release() };
}

const assertExact = (answer: { status: number; body: Buffer }, problem: Problem, what: string): Promise<void> =>
  assertExactAnswer(pool, answer, problem, what);

test('a sent H is reused only once its answer is out: stalled readers of every size, clients leaving mid-answer, others of the same shapes meanwhile; every H exact', async () => {
  const watched = watchedPool();
  // Room for a spare of every shape, so that each pair's second client finds the first one's H.
  const service = createService(watched.pool, { writeTimeout: 60_000, idleTimeout: 60_000, reuseOutputBytes: 512 * 2 ** 20 });
  watched.attach(service);
  const stalled: ReturnType<typeof stalledClient>[] = [];
  const serverSockets = new Map<number, Socket>(); // by the client's port
  service.on('connection', (socket: Socket) => serverSockets.set(socket.remotePort ?? -1, socket));
  try {
    const port = await listen(service);
    // H from 0.5 to 8 MiB in steps under one write of the answer (256 KiB): wherever the sockets' buffers end,
    // some answers stop with every byte handed to Node but not yet taken by the OS, others in the middle.
    const sizes = Array.from({ length: 31 }, (_, k) => 1 + Math.round(Math.sqrt(((0.5 + k * 0.25) * 2 ** 20) / 16)));
    const readers = sizes.map((N, k) => ({ N, problem: randomProblem(N, 2, 1000 + k) }));
    for (const { problem } of readers) stalled.push(stalledClient(port, npyBody(problem)));
    // Every stalled answer is computed and being sent: the service holds their memory and no job is left.
    await until(() => watched.results.length === readers.length);
    assert.is(watched.results.length, readers.length, 'every stalled request was computed');
    await sleep(200); // their writes go as far as the sockets take them
    // Others of the same shapes, two each, read at once: the second of a pair may take the first's H; none may
    // take a stalled answer's H. Every fourth stalled client leaves meanwhile, mid-answer.
    for (const [k, { N }] of readers.entries()) {
      if (k % 4 === 3) {
        const theirs = serverSockets.get(stalled[k].socket.localPort ?? -1);
        stalled[k].leave();
        await until(() => theirs?.closed === true); // the service has seen it go
      }
      for (const seed of [0, 1]) {
        const problem = randomProblem(N, 2, 2000 + 2 * k + seed);
        await assertExact(await post(port, npyBody(problem)), problem, `client of N = ${N}, ${seed}`);
      }
    }
    for (const [k, { problem, N }] of readers.entries()) {
      if (k % 4 === 3) continue;
      await assertExact(await stalled[k].read(), problem, `stalled client of N = ${N}`);
    }
    assert.equal(watched.violations, []);
    // At least each pair's second client (a stalled answer that went out whole, or was cut short, leaves a spare too).
    assert.ok(watched.outs.length >= readers.length, `only ${watched.outs.length} jobs were handed a sent H`);
    await until(() => service.stats().requests === 0);
    assert.equal(service.stats(), { requests: 0, heldBytes: 0 });
  } finally {
    for (const client of stalled) client.leave();
    await service.shutdown();
  }
});

test('an answer whose last bytes the OS has not taken yet keeps its H: a request of the same shape meanwhile gets another; both exact', async () => {
  const watched = watchedPool();
  const service = createService(watched.pool);
  watched.attach(service);
  // The first answer's writes after end() are held back, as a socket whose buffers are full holds them, and
  // done on release: whatever its H holds then is what its client gets.
  let held: (() => void) | undefined;
  let first = true;
  service.on('request', (_request: IncomingMessage, response: ServerResponse) => {
    if (!first) return;
    first = false;
    // end() hands the socket its last writes before it marks the response ended.
    let ending = false;
    const end = response.end;
    response.end = function (this: ServerResponse, ...args: unknown[]): ServerResponse {
      ending = true;
      return (end as (...args: unknown[]) => ServerResponse).apply(this, args);
    } as typeof response.end;
    const socket = response.socket as Socket & { _writeGeneric: (...args: unknown[]) => unknown };
    const write = socket._writeGeneric;
    socket._writeGeneric = function (this: Socket, ...args: unknown[]): unknown {
      if (!ending || held !== undefined) return write.apply(this, args);
      held = () => void write.apply(this, args);
      return undefined;
    };
  });
  try {
    const port = await listen(service);
    const slow = randomProblem(300, 2, 5000); // H of 1.4 MiB: several writes, the last one held
    const slowAnswer = post(port, npyBody(slow));
    await until(() => held !== undefined);
    assert.ok(held !== undefined, 'the first answer ended with a write held back');
    // A request that stays open, so that the service keeps spares, then one of the same shape read at once.
    const keep = randomProblem(300, 2, 5001);
    const stalled = stalledClient(port, npyBody(keep));
    try {
      await until(() => watched.results.length === 2);
      const other = randomProblem(300, 2, 5002);
      await assertExact(await post(port, npyBody(other)), other, 'a request of the same shape meanwhile');
      held();
      await assertExact(await slowAnswer, slow, 'the answer whose last write was held');
      // Once out, the answers' H are spares: the next request of the shape gets one.
      const next = randomProblem(300, 2, 5003);
      await assertExact(await post(port, npyBody(next)), next, 'a later request of the same shape');
      assert.ok(watched.outs.length >= 1, 'no H was reused once its answer was out');
      assert.equal(watched.violations, []);
      await assertExact(await stalled.read(), keep, 'the stalled request');
    } finally {
      stalled.leave();
    }
  } finally {
    held?.();
    await service.shutdown();
  }
});

test('with reuseOutputBytes 0 no H is reused; answers exact', async () => {
  const watched = watchedPool();
  const service = createService(watched.pool, { reuseOutputBytes: 0 });
  watched.attach(service);
  const stalled = [] as ReturnType<typeof stalledClient>[];
  try {
    const port = await listen(service);
    const problem = randomProblem(300, 2, 3000);
    stalled.push(stalledClient(port, npyBody(problem))); // keeps a request open, as in a storm
    for (let k = 0; k < 4; k++) {
      const other = randomProblem(300, 2, 3001 + k);
      await assertExact(await post(port, npyBody(other)), other, `client ${k}`);
    }
    await assertExact(await stalled[0].read(), problem, 'stalled client');
    assert.is(watched.outs.length, 0);
  } finally {
    for (const client of stalled) client.leave();
    await service.shutdown();
  }
});

test('jobsAtOnce: no more jobs in the pool at once; a waiting request leaves with its client and times out at jobTimeout; the rest exact', async () => {
  const watched = watchedPool();
  watched.hold(0); // the first job stays out of the pool until released: everything after it waits
  const service = createService(watched.pool, { jobsAtOnce: 1, jobTimeout: 400 });
  watched.attach(service);
  const stalled = [] as ReturnType<typeof stalledClient>[];
  try {
    const port = await listen(service);
    const first = randomProblem(40, 3, 4000);
    const firstAnswer = post(port, npyBody(first));
    await until(() => service.stats().requests === 1 && watched.most() === 1);
    // A request whose client leaves while it waits: the service lets go of it then, not when a job frees up.
    stalled.push(stalledClient(port, npyBody(randomProblem(40, 3, 4001))));
    await until(() => service.stats().requests === 2);
    assert.is(service.stats().requests, 2, 'the second request waits for its job');
    stalled[0].leave();
    await until(() => service.stats().requests === 1);
    assert.is(service.stats().requests, 1, 'a request that waited for its job was held after its client left');
    // A request that waits past jobTimeout: 504, while the first job is still held.
    const late = await post(port, npyBody(randomProblem(40, 3, 4002)));
    assert.is(late.status, 504);
    assert.match(late.body.toString(), /did not start within 400 ms/);
    assert.is(watched.most(), 1);
    watched.release();
    // The first job left the service before its deadline with the time it had left; the pool counts that from the
    // test's release, so the job runs and its answer is exact.
    await assertExact(await firstAnswer, first, 'first request');
    const after = randomProblem(40, 3, 4003);
    await assertExact(await post(port, npyBody(after)), after, 'a request after the waits');
    assert.is(watched.most(), 1, 'more than jobsAtOnce jobs were in the pool at once');
    await until(() => service.stats().requests === 0);
    assert.equal(service.stats(), { requests: 0, heldBytes: 0 });
  } finally {
    watched.release();
    for (const client of stalled) client.leave();
    await service.shutdown();
  }
});

test('jobsAtOnce and reuseOutputBytes are checked', () => {
  for (const bad of [0, -1, 1.5, Number.NaN, '2', null]) {
    assert.throws(() => createService(pool, { jobsAtOnce: bad as number }), (error: Error) => error instanceof RangeError && error.message.includes('jobsAtOnce'), `jobsAtOnce: ${String(bad)}`);
  }
  for (const bad of [-1, Number.NaN, '2', null, -Infinity]) {
    assert.throws(() => createService(pool, { reuseOutputBytes: bad as number }), (error: Error) => error instanceof RangeError && error.message.includes('reuseOutputBytes'), `reuseOutputBytes: ${String(bad)}`);
  }
});

test.run();
