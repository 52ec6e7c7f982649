// The example service keeps its event loop free while it serves 64 MiB: the body is consumed chunk by chunk
// straight into shared memory as it arrives, and H goes out in bounded writes. These tests check that
// behaviour, not how long the loop stalled: stall times depend on the host and are measured by
// `npm run bench:event-loop` instead.
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { request as httpRequest } from 'node:http';
import { connect, type AddressInfo, type Socket } from 'node:net';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { NpyReceiver, createPool, hermitianReference, parseComplexMatrixNpy, type Pool } from 'hpair';
import { assertExactAnswer, npyBody, post, servicePath } from './helpers/service-clients.js';
import { assertBitIdentical, randomProblem, relativeError } from './helpers/support.js';

type Service = Server & { shutdown: () => Promise<void>; stats: () => { requests: number; heldBytes: number } };
type CreateService = (pool: Pool, options?: Record<string, number>) => Service;

const test = suite('service-event-loop');
const MiB = 2 ** 20;
/** The largest piece the main thread may handle at once: far above a socket chunk and the writer's, far below 64 MiB. */
const PIECE = MiB;
let pool: Pool;
let service: Service;
let port = 0;

test.before(async () => {
  const { createService } = (await import(servicePath)) as { createService: CreateService };
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

/**
 * Shows onPush every chunk the service's receivers are fed, with the turn of the event loop it came in (turns are
 * counted at the check phase from `start()` on, 0 before); `stop()` undoes both.
 */
function watchPushes(onPush: (receiver: NpyReceiver<never>, chunk: Uint8Array, turn: number) => void): { start: () => void; stop: () => void; turn: () => number } {
  let turn = 0;
  let ticker: NodeJS.Immediate | undefined;
  const tick = (): void => {
    turn++;
    ticker = setImmediate(tick);
  };
  const original = NpyReceiver.prototype.push;
  NpyReceiver.prototype.push = function (this: NpyReceiver<never>, chunk: Uint8Array): number {
    onPush(this, chunk, turn);
    return original.call(this, chunk);
  };
  return {
    start: tick,
    stop: () => {
      clearImmediate(ticker);
      NpyReceiver.prototype.push = original;
    },
    turn: () => turn,
  };
}

/** Sizes of the chunks the service's receivers were fed, recorded while `work` runs. */
async function pushes<T>(work: () => Promise<T>): Promise<{ sizes: number[]; value: T }> {
  const sizes: number[] = [];
  const watch = watchPushes((_receiver, chunk) => sizes.push(chunk.length));
  try {
    return { sizes, value: await work() };
  } finally {
    watch.stop();
  }
}

/** Sizes of the writes the service made to its answers, recorded while `work` runs. */
async function writes<T>(work: () => Promise<T>): Promise<{ sizes: number[]; value: T }> {
  const sizes: number[] = [];
  // Runs after the service's own 'request' listener, which awaits the body first: every answer write comes later.
  const watch = (_request: IncomingMessage, response: ServerResponse): void => {
    const write = response.write;
    response.write = function (this: ServerResponse, chunk: unknown, ...rest: unknown[]): boolean {
      if (typeof chunk === 'string' || chunk instanceof Uint8Array) sizes.push(chunk.length);
      return (write as (...args: unknown[]) => boolean).call(this, chunk, ...rest);
    } as typeof response.write;
  };
  service.on('request', watch);
  try {
    return { sizes, value: await work() };
  } finally {
    service.off('request', watch);
  }
}

/**
 * POSTs `body` in pieces with backpressure. Halfway it waits until the service holds the request's memory:
 * the arrays were allocated from the headers while the body was still arriving.
 */
function postStreaming(body: Uint8Array): Promise<{ status: number; chunks: Buffer[]; heldMidway: number }> {
  return new Promise((resolve, reject) => {
    let heldMidway = 0;
    const req = httpRequest({ host: '127.0.0.1', port, method: 'POST', path: '/', headers: { 'content-length': body.length } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, chunks, heldMidway }));
    });
    req.on('error', reject);
    void (async () => {
      for (let at = 0; at < body.length; at += PIECE) {
        if (!req.write(body.subarray(at, at + PIECE))) await new Promise((drained) => req.once('drain', drained));
        if (at < body.length / 2 && at + PIECE >= body.length / 2) {
          // Bounded so that a service that waits for the whole body fails here instead of hanging.
          for (let turn = 0; turn < 1000 && service.stats().heldBytes === 0; turn++) await new Promise((next) => setTimeout(next, 10));
          heldMidway = service.stats().heldBytes;
        }
      }
      req.end();
    })().catch(reject);
  });
}

test('a 64 MiB body (N = 256, M = 16384) is consumed in socket-sized chunks into arrays allocated from its header', async () => {
  const problem = randomProblem(256, 16384, 1);
  const body = npyBody(problem);
  assert.ok(body.length > 64 * MiB);
  const { sizes, value: answer } = await pushes(() => postStreaming(body));
  assert.is(answer.status, 200);
  assert.ok(answer.heldMidway >= 64 * MiB, `halfway through the body the service held ${answer.heldMidway} bytes: it had not allocated from expp's header`);
  // The chunk that holds the end of expp is offered to both receivers, so the sum may exceed the body by one chunk.
  assert.ok(sizes.reduce((a, b) => a + b, 0) >= body.length, 'every byte went through the receivers');
  assert.ok(Math.max(...sizes) <= PIECE, `a receiver was fed ${Math.max(...sizes)} bytes at once: the body was buffered`);
  assert.ok(sizes.length >= 64, `only ${sizes.length} chunks for 64 MiB`);
  const h = parseComplexMatrixNpy(new Uint8Array(Buffer.concat(answer.chunks)));
  assertBitIdentical(h.data, (await pool.hermitian(problem.expp, problem.distance)).data, 'H through the service vs the pool');
});

test('a 64 MiB H (N = 2049, M = 64) goes out in bounded writes straight from shared memory', async () => {
  const problem = randomProblem(2049, 64, 2);
  const { sizes, value: answer } = await writes(() => postStreaming(npyBody(problem)));
  assert.is(answer.status, 200);
  const h = parseComplexMatrixNpy(new Uint8Array(Buffer.concat(answer.chunks)));
  assert.is(h.data.byteLength, 64 * MiB);
  assert.ok(relativeError(h, hermitianReference(problem.expp, problem.distance)) < 1e-12);
  assert.ok(sizes.reduce((a, b) => a + b, 0) >= 64 * MiB, 'H went out through response.write');
  assert.ok(Math.max(...sizes) <= PIECE, `one write of ${Math.max(...sizes)} bytes: H was copied whole`);
  assert.ok(sizes.length >= 64, `only ${sizes.length} writes for 64 MiB`);
});

test('uploads that all arrive at once are read in turns: no turn of the event loop takes in much more than readBytesPerTurn', async () => {
  const { createService } = (await import(servicePath)) as { createService: CreateService };
  const budget = 256 * 1024;
  const turns = createService(pool, { readBytesPerTurn: budget });
  await new Promise<void>((resolve) => turns.listen(0, '127.0.0.1', resolve));
  const at = (turns.address() as AddressInfo).port;
  // Bytes the receivers took in each turn of the event loop (a turn ends at its check phase, where this ticks).
  const perTurn = new Map<number, number>();
  const watch = watchPushes((_receiver, chunk, turn) => perTurn.set(turn, (perTurn.get(turn) ?? 0) + chunk.length));
  try {
    // Bodies of 3.3 MiB: Node reads up to 2 MiB from one readable socket in one go, past the bound on its own.
    const clients = 8;
    const problems = Array.from({ length: clients }, (_, k) => randomProblem(400, 512, 100 + k));
    const sockets: Promise<void>[] = [];
    const answers = problems.map((problem) =>
      new Promise<{ status: number; body: Buffer }>((resolve, reject) => {
        const body = npyBody(problem);
        const req = httpRequest({ host: '127.0.0.1', port: at, method: 'POST', path: '/', agent: false, headers: { 'content-length': body.length } }, (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (chunk: Buffer) => chunks.push(chunk));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
        });
        req.on('error', reject);
        sockets.push(new Promise((connected) => req.on('socket', (socket) => socket.once('connect', () => connected()))));
        req.end(body);
      }),
    );
    await Promise.all(sockets);
    await new Promise((resolve) => setImmediate(resolve)); // the connected sockets write what the OS takes
    // Nothing runs while every upload's bytes pile up in the sockets: the next turn finds them all readable at once.
    const until = performance.now() + 100;
    while (performance.now() < until);
    watch.start();
    const results = await Promise.all(answers);
    watch.stop();
    const most = Math.max(...perTurn.values());
    // A turn's poll phase and its check phase (where waiting uploads resume) each take the budget and may pass it
    // by a socket chunk (64 KiB); the chunk that ends expp is offered to both receivers and counted twice.
    const bound = 2 * budget + 4 * 64 * 1024;
    assert.ok(most <= bound, `one turn took in ${most} bytes of bodies; readBytesPerTurn = ${budget} allows ${bound}`);
    for (const [k, { status, body }] of results.entries()) {
      assert.is(status, 200, `client ${k}`);
      assertBitIdentical(parseComplexMatrixNpy(new Uint8Array(body)).data, (await pool.hermitian(problems[k].expp, problems[k].distance)).data, `client ${k}: H through the service vs the pool`);
    }
  } finally {
    watch.stop();
    await turns.shutdown();
  }
});

/**
 * Opens a connection per body and waits until the service has accepted them all (Node accepts one connection per
 * turn), then sends every body at once and holds this thread for a while, so that all of them are in the
 * service's sockets before its next turn, as when a storm's clients send together. Returns the answers, and per turn of the event loop (counted at the
 * check phase) how many requests the service started: a request's expp receiver is fed for the first time in the
 * turn its handler ran (readBytesPerTurn is left large enough that no first chunk waits for bytes); and how many
 * requests Node parsed (the server's 'request' event comes as soon as a request's headers are parsed).
 */
async function storm(service: Service, bodies: Buffer[], leaveAfterSending = new Set<number>()): Promise<{ answers: ({ status: number; body: Buffer } | undefined)[]; started: number[]; parsed: number[] }> {
  const startedIn = new Map<number, number>();
  const parsedIn = new Map<number, number>();
  const fed = new WeakSet<object>();
  const watch = watchPushes((receiver, _chunk, turn) => {
    // A request's first chunk goes to its expp receiver: one first push of a complex-matrix receiver per request.
    if (receiver.target === 'complex-matrix' && !fed.has(receiver)) {
      fed.add(receiver);
      startedIn.set(turn, (startedIn.get(turn) ?? 0) + 1);
    }
  });
  let accepted = 0;
  const onConnection = (): number => accepted++;
  const onRequest = (): void => void parsedIn.set(watch.turn(), (parsedIn.get(watch.turn()) ?? 0) + 1);
  service.on('connection', onConnection);
  service.on('request', onRequest);
  try {
    const at = (service.address() as AddressInfo).port;
    const sockets = await Promise.all(bodies.map(() => new Promise<Socket>((connected, failed) => {
      const socket = connect(at, '127.0.0.1', () => connected(socket));
      socket.once('error', failed);
    })));
    // Bounded for liveness only.
    for (let wait = 0; wait < 1000 && accepted < bodies.length; wait++) await new Promise((next) => setTimeout(next, 5));
    assert.is(accepted, bodies.length, 'the service accepted every connection');
    const answers = bodies.map(
      (body, k) =>
        new Promise<{ status: number; body: Buffer } | undefined>((resolve, reject) => {
          const options = { method: 'POST', path: '/', headers: { 'content-length': body.length }, createConnection: () => sockets[k] };
          const req = httpRequest(options, (res) => {
            const chunks: Buffer[] = [];
            res.on('data', (chunk: Buffer) => chunks.push(chunk));
            res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
          });
          req.on('error', (error) => (leaveAfterSending.has(k) ? resolve(undefined) : reject(error)));
          req.end(body, () => {
            if (leaveAfterSending.has(k)) req.destroy(); // its request is parsed, then its client is gone
          });
        }),
    );
    await new Promise((resolve) => setImmediate(resolve)); // the sockets write what the OS takes
    const until = performance.now() + 150;
    while (performance.now() < until);
    watch.start();
    const results = await Promise.all(answers);
    return { answers: results, started: [...startedIn.values()], parsed: [...parsedIn.values()] };
  } finally {
    service.off('connection', onConnection);
    service.off('request', onRequest);
    watch.stop();
  }
}

/**
 * A storm of 40 requests against a service bounded to 4 per turn by `options(4)` and against one unbounded
 * (`options(Infinity)`): `count` picks the per-turn counts the bound is about (requests started, or parsed). Unbounded,
 * some turn must exceed 2 · 4, or the storm did not arrive at once and the bounded case would prove nothing; bounded,
 * no turn may exceed 2 · 4 (a turn's poll phase admits what is left of the bound and its check phase a whole bound
 * more), and every request is counted once (unbounded too, when `countedOnceUnbounded`). Every answer is the pool's
 * H, bit for bit.
 */
async function stormInTurns(what: string, seed: number, options: (bound: number) => Record<string, number>, count: (outcome: Awaited<ReturnType<typeof storm>>) => number[], countedOnceUnbounded: boolean): Promise<void> {
  const { createService } = (await import(servicePath)) as { createService: CreateService };
  const problems = Array.from({ length: 40 }, (_, k) => randomProblem(12, 3, seed + k));
  const bodies = problems.map((problem) => npyBody(problem));
  for (const bound of [4, Infinity]) {
    const turns = createService(pool, options(bound));
    try {
      await new Promise<void>((resolve) => turns.listen(0, '127.0.0.1', resolve));
      const outcome = await storm(turns, bodies);
      const counts = count(outcome);
      const most = Math.max(...counts);
      if (bound === Infinity) {
        assert.ok(most > 2 * 4, `with no bound at most ${most} requests were ${what} in one turn: the storm did not arrive at once`);
      } else {
        assert.ok(most <= 2 * bound, `one turn ${what} ${most} requests; a bound of ${bound} allows ${2 * bound}`);
      }
      if (bound !== Infinity || countedOnceUnbounded) assert.is(counts.reduce((x, y) => x + y, 0), bodies.length, `every request was ${what} once`);
      for (const [k, answer] of outcome.answers.entries()) await assertExactAnswer(pool, answer, problems[k], `client ${k}`);
    } finally {
      await turns.shutdown();
    }
  }
}

test('requests that all arrive at once are handled in turns: no turn starts many more than newRequestsPerTurn; every H exact', async () => {
  await stormInTurns('started', 200, (bound) => ({ newRequestsPerTurn: bound }), ({ started }) => started, false);
});

test('clients that leave while their requests wait for a turn hold nothing, and the others are answered exactly', async () => {
  const { createService } = (await import(servicePath)) as { createService: CreateService };
  const turns = createService(pool, { newRequestsPerTurn: 1 });
  try {
    await new Promise<void>((resolve) => turns.listen(0, '127.0.0.1', resolve));
    const problems = Array.from({ length: 12 }, (_, k) => randomProblem(12, 3, 300 + k));
    const leaving = new Set([3, 6, 9, 10, 11]);
    const { answers } = await storm(turns, problems.map((problem) => npyBody(problem)), leaving);
    for (const [k, answer] of answers.entries()) if (!leaving.has(k)) await assertExactAnswer(pool, answer, problems[k], `client ${k}`);
    // Bounded for liveness only: the service lets go of each request when its socket closes.
    for (let wait = 0; wait < 200 && turns.stats().requests > 0; wait++) await new Promise((next) => setTimeout(next, 10));
    assert.equal(turns.stats(), { requests: 0, heldBytes: 0 });
  } finally {
    await turns.shutdown();
  }
});

test('connections whose requests all arrive at once are read in turns: no turn parses many more than newConnectionsAtOnce; every H exact', async () => {
  // No bound on handlers: what is counted is Node's own reading and parsing. The storm's sender holds the thread past
  // the time a silent connection keeps its place, so the first turn may also read the connections that took over
  // the places of the first ones.
  await stormInTurns('parsed', 400, (bound) => ({ newConnectionsAtOnce: bound, newRequestsPerTurn: Infinity }), ({ parsed }) => parsed, true);
});

test('connections that send nothing do not hold back the ones after them; clients that leave unread hold nothing', async () => {
  const { createService } = (await import(servicePath)) as { createService: CreateService };
  const turns = createService(pool, { newConnectionsAtOnce: 2, headersTimeout: 60_000 });
  const silent: Socket[] = [];
  try {
    await new Promise<void>((resolve) => turns.listen(0, '127.0.0.1', resolve));
    const at = (turns.address() as AddressInfo).port;
    // Two connections take every place and never send a byte; a third waits behind them and leaves unread.
    for (let k = 0; k < 3; k++) {
      const socket = connect(at, '127.0.0.1');
      socket.on('error', () => undefined);
      silent.push(socket);
      await new Promise((connected) => socket.once('connect', connected));
    }
    silent[2].destroy();
    const problems = Array.from({ length: 5 }, (_, k) => randomProblem(12, 3, 500 + k));
    const answers = await Promise.all(problems.map((problem) => post(at, npyBody(problem))));
    for (const [k, answer] of answers.entries()) await assertExactAnswer(pool, answer, problems[k], `client ${k}`);
    for (const socket of silent) socket.destroy();
    // Bounded for liveness only.
    for (let wait = 0; wait < 200 && turns.stats().requests > 0; wait++) await new Promise((next) => setTimeout(next, 10));
    assert.equal(turns.stats(), { requests: 0, heldBytes: 0 });
  } finally {
    for (const socket of silent) socket.destroy();
    await turns.shutdown();
  }
});

test('newRequestsPerTurn and newConnectionsAtOnce are checked: an integer from 1, or Infinity', async () => {
  const { createService } = (await import(servicePath)) as { createService: CreateService };
  for (const name of ['newRequestsPerTurn', 'newConnectionsAtOnce']) {
    for (const bad of [0, -1, 1.5, Number.NaN, '3', null]) {
      assert.throws(() => createService(pool, { [name]: bad as number }), (error: Error) => error instanceof RangeError && error.message.includes(name), `${name}: ${String(bad)}`);
    }
  }
});

test.run();
