import { once } from 'node:events';
import { createLogger } from '@aifactory/logging';
import { captureLogs, freePort } from '@aifactory/testing';
import { closeRedis, connectRedis } from './redis.js';

const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
describe('connectRedis', () => {
  it('answers commands once ready and closes politely', async () => {
    const logs = captureLogs();
    const redis = connectRedis({
      url: REDIS_URL,
      name: 'redis-test',
      commandTimeoutMs: 1_000,
      logger: createLogger({ service: 'redis-test', destination: logs.destination }),
    });
    await once(redis, 'ready');

    expect(await redis.ping()).toBe('PONG');
    const ended = once(redis, 'end');
    await closeRedis(redis);
    await ended;
    expect(logs.lines().filter((line) => line.level === 'warn')).toEqual([]);
  });

  it('fails a command at once while Redis is down instead of queueing it', async () => {
    const redis = connectRedis({
      url: `redis://127.0.0.1:${await freePort()}`,
      name: 'redis-test',
      commandTimeoutMs: 5_000,
      logger: createLogger({ service: 'redis-test', destination: captureLogs().destination }),
    });

    try {
      const started = Date.now();
      await expect(redis.get('any')).rejects.toThrow(/enableOfflineQueue/);
      expect(Date.now() - started).toBeLessThan(1_000);
    } finally {
      await closeRedis(redis);
    }
  });

  it('logs one warn line, without credentials, for a run of failed reconnects', async () => {
    const logs = captureLogs();
    const redis = connectRedis({
      url: `redis://aif:secret@127.0.0.1:${await freePort()}`,
      name: 'redis-test',
      commandTimeoutMs: 1_000,
      logger: createLogger({ service: 'redis-test', destination: logs.destination }),
    });
    let failures = 0;
    await new Promise<void>((resolve) => {
      redis.on('error', () => {
        failures += 1;
        if (failures === 3) resolve();
      });
    });

    await closeRedis(redis);

    const warnings = logs.lines().filter((line) => line.level === 'warn');
    expect(warnings).toEqual([
      expect.objectContaining({ msg: 'redis connection failing', redis: 'redis-test', error: expect.stringMatching(/ECONNREFUSED/) }),
    ]);
    expect(logs.raw().join('\n')).not.toContain('secret');
  });
});
