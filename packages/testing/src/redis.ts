import { spawn, type ChildProcess } from 'node:child_process';
import { createConnection, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { Redis } from 'ioredis';

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
const PING_EVERY_MS = 25;
const KEPT_OUTPUT_CHARS = 4_000;

/**
 * A redis-server of this test's own, for tests that must break Redis; the
 * shared server is never stopped. Nothing is persisted.
 */
export async function startPrivateRedis(): Promise<PrivateRedis> {
  const port = await freePort();
  let server: RunningServer | undefined;
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

interface RunningServer {
  kill(): Promise<void>;
}

async function spawnRedis(port: number): Promise<RunningServer> {
  const child = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--loglevel', 'warning'],
    { cwd: tmpdir(), stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  const keep = (chunk: Buffer) => {
    output = (output + chunk.toString('utf8')).slice(-KEPT_OUTPUT_CHARS);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let spawnError: Error | undefined;
  child.once('error', (error) => {
    spawnError = error;
  });
  // A server left behind by a test that forgot stop() would hold its port until reboot.
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);

  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (!(await answersPing(port))) {
    if (spawnError || child.exitCode !== null || Date.now() > deadline) {
      child.kill('SIGKILL');
      process.removeListener('exit', killOnExit);
      throw new Error(`private redis-server on port ${port} did not start: ${spawnError?.message ?? output.trim()}`, {
        cause: spawnError,
      });
    }
    await new Promise((resolve) => setTimeout(resolve, PING_EVERY_MS));
  }
  return {
    kill: async () => {
      process.removeListener('exit', killOnExit);
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
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

async function freePort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve, reject) => {
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', resolve);
  });
  const { port } = probe.address() as { port: number };
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  return port;
}
