// Real Redis for the cluster tests: the one CI starts (HPAIR_TEST_REDIS), or one started here on a free
// loopback port when redis-server is installed. Only loopback addresses are ever used.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { track } from './children.js';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** The redis-server binary, or undefined when it is not installed. */
export function redisServerBinary(): string | undefined {
  if (process.env.HPAIR_TEST_REDIS === 'none') return undefined;
  for (const candidate of [process.env.HPAIR_REDIS_SERVER, 'redis-server', '/usr/bin/redis-server', '/usr/sbin/redis-server', '/usr/local/bin/redis-server']) {
    if (candidate === undefined || candidate === '') continue;
    const probe = spawnSync(candidate, ['--version'], { stdio: 'ignore', timeout: 5_000 });
    if (probe.status === 0) return candidate;
  }
  return undefined;
}

/** A free TCP port on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** Resolves once something on 127.0.0.1:port answers PING with PONG (or rejects after `ms`). */
export async function waitForRedis(port: number, ms = 10_000): Promise<void> {
  const until = Date.now() + ms;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const socket = createConnection({ host: '127.0.0.1', port });
      const done = (value: boolean): void => {
        socket.destroy();
        resolve(value);
      };
      socket.setTimeout(1_000, () => done(false));
      socket.once('error', () => done(false));
      socket.once('connect', () => socket.write('PING\r\n'));
      socket.once('data', (data) => done(data.toString().startsWith('+PONG')));
    });
    if (ok) return;
    if (Date.now() > until) throw new Error(`redis-server on port ${port} did not answer within ${ms} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

export interface RedisServer {
  readonly port: number;
  readonly url: string;
  /** Stops it (SIGTERM; with no persistence every key is lost) and waits for its exit. */
  stop(): Promise<void>;
  /** Starts it again on the same port (after stop()). */
  start(): Promise<void>;
}

/** Starts redis-server on a free loopback port, without persistence (a restart loses every key). */
export async function startRedis(binary: string, port?: number, sharedUntilExit = false): Promise<RedisServer> {
  const chosen = port ?? (await freePort());
  const dir = mkdtempSync(join(tmpdir(), 'hpair-redis-'));
  let child: ChildProcess | undefined;
  const server: RedisServer = {
    port: chosen,
    url: `redis://127.0.0.1:${chosen}`,
    async start() {
      child = track(
        spawn(binary, ['--port', String(chosen), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, '--protected-mode', 'yes'], {
          stdio: 'ignore',
        }),
        sharedUntilExit,
      );
      // Not a reason to stay alive: the test Redis that testRedisUrl() shares is never stopped by a test, and
      // kept `npm test` from exiting after its last test. The suite-level guard (helpers/children.ts) kills it.
      child.unref();
      await waitForRedis(chosen);
    },
    async stop() {
      const running = child;
      if (running === undefined || running.exitCode !== null) return;
      const exited = new Promise((resolve) => running.once('exit', resolve));
      running.ref(); // so that waiting for its exit keeps this process alive
      running.kill('SIGTERM');
      await exited;
      child = undefined;
    },
  };
  await server.start();
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  return server;
}

let shared: Promise<string | undefined> | undefined;

/**
 * The Redis URL for tests: HPAIR_TEST_REDIS (CI starts one and passes it), else a redis-server started here,
 * else undefined (the caller skips, saying why). HPAIR_TEST_REDIS=none skips them on purpose.
 */
export function testRedisUrl(): Promise<string | undefined> {
  shared ??= (async () => {
    const given = process.env.HPAIR_TEST_REDIS;
    if (given === 'none') return undefined; // skip the Redis tests on purpose
    if (given !== undefined && given !== '') return given;
    const binary = redisServerBinary();
    if (binary === undefined) return undefined;
    return (await startRedis(binary, undefined, true)).url;
  })();
  return shared;
}
