// A service that keeps one pool and answers POST / with H as .npy. The body is two .npy files back to
// back: expp (complex N×M), then distance (real, length M). Bodies stream straight into shared memory and H
// streams out of it; every wait on a client is bounded. Run: node examples/service.mjs [port] [options as JSON]
import { createServer } from 'node:http';
import { NpyReceiver, complexMatrixNpyLength, createPool, writeComplexMatrixNpy } from 'hpair';

const STATUS = { ABORTED: 499, QUEUE_FULL: 503, TOO_LARGE: 413, TIMEOUT: 504, WORKER_CRASHED: 500, WORKER_UNRESPONSIVE: 500, POOL_CLOSED: 503 };
const MiB = 2 ** 20;
/** After an answer sent before the body was read, unread bytes are discarded this long, then the socket is closed. */
const LINGER_MS = 1000;
/** A new connection that has sent no request's headers this long stops holding back the connections after it. */
const STARTING_MS = 100;

/** createService's options and their defaults; times are in milliseconds. */
export const DEFAULTS = {
  maxBodyBytes: 512 * MiB, // a larger Content-Length gets 413 before any byte is read; chunked bodies stop at it
  maxOutputBytes: undefined, // H is 16·(N−1)² bytes: a larger N gets 413 from expp's header (undefined: maxBodyBytes)
  maxOutputRatio: 1024, // nor may H be larger than this many times the body (or 1 MiB): a tiny body gets a small H
  maxMemoryBytes: undefined, // inputs and H of every open request together; past it 503 (undefined: 2·(body + output))
  headersTimeout: 10_000, // until the request's headers are in (408)
  requestTimeout: 120_000, // until the whole body is in (408)
  idleTimeout: 15_000, // no byte in either direction while receiving or sending: the socket is destroyed
  writeTimeout: 15_000, // the answer's writes blocked (a client that does not read): the socket is destroyed
  jobTimeout: 60_000, // H's computation (504)
  keepAliveTimeout: 5_000, // an idle keep-alive connection
  shutdownTimeout: 5_000, // after shutdown() begins, connections still open are destroyed
  readBytesPerTurn: MiB, // body bytes all uploads together take in per turn of the event loop; the rest wait a turn
  newRequestsPerTurn: 32, // requests whose handling starts per turn of the event loop; the rest wait, paused, in order
  newConnectionsAtOnce: 16, // new connections read until their first request's headers are in; the rest wait, unread, in order
  jobsAtOnce: 2, // jobs handed to the pool at once; requests whose bodies are in wait for theirs in arrival order
  reuseOutputBytes: 64 * MiB, // bytes of sent H buffers kept for the next requests of the same N while others are open; 0: none
};

const httpError = (status, message) => Object.assign(new Error(message), { status });
/** Why a request's job is stopped when its client leaves: one error for all, as nobody reads it. */
const CLIENT_GONE = httpError(499, 'the client went away');

export function createService(pool, options = {}) {
  const o = { ...DEFAULTS, ...options };
  for (const name of ['newRequestsPerTurn', 'newConnectionsAtOnce', 'jobsAtOnce']) {
    if (!(Number.isInteger(o[name]) || o[name] === Infinity) || o[name] < 1) throw new RangeError(`${name} must be an integer from 1, or Infinity; got ${o[name]}`);
  }
  if (typeof o.reuseOutputBytes !== 'number' || !(o.reuseOutputBytes >= 0)) {
    throw new RangeError(`reuseOutputBytes must be a number of bytes from 0, or Infinity; got ${o.reuseOutputBytes}`);
  }
  const maxOutputBytes = o.maxOutputBytes ?? o.maxBodyBytes;
  const maxMemoryBytes = o.maxMemoryBytes ?? 2 * (o.maxBodyBytes + maxOutputBytes);
  const checkEvery = Math.max(10, Math.min(1000, Math.floor(Math.min(o.headersTimeout || Infinity, o.requestTimeout || Infinity) / 4)));
  const server = createServer({
    headersTimeout: o.headersTimeout,
    requestTimeout: o.requestTimeout,
    keepAliveTimeout: o.keepAliveTimeout,
    connectionsCheckingInterval: checkEvery, // how often Node checks the two timeouts above (default 30 s)
  });
  server.timeout = o.idleTimeout; // Node's socket inactivity timeout: destroys the socket
  const open = new Set(); // requests being read, computed or answered
  let held = 0; // bytes reserved by open requests
  let closing;
  // Node reads every socket that has data in one turn of the event loop, many chunks each: a storm of uploads
  // would all be copied into their arrays in one turn, and no timer or answer would run until the last byte was
  // in. So uploads share readBytesPerTurn; one that finds it spent waits, its socket paused (Node then stops
  // reading it), and resumes in arrival order from the next turn, when the budget is whole again.
  // Before any body byte, a request costs Node's parsing and this file's handler; a storm's requests all arrive
  // at once, and Node parses every one that is in within one turn. Node's part cannot wait, but the handler's
  // can: only newRequestsPerTurn requests are handled per turn, and the others wait, paused, in arrival order.
  const turn = { left: o.readBytesPerTurn, requests: o.newRequestsPerTurn, waiting: [], arrived: [], refill: undefined };
  const refill = () => {
    turn.refill = undefined;
    turn.left = o.readBytesPerTurn;
    turn.requests = o.newRequestsPerTurn;
    while (turn.requests > 0 && turn.arrived.length > 0) {
      turn.requests--;
      turn.arrived.shift()();
    }
    // At least one upload a turn, whatever the budget, so that none waits for ever.
    if (turn.waiting.length > 0) {
      do turn.waiting.shift()();
      while (turn.left > 0 && turn.waiting.length > 0);
    }
    if (turn.waiting.length > 0 || turn.arrived.length > 0) turn.refill = setImmediate(refill);
  };
  const waitForTurn = (resume) => {
    turn.waiting.push(resume);
    turn.refill ??= setImmediate(refill);
  };

  // Every H is a new shared buffer, and the pool reports each to V8 so that dropped ones are collected promptly:
  // a storm of requests drove V8 through one full collection after another. So an H whose answer has
  // been sent is kept (up to reuseOutputBytes) and handed to the pool as `out` for the next request of the same
  // N. Only once no byte of it can still be read: the job succeeded (a failed job's workers may still be writing
  // it), and its response finished (every write handed to the OS) or its socket closed (pending writes dropped).
  // Spares are let go as soon as no request is open, so an idle service holds none.
  const spares = new Map(); // rows of H → sent H buffers of that shape
  let spareBytes = 0;
  const takeSpare = (rows) => {
    const list = spares.get(rows);
    const h = list?.pop();
    if (h === undefined) return undefined;
    if (list.length === 0) spares.delete(rows);
    spareBytes -= h.data.byteLength;
    return h;
  };
  const keepSpare = (h) => {
    if (open.size === 0 || closing !== undefined || spareBytes + h.data.byteLength > o.reuseOutputBytes) return;
    spareBytes += h.data.byteLength;
    const list = spares.get(h.rows);
    if (list === undefined) spares.set(h.rows, [h]);
    else list.push(h);
  };
  const dropSpares = () => {
    spares.clear();
    spareBytes = 0;
  };
  /** Once `response` closed: keeps `h` when none of its bytes can still be read for the client. */
  const recycle = (h, response, socket) => {
    if (response.writableFinished || socket.closed) return keepSpare(h);
    socket.once('close', () => keepSpare(h));
  };

  // The pool runs one job at a time and queues the rest; a storm's requests all had their jobs queued there, and
  // an H can be handed to the pool only with its job. So the service hands the pool jobsAtOnce jobs (one
  // running, one ready to start) and keeps the other requests in its own queue, where a spare H is still free
  // for whichever job starts next. A request waiting there still leaves with its client, shuts down with the
  // service, and times out at jobTimeout from the end of its body, as in the pool's queue.
  const jobs = { running: 0, queue: [] };
  const nextJob = () => {
    while (jobs.running < o.jobsAtOnce && jobs.queue.length > 0) {
      const waiter = jobs.queue.shift();
      if (waiter.settled) continue;
      jobs.running++;
      waiter.settle();
    }
  };
  const jobDone = () => {
    jobs.running--;
    nextJob();
  };
  /** Resolves when `job` may go to the pool; rejects if its client leaves, the service shuts down or `deadline` passes. */
  const jobTurn = (job, deadline) => {
    if (job.cancel.signal.aborted) return Promise.reject(job.cancel.signal.reason ?? CLIENT_GONE);
    if (jobs.running < o.jobsAtOnce && jobs.queue.length === 0) {
      jobs.running++;
      return undefined;
    }
    return new Promise((resolve, reject) => {
      const waiter = { settled: false, settle: undefined };
      const signal = job.cancel.signal;
      const onAbort = () => waiter.settle(signal.reason ?? CLIENT_GONE);
      const expire = () => waiter.settle(httpError(504, `the job did not start within ${o.jobTimeout} ms`));
      // Node's timers hold at most 2^31 − 1 ms; the pool refuses a longer timeoutMs anyway.
      const timer = deadline === Infinity ? undefined : setTimeout(expire, Math.min(2 ** 31 - 1, deadline - performance.now()));
      waiter.settle = (error) => {
        waiter.settled = true;
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
        if (error === undefined) resolve();
        else reject(error);
      };
      signal.addEventListener('abort', onAbort);
      jobs.queue.push(waiter);
    });
  };

  /** Reserves memory for a request before it is allocated: 413 if it can never fit, 503 if not now. */
  function reserve(job, bytes) {
    if (job.closed) throw CLIENT_GONE;
    if (job.held + bytes > maxMemoryBytes) throw httpError(413, `the request needs ${job.held + bytes} bytes; at most ${maxMemoryBytes}`);
    if (held + bytes > maxMemoryBytes) throw httpError(503, 'the service is busy with other requests; try again');
    held += bytes;
    job.held += bytes;
  }

  async function handle(request, response) {
    const job = { phase: 'receive', cancel: new AbortController(), held: 0, output: undefined };
    open.add(job);
    const socket = request.socket;
    response.on('close', () => {
      if (job.phase !== 'sent') job.cancel.abort(CLIENT_GONE); // the client went away: stop its job
      job.closed = true;
      open.delete(job);
      held -= job.held;
      if (job.output !== undefined) recycle(job.output, response, socket);
      if (open.size === 0) dropSpares();
      if (closing !== undefined) setImmediate(() => server.closeIdleConnections());
    });
    try {
      if (closing !== undefined) throw httpError(503, 'the service is shutting down');
      if (request.method !== 'POST') throw httpError(405, 'POST two .npy files: expp, then distance');
      const declared = request.headers['content-length'] === undefined ? undefined : Number(request.headers['content-length']);
      if (declared > o.maxBodyBytes) throw httpError(413, `a body of ${declared} bytes; at most ${o.maxBodyBytes}`);
      if (/100-continue/i.test(request.headers.expect ?? '')) response.writeContinue();
      const { expp, distance } = await receive(request, declared, job);
      job.phase = 'compute';
      request.socket.setTimeout(0); // the connection is quiet while H is computed: not idle
      const deadline = o.jobTimeout === undefined ? Infinity : performance.now() + o.jobTimeout;
      await jobTurn(job, deadline);
      let h;
      try {
        const out = takeSpare(expp.rows - 1);
        const timeoutMs = deadline === Infinity ? undefined : Math.max(0, Math.floor(deadline - performance.now()));
        const options = { signal: job.cancel.signal, timeoutMs };
        h = await pool.hermitian(expp, distance, out === undefined ? options : { ...options, out });
      } finally {
        jobDone();
      }
      job.output = h; // the job succeeded: no worker writes it any more
      job.phase = 'send';
      request.socket.setTimeout(o.idleTimeout);
      response.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': complexMatrixNpyLength(h) });
      await writeComplexMatrixNpy(response, h, { drainTimeoutMs: o.writeTimeout, signal: job.cancel.signal });
      response.end();
      job.phase = 'sent';
    } catch (failure) {
      if (response.headersSent || response.destroyed) return void response.destroy(); // cut an answer short
      const error = job.cancel.signal.reason?.status === undefined ? failure : job.cancel.signal.reason; // shutdown
      const status = error.status ?? STATUS[error.code] ?? (error.name === 'HpairError' ? 400 : 500);
      const headers = { 'content-type': 'text/plain' };
      if (!request.complete || closing !== undefined) headers.connection = 'close';
      if (status === 503) headers['retry-after'] = '1';
      response.writeHead(status, headers).end(`${error.message}\n`);
      // Bytes of the body still on their way are discarded a short while, then the socket closes.
      if (!request.complete) response.once('finish', () => setTimeout(() => request.socket.destroy(), LINGER_MS).unref());
    }
  }

  /**
   * Reads the body into two NpyReceivers as it arrives. Each header is checked before anything is allocated:
   * the sizes it declares against Content-Length (or maxBodyBytes), H's size against maxOutputBytes, and
   * what the request would hold against maxMemoryBytes.
   */
  function receive(request, declared, job) {
    const limit = declared ?? o.maxBodyBytes;
    const tooLong = (what, bytes) =>
      declared === undefined
        ? httpError(413, `${what} declares ${bytes} bytes; the body may have at most ${o.maxBodyBytes}`)
        : httpError(400, `${what} declares ${bytes} bytes but Content-Length is ${declared}`);
    const expp = new NpyReceiver('complex-matrix', {
      beforeAllocate: ({ shape: [N, M] }, bytes) => {
        // The rest of the body must still hold distance: at least a 10-byte prefix and M float32 values.
        const body = bytes + 10 + 4 * M;
        if (body > limit) throw tooLong('expp with distance', body);
        const output = 16 * Math.max(0, N - 1) ** 2;
        if (output > maxOutputBytes) throw httpError(413, `expp has N = ${N}: H would take ${output} bytes; at most ${maxOutputBytes}`);
        if (output > Math.max(MiB, o.maxOutputRatio * body)) {
          throw httpError(413, `expp is ${N}×${M}: H would take ${output} bytes, over ${o.maxOutputRatio} times the ${body}-byte body`);
        }
        reserve(job, bytes + output);
      },
    });
    const distance = new NpyReceiver('float64-vector', {
      beforeAllocate: ({ shape: [length] }, bytes) => {
        const M = expp.header.shape[1];
        if (length !== M) throw httpError(400, `distance has length ${length} but expp has M = ${M} columns`);
        if (expp.fileBytes + bytes > limit) throw tooLong('expp and distance', expp.fileBytes + bytes);
        reserve(job, bytes);
      },
    });
    return new Promise((resolve, reject) => {
      let settled = false;
      let parked; // a chunk that arrived after this turn's budget was spent, taken at this upload's next turn
      let paused = false;
      let ended = false; // the body ended while a chunk was parked
      const settle = (error) => {
        if (settled) return;
        settled = true;
        request.off('data', onData).off('end', onEnd).off('error', settle).off('close', onClose);
        job.cancel.signal.removeEventListener('abort', onAbort);
        parked = undefined;
        if (paused) request.resume(); // unread bytes are discarded, as when it never paused
        if (error !== undefined) return void reject(error);
        try {
          const matrix = expp.result(); // BAD_NPY if the body ended before expp did
          if (distance.receivedBytes === 0) throw httpError(400, 'the body ends before distance');
          resolve({ expp: matrix, distance: distance.result() });
        } catch (truncated) {
          reject(truncated);
        }
      };
      const onData = (chunk) => {
        if (turn.left <= 0) {
          request.pause();
          paused = true;
          parked = chunk;
          return void waitForTurn(() => {
            if (settled) return;
            const next = parked;
            parked = undefined;
            take(next);
            if (settled) return;
            if (ended) return void settle();
            paused = false;
            request.resume();
          });
        }
        take(chunk);
      };
      const take = (chunk) => {
        turn.left -= chunk.length;
        try {
          const rest = chunk.subarray(expp.done ? 0 : expp.push(chunk));
          if (rest.length > 0 && distance.push(rest) < rest.length) throw httpError(400, 'bytes after distance');
          if (expp.receivedBytes + distance.receivedBytes > limit) throw httpError(413, `the body is over ${limit} bytes`);
        } catch (error) {
          settle(error);
        }
      };
      const onEnd = () => (parked === undefined ? settle() : (ended = true));
      // After 'end' the request closes by itself; a client that leaves then is heard by onAbort (the response closes).
      const onClose = () => (ended ? undefined : settle(CLIENT_GONE));
      const onAbort = () => settle(job.cancel.signal.reason ?? httpError(499, 'aborted'));
      request.on('data', onData).on('end', onEnd).on('error', settle).on('close', onClose);
      job.cancel.signal.addEventListener('abort', onAbort);
    });
  }

  /**
   * Stops accepting, answers 503 to uploads and jobs still running (the jobs are aborted), lets answers being
   * sent finish, closes idle keep-alive connections, and after shutdownTimeout destroys whatever is still open.
   * Resolves once every connection is closed. The pool is the caller's to close.
   */
  function shutdown() {
    closing ??= new Promise((resolve) => {
      const force = setTimeout(() => server.closeAllConnections(), o.shutdownTimeout);
      server.close(() => {
        clearTimeout(force);
        resolve();
      }); // also closes idle keep-alive connections
      for (const job of open) if (job.phase !== 'send') job.cancel.abort(httpError(503, 'the service is shutting down'));
    });
    return closing;
  }

  const admit = (request, response) => {
    started(request.socket);
    turn.refill ??= setImmediate(refill); // the count is per turn: the next turn starts it afresh
    if (turn.requests > 0 && turn.arrived.length === 0) {
      turn.requests--;
      return void handle(request, response);
    }
    request.pause();
    let gone = false; // the client left while its request waited: nothing to answer, nothing to hold
    const leave = () => (gone = true);
    response.once('close', leave);
    turn.arrived.push(() => {
      response.off('close', leave);
      if (gone) return;
      handle(request, response);
      request.resume(); // a 'data' listener does not restart a stream paused by hand
    });
  };
  // Even before the handler, Node reads and parses whatever a connection sent as soon as its socket is
  // readable: a storm's clients connect, send, and one turn found most of their sockets readable and parsed every
  // request in them. So new connections are accepted unread, and at most newConnectionsAtOnce are read before
  // their first request's headers are in; the others wait, nothing of theirs read, in arrival order. A
  // connection that sends nothing gives its place up after STARTING_MS and is read as any other.
  const starting = new Map(); // connection → the timer that ends its place among the newConnectionsAtOnce
  const connecting = []; // connections waiting for a place, in arrival order
  const started = (socket) => {
    const timer = starting.get(socket);
    if (timer === undefined) return;
    clearTimeout(timer);
    starting.delete(socket);
    while (starting.size < o.newConnectionsAtOnce && connecting.length > 0) start(connecting.shift());
  };
  function onStartingClose() {
    started(this);
  }
  const start = (socket) => {
    if (socket.destroyed) return;
    starting.set(socket, setTimeout(started, STARTING_MS, socket).unref());
    socket.once('close', onStartingClose);
    socket.resume();
  };
  server.pauseOnConnect = true; // net.Server reads it for each connection it accepts
  server.on('connection', (socket) => (starting.size < o.newConnectionsAtOnce && connecting.length === 0 ? start(socket) : connecting.push(socket)));
  server.on('request', admit);
  server.on('checkContinue', admit); // Expect: 100-continue is answered only after Content-Length is checked
  const stats = () => ({ requests: open.size, heldBytes: held });
  return Object.assign(server, { shutdown, stats });
}

if (import.meta.url === `file://${process.argv[1]}`) {
  // argv: port, then service options as JSON; a `kernel` there is the pool's (tests slow a job down with 'js').
  const { kernel, ...options } = JSON.parse(process.argv[3] ?? '{}');
  const pool = createPool(kernel === undefined ? {} : { kernel });
  const service = createService(pool, options);
  service.listen(Number(process.argv[2] ?? 8080), '127.0.0.1', () => console.log(`listening on http://127.0.0.1:${service.address().port}`));
  const stop = async () => {
    process.off('SIGINT', stop).off('SIGTERM', stop); // a second signal ends the process at once
    // A safety net only: shutdown() and pool.close() end every connection and worker well before it.
    setTimeout(() => process.exit(1), (options.shutdownTimeout ?? DEFAULTS.shutdownTimeout) + 5000).unref();
    await service.shutdown();
    await pool.close({ abort: true });
  };
  process.once('SIGINT', stop).once('SIGTERM', stop);
}
