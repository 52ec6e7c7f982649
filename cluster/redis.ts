// Redis URLs and connections: a bad URL or an unreachable server is a clear error within a bound,
// never a hang; once connected, a lost connection is retried for ever (a Redis restart is survived).
import { HpairError } from '../shared/errors.js';
import { loadQueueModules, type RedisClient } from './load.js';

/** How long the first connection may take before the command gives up (ms). */
export const DEFAULT_CONNECT_TIMEOUT_MS = 5_000;
/** Reconnection delays after a lost connection: 100 ms, 200 ms, … at most this (ms). */
const MAX_RECONNECT_DELAY_MS = 1_000;

/** A URL checked for shape: redis:// or rediss://, a host, a port in range, an optional /DB. */
export function parseRedisUrl(text: string, flag = '--redis'): URL {
  const fail = (why: string): never => {
    throw new HpairError('INVALID_ARGUMENT', `${flag} ${JSON.stringify(text)} is not a Redis URL (${why}; expected redis://HOST[:PORT][/DB])`);
  };
  if (typeof text !== 'string' || text === '') fail('it is empty');
  // A port out of range is named as such (URL() would only say 'Invalid URL').
  const port = /^rediss?:\/\/(?:[^@/]*@)?(?:\[[^\]]*\]|[^:/]*)(?::([^/]*))?/i.exec(text)?.[1];
  if (port !== undefined && port !== '' && (!/^\d+$/.test(port) || Number(port) < 1 || Number(port) > 65535)) fail(`port '${port}' is not 1–65535`);
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return fail('it does not parse as a URL');
  }
  if (url.protocol !== 'redis:' && url.protocol !== 'rediss:') fail(`the scheme is '${url.protocol.replace(/:$/, '')}'`);
  if (url.hostname === '') fail('it has no host');
  if (url.pathname !== '' && url.pathname !== '/' && !/^\/\d+$/.test(url.pathname)) fail(`'${url.pathname}' is not a database number`);
  return url;
}

/** The URL without its password, for messages. */
export function redactUrl(url: URL): string {
  const copy = new URL(url.href);
  if (copy.password !== '') copy.password = '***';
  return copy.href.replace(/\/$/, '');
}

export interface ConnectOptions {
  /** Give up on the first connection after this long (ms). @default 5000 */
  connectTimeoutMs?: number;
  /** Client name shown by CLIENT LIST. */
  name?: string;
}

/**
 * Connects to Redis and resolves once the server answered, or rejects with IO_ERROR (unreachable, refused,
 * not Redis, wrong password) within `connectTimeoutMs`. The client is made for BullMQ (maxRetriesPerRequest:
 * null) and, once connected, reconnects for ever with short delays, so a Redis restart is survived.
 */
export async function connectRedis(urlText: string | URL, options: ConnectOptions = {}): Promise<RedisClient> {
  const url = typeof urlText === 'string' ? parseRedisUrl(urlText) : urlText;
  const timeout = options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
  const { ioredis } = await loadQueueModules();
  let connected = false;
  let lastError: Error | undefined;
  const client = new ioredis.Redis(url.href, {
    lazyConnect: true,
    maxRetriesPerRequest: null,
    connectTimeout: Math.min(timeout, 10_000),
    connectionName: options.name,
    // Before the first connection a failure is final (the caller reports it); after it, retry for ever.
    retryStrategy: (times) => (connected ? Math.min(100 * times, MAX_RECONNECT_DELAY_MS) : null),
  });
  const remember = (error: Error): void => void (lastError = error);
  client.on('error', remember);
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      client.connect(),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${timeout / 1000} s`)), timeout);
      }),
    ]);
    // Anything that is not Redis, or wants a password we lack, fails here rather than inside BullMQ.
    clearTimeout(timer);
    await Promise.race([
      client.ping(),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer to PING within ${timeout / 1000} s`)), timeout);
      }),
    ]);
    // ioredis reports a refused SELECT (a database index out of range) only as an 'error' event and goes on
    // in database 0: a run would then use another database than the URL names. Any error seen while
    // connecting fails the connection, and the database is selected (and so checked) once more explicitly.
    if (lastError !== undefined) throw lastError;
    const db = /^\/(\d+)$/.exec(url.pathname)?.[1];
    if (db !== undefined) {
      await Promise.race([
        client.select(Number(db)),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`no answer to SELECT within ${timeout / 1000} s`)), timeout);
        }),
      ]);
    }
    if (lastError !== undefined) throw lastError;
    connected = true;
    return client;
  } catch (error) {
    client.disconnect();
    const reason = describe(lastError ?? (error as Error));
    throw new HpairError('IO_ERROR', `cannot reach Redis at ${redactUrl(url)}: ${reason}`, { cause: error });
  } finally {
    clearTimeout(timer);
    client.off('error', remember);
  }
}

/**
 * Checks that Redis takes writes at `key` (a key of the queue's own, set and removed at once): a read-only
 * replica, a full memory (maxmemory with noeviction) or a command an ACL denies fails here with IO_ERROR,
 * before a caller writes anything.
 */
export async function checkRedis(client: RedisClient, key: string, timeoutMs = DEFAULT_CONNECT_TIMEOUT_MS): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      (async () => {
        await client.set(key, '1', 'PX', 60_000);
        await client.del(key);
      })(),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs / 1000} s`)), timeoutMs);
      }),
    ]);
  } catch (error) {
    throw new HpairError('IO_ERROR', `Redis refused a write: ${describe(error as Error)}`, { cause: error });
  } finally {
    clearTimeout(timer);
  }
}

function describe(error: Error): string {
  const code = (error as NodeJS.ErrnoException).code;
  if (code === 'ECONNREFUSED') return 'connection refused (is redis-server running on that port?)';
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return 'unknown host';
  if (code === 'ETIMEDOUT') return 'connection timed out';
  const message = error.message.replace(/\s*\n\s*/g, ' ');
  if (/NOAUTH|WRONGPASS|invalid password/i.test(message)) return `authentication failed (${message})`;
  if (/Protocol error|unexpected/i.test(message)) return `the server does not speak Redis (${message})`;
  if (/DB index is out of range|invalid DB index/i.test(message)) return `the database index is out of range for this server (${message})`;
  return message;
}
