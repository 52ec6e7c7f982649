// A service that keeps one pool and answers POST / with H as .npy. The body is two .npy files back to
// back: expp (complex N×M), then distance (real, length M). Run: node examples/service.mjs [port]
import { createServer } from 'node:http';
import { createPool, encodeComplexMatrixNpy, npyFileLength, parseComplexMatrixNpy, parseFloat64VectorNpy } from 'hpair';

const STATUS = { ABORTED: 499, QUEUE_FULL: 503, TOO_LARGE: 413, TIMEOUT: 504, WORKER_CRASHED: 500, POOL_CLOSED: 503 };

export function createService(pool, { maxBodyBytes = 512 * 2 ** 20 } = {}) {
  return createServer(async (request, response) => {
    const cancel = new AbortController();
    response.on('close', () => cancel.abort()); // the client went away: stop its job
    try {
      if (request.method !== 'POST') throw Object.assign(new Error('POST two .npy files: expp, then distance'), { status: 405 });
      const chunks = [];
      let size = 0;
      for await (const chunk of request) {
        size += chunk.length;
        if (size > maxBodyBytes) throw Object.assign(new Error('body too large'), { status: 413 });
        chunks.push(chunk);
      }
      const body = new Uint8Array(Buffer.concat(chunks));
      const split = npyFileLength(body);
      const expp = parseComplexMatrixNpy(body.subarray(0, split));
      const distance = parseFloat64VectorNpy(body.subarray(split));
      const h = await pool.hermitian(expp, distance, { signal: cancel.signal, timeoutMs: 60_000 });
      response.writeHead(200, { 'content-type': 'application/octet-stream' }).end(encodeComplexMatrixNpy(h));
    } catch (error) {
      const status = error.status ?? STATUS[error.code] ?? (error.name === 'HpairError' ? 400 : 500);
      if (!response.headersSent && !cancel.signal.aborted) response.writeHead(status, { 'content-type': 'text/plain' }).end(`${error.message}\n`);
    }
  });
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const pool = createPool();
  const server = createService(pool).listen(Number(process.argv[2] ?? 8080), '127.0.0.1');
  process.once('SIGINT', () => server.close(() => pool.close()));
}
