import { once } from 'node:events';
import { createLogger } from '@aifactory/logging';
import { TEST_ADMIN_URL, captureLogs, freePort } from '@aifactory/testing';
import pg from 'pg';
import { connectNats, drainNats } from './nats.js';
import { checkReadiness, natsCheck, postgresCheck, redisCheck } from './readiness.js';
import { closeRedis, connectRedis } from './redis.js';

const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const NATS_SERVER = process.env.TEST_NATS_SERVER ?? '127.0.0.1:4222';
function quietLogger() {
  return createLogger({ service: 'readiness-test', destination: captureLogs().destination });
}

describe('checkReadiness', () => {
  it('reports the shared Redis, NATS and Postgres up with their latencies', async () => {
    const logger = quietLogger();
    const redis = connectRedis({ url: REDIS_URL, name: 'readiness-test', commandTimeoutMs: 1_000, logger });
    await once(redis, 'ready');
    const nc = await connectNats({ servers: [NATS_SERVER], name: 'readiness-test', logger });
    const pool = new pg.Pool({ connectionString: TEST_ADMIN_URL, max: 1 });

    try {
      const report = await checkReadiness(
        { redis: redisCheck(redis), nats: natsCheck(nc), postgres: postgresCheck(pool) },
        2_000,
      );

      expect(report.ready).toBe(true);
      for (const name of ['redis', 'nats', 'postgres']) {
        expect(report.dependencies[name]).toEqual({ status: 'up', latencyMs: expect.any(Number) });
        expect(report.dependencies[name]?.latencyMs).toBeLessThan(2_000);
      }
    } finally {
      await closeRedis(redis);
      await drainNats(nc);
      await pool.end();
    }
  });

  it('reports a Redis nobody listens on down at once, without its credentials', async () => {
    const redis = connectRedis({
      url: `redis://aif:secret@127.0.0.1:${await freePort()}`,
      name: 'readiness-test',
      commandTimeoutMs: 1_000,
      logger: quietLogger(),
    });

    try {
      const report = await checkReadiness({ redis: redisCheck(redis) }, 1_000);

      expect(report.ready).toBe(false);
      expect(report.dependencies.redis?.status).toBe('down');
      expect(report.dependencies.redis?.error).toMatch(/^redis connection is (connecting|reconnecting)$/);
      expect(report.dependencies.redis?.latencyMs).toBeLessThan(1_000);
    } finally {
      await closeRedis(redis);
    }
  });

  it('reports a Postgres nobody listens on down with the refusal, without its credentials', async () => {
    const pool = new pg.Pool({ connectionString: `postgresql://aif:secret@localhost:${await freePort()}/aif`, max: 1 });

    try {
      const report = await checkReadiness({ postgres: postgresCheck(pool) }, 2_000);

      expect(report.dependencies.postgres?.status).toBe('down');
      expect(report.dependencies.postgres?.error).toMatch(/ECONNREFUSED/);
      expect(report.dependencies.postgres?.error).not.toContain('secret');
    } finally {
      await pool.end();
    }
  });

  it('reports a NATS connection that was closed down', async () => {
    const nc = await connectNats({ servers: [NATS_SERVER], name: 'readiness-test', logger: quietLogger() });
    await drainNats(nc);

    const report = await checkReadiness({ nats: natsCheck(nc) }, 1_000);

    expect(report.dependencies.nats).toEqual({ status: 'down', latencyMs: expect.any(Number), error: 'closed connection' });
  });

  it('reports a check that never answers down after the timeout', async () => {
    const report = await checkReadiness({ stuck: () => new Promise<void>(() => {}), fine: async () => {} }, 200);

    expect(report.ready).toBe(false);
    expect(report.dependencies.stuck).toEqual({ status: 'down', latencyMs: expect.any(Number), error: 'timed out after 200 ms' });
    expect(report.dependencies.stuck?.latencyMs).toBeGreaterThanOrEqual(190);
    expect(report.dependencies.fine?.status).toBe('up');
  });

  it('reports a check that throws before returning a promise down', async () => {
    const report = await checkReadiness(
      {
        broken: () => {
          throw new Error('not configured');
        },
      },
      200,
    );

    expect(report.dependencies.broken).toEqual({ status: 'down', latencyMs: expect.any(Number), error: 'not configured' });
  });

  it('removes credentials a driver echoes in its error', async () => {
    const report = await checkReadiness(
      {
        url: async () => Promise.reject(new Error('cannot reach redis://aif:secret@10.0.0.7:6379/0')),
        settings: async () => Promise.reject(new Error('bad dsn host=db user=aif password=secret')),
      },
      200,
    );

    expect(report.dependencies.url?.error).toBe('cannot reach redis://[redacted]@10.0.0.7:6379/0');
    expect(report.dependencies.settings?.error).toBe('bad dsn host=db user=aif password=[redacted]');
  });
});
