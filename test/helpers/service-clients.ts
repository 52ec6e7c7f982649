// Clients for the example service's tests: well-behaved ones over node:http, hostile ones over raw sockets
// (slow readers, stalled or trickling uploads, lying headers), and a child process running the service.
import { spawn, type ChildProcess } from 'node:child_process';
import { track } from './children.js';
import { readFileSync } from 'node:fs';
import { request as httpRequest, type Agent } from 'node:http';
import { connect, type Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import * as assert from 'uvu/assert';
import { encodeComplexMatrixNpy, encodeFloat64VectorNpy, parseComplexMatrixNpy, type ComplexMatrix, type Pool } from 'hpair';
import { assertBitIdentical, npyBytes } from './support.js';

export const servicePath = fileURLToPath(new URL('../../examples/service.mjs', import.meta.url));
export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

export const npyBody = ({ expp, distance }: { expp: ComplexMatrix; distance: Float64Array }): Buffer =>
  Buffer.concat([encodeComplexMatrixNpy(expp), encodeFloat64VectorNpy(distance)]);

/** A body of a few hundred bytes whose expp header declares N×M (with no data when M = 0) and a distance of M ones. */
export function tinyBody(N: number, M: number): Buffer {
  const expp = npyBytes(`{'descr': '<c16', 'fortran_order': False, 'shape': (${N}, ${M}), }`, new Uint8Array(16 * N * M));
  return Buffer.concat([expp, encodeFloat64VectorNpy(new Float64Array(M).fill(1))]);
}

export interface Answer {
  status: number;
  body: Buffer;
  headers: Record<string, string | string[] | undefined>;
}

/** POST over node:http (Content-Length set, or chunked when `chunked`), the whole answer read. */
export function post(port: number, body: Uint8Array | undefined, options: { method?: string; chunked?: boolean; agent?: Agent; headers?: Record<string, string> } = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, method: options.method ?? 'POST', path: '/', agent: options.agent, headers: options.headers, timeout: 30_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks), headers: res.headers }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.on('timeout', () => req.destroy(new Error('client timeout')));
    if (options.chunked === true && body !== undefined) {
      // Two writes before end(): node:http sends Transfer-Encoding: chunked.
      const half = Math.floor(body.length / 2);
      req.write(body.subarray(0, half));
      req.end(body.subarray(half));
    } else {
      req.end(body);
    }
  });
}

export interface RawResult {
  /** 0 if no status line arrived. */
  status: number;
  /** Everything the server sent. */
  text: string;
  bytes: number;
  /** Milliseconds from connecting until the first byte of the answer arrived (undefined if none did). */
  firstByteMs: number | undefined;
  /** Milliseconds from connecting until the server closed (or reset) the connection. */
  closedMs: number;
}

/**
 * A raw HTTP/1.1 exchange: writes `head` (request line and headers; Host and the blank line are added unless
 * `endHeaders` is false), then `body`
 * pieces with `gapMs` between them (a trickle), then waits, reading, until the server closes the socket or
 * `giveUpMs` passes (then it is destroyed and closedMs is Infinity).
 */
export function raw(port: number, head: string, options: { body?: Uint8Array[]; gapMs?: number; giveUpMs?: number; endHeaders?: boolean } = {}): Promise<RawResult> {
  return new Promise((resolve) => {
    const started = performance.now();
    const socket = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    let firstByteMs: number | undefined;
    let done = false;
    const finish = (closedMs: number): void => {
      if (done) return;
      done = true;
      clearTimeout(giveUp);
      socket.destroy();
      const text = Buffer.concat(chunks).toString('latin1');
      const status = /^HTTP\/1\.1 (\d{3})/.exec(text);
      resolve({ status: status === null ? 0 : Number(status[1]), text, bytes: text.length, firstByteMs, closedMs });
    };
    const giveUp = setTimeout(() => finish(Infinity), options.giveUpMs ?? 10_000);
    socket.on('data', (chunk: Buffer) => {
      firstByteMs ??= performance.now() - started;
      chunks.push(chunk);
    });
    socket.on('error', () => finish(performance.now() - started));
    socket.on('close', () => finish(performance.now() - started));
    socket.on('connect', async () => {
      socket.write(options.endHeaders === false ? head : `${head}\r\nHost: 127.0.0.1\r\n\r\n`);
      for (const piece of options.body ?? []) {
        if (done) return;
        if (options.gapMs !== undefined) await sleep(options.gapMs);
        if (!done) socket.write(piece);
      }
    });
  });
}

export interface SlowRead {
  status: number;
  /** The Content-Length the server announced. */
  declared: number;
  /** Body bytes that arrived once the client finally read. */
  received: number;
}

/**
 * A client that sends a whole request, reads the first chunk of the answer (so the stall starts once the
 * server is sending, however long the job waited in the queue), then does not read for `stallMs`; then reads
 * what the server still sends until it closes. A server that cut the client off delivers fewer than
 * `declared` bytes.
 */
export function slowReader(port: number, body: Uint8Array, stallMs: number): Promise<SlowRead> {
  return new Promise((resolve) => {
    const socket: Socket = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    let done = false;
    const finish = (): void => {
      if (done) return;
      done = true;
      clearTimeout(giveUp);
      socket.destroy();
      const all = Buffer.concat(chunks);
      const end = all.indexOf('\r\n\r\n');
      const head = all.subarray(0, Math.max(0, end)).toString('latin1');
      const status = /^HTTP\/1\.1 (\d{3})/.exec(head);
      const length = /content-length: (\d+)/i.exec(head);
      resolve({ status: status === null ? 0 : Number(status[1]), declared: length === null ? 0 : Number(length[1]), received: end < 0 ? 0 : all.length - end - 4 });
    };
    socket.once('data', (first: Buffer) => {
      chunks.push(first);
      socket.pause();
      setTimeout(() => {
        socket.on('data', (chunk: Buffer) => chunks.push(chunk));
        socket.resume();
      }, stallMs);
    });
    socket.on('connect', () => {
      socket.write(`POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n`);
      socket.write(body);
    });
    socket.on('error', finish);
    socket.on('close', finish);
    const giveUp = setTimeout(finish, stallMs + 30_000);
  });
}

export interface Child {
  process: ChildProcess;
  port: number;
  /** Resolves with the exit code (or the signal's name) once the child has exited. */
  exited: Promise<number | string>;
  stderr: () => string;
}

/** Runs examples/service.mjs in a child process with these options; resolves once it listens. */
export async function startServiceProcess(options: Record<string, number | string>): Promise<Child> {
  const child = track(spawn(process.execPath, [servicePath, '0', JSON.stringify(options)], { stdio: ['ignore', 'pipe', 'pipe'] }));
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<number | string>((resolve) => child.on('exit', (code, signal) => resolve(code ?? signal ?? -1)));
  const port = await new Promise<number>((resolve, reject) => {
    let out = '';
    child.stdout?.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      const match = /listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(out);
      if (match !== null) resolve(Number(match[1]));
    });
    void exited.then((code) => reject(new Error(`the service exited (${code}) before listening: ${stderr}`)));
    setTimeout(() => reject(new Error(`the service did not say it listens within 10 s: ${stderr}`)), 10_000).unref();
  }).catch((error: unknown) => {
    child.kill('SIGKILL');
    throw error;
  });
  return { process: child, port, exited, stderr: () => stderr };
}

/** Peak and current resident set of a process, in MiB (Linux /proc), or undefined elsewhere. */
export function residentMiB(pid: number): { peak: number; now: number } | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kib = (field: string): number => Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(status)?.[1] ?? NaN);
    return { peak: kib('VmHWM') / 1024, now: kib('VmRSS') / 1024 };
  } catch {
    return undefined;
  }
}

/** A service's answer is 200 with the bits of `pool`'s H of the problem. */
export async function assertExactAnswer(
  pool: Pool,
  answer: { status: number; body: Buffer } | undefined,
  problem: { expp: ComplexMatrix; distance: Float64Array },
  what: string,
): Promise<void> {
  assert.is(answer?.status, 200, what);
  assertBitIdentical(parseComplexMatrixNpy(new Uint8Array(answer!.body)).data, (await pool.hermitian(problem.expp, problem.distance)).data, what);
}
