import { createConnection } from 'node:net';
import { Redis } from 'ioredis';
import { freePort, spawnTestServer, type TestServerProcess } from './server-process.js';

/** The shared Redis; tests on it use their own key prefix and delete their keys. */
export const TEST_REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

export interface PrivateRedis {
  url: string;
  port: number;
  /** Kills the server (SIGTERM) and waits for it to exit; clients see a dead Redis. */
  stop(): Promise<void>;
  /** Starts it again on the same port, empty, and waits until it answers PING. */
  start(): Promise<void>;
}

/** Resolves once the client can run commands (a client built with enableOfflineQueue off refuses them before). */
export function untilRedisReady(redis: Redis): Promise<void> {
  if (redis.status === 'ready') return Promise.resolve();
  return new Promise((resolve) => redis.once('ready', () => resolve()));
}

/**
 * A client of a private Redis built the way services build theirs (fail fast
 * while Redis is down, reconnect quickly), connected and ready.
 */
/** Removes every key under a prefix from a Redis (by default the shared one); other stacks' keys are untouched. */
export async function deleteRedisKeys(prefix: string, url = TEST_REDIS_URL): Promise<void> {
  const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1 });
  try {
    await redis.connect();
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 500);
      if (keys.length > 0) await redis.del(...keys);
      cursor = next;
    } while (cursor !== '0');
  } finally {
    redis.disconnect();
  }
}

export async function connectToPrivateRedis(server: PrivateRedis): Promise<Redis> {
  const redis = new Redis(server.url, {
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    commandTimeout: 500,
    lazyConnect: false,
    retryStrategy: () => 50,
  });
  // Tests stop this Redis on purpose; the connection errors it reports are expected.
  redis.on('error', () => undefined);
  await untilRedisReady(redis);
  return redis;
}

const READY_TIMEOUT_MS = 10_000;

/**
 * A redis-server of this test's own, for tests that must break Redis; the
 * shared server is never stopped. Nothing is persisted.
 */
export async function startPrivateRedis(): Promise<PrivateRedis> {
  const port = await freePort();
  let server: TestServerProcess | undefined;
  const start = async () => {
    if (server) return;
    server = await spawnRedis(port);
  };
  const stop = async () => {
    const running = server;
    server = undefined;
    await running?.kill();
  };
  await start();
  return { url: `redis://127.0.0.1:${port}`, port, start, stop };
}

function spawnRedis(port: number): Promise<TestServerProcess> {
  return spawnTestServer({
    label: `private redis-server on port ${port}`,
    command: 'redis-server',
    args: ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--loglevel', 'warning'],
    isReady: () => answersPing(port),
    timeoutMs: READY_TIMEOUT_MS,
  });
}

function answersPing(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    let reply = '';
    const finish = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(500, () => finish(false));
    socket.once('error', () => finish(false));
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.on('data', (chunk) => {
      reply += chunk.toString('utf8');
      if (reply.includes('\r\n')) finish(reply.startsWith('+PONG'));
    });
  });
}
