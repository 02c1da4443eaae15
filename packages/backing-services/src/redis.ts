import type { Logger } from '@aifactory/logging';
import { Redis } from 'ioredis';
import { safeReason } from './readiness.js';

export interface RedisOptions {
  url: string;
  /** Shown by CLIENT LIST and in log lines. */
  name: string;
  commandTimeoutMs: number;
  logger: Logger;
}

/** A Redis outage fails every reconnect attempt; one line per window is enough to see it. */
const ERROR_LOG_WINDOW_MS = 10_000;
const MAX_RECONNECT_DELAY_MS = 2_000;

/**
 * A client that fails fast while Redis is down: commands are neither queued
 * nor retried, so callers see the outage at once instead of piling up
 * requests; the connection itself keeps reconnecting in the background.
 * Commands fail until the client is ready (`redis.status === 'ready'`).
 */
export function connectRedis(options: RedisOptions): Redis {
  const { logger, name } = options;
  const redis = new Redis(options.url, {
    connectionName: name,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    commandTimeout: options.commandTimeoutMs,
    retryStrategy: (attempt) => Math.min(100 * 2 ** (attempt - 1), MAX_RECONNECT_DELAY_MS),
  });
  let lastWarnAt = -Infinity;
  let suppressed = 0;
  let failing = false;
  // Without a listener ioredis reports every failed attempt as an unhandled 'error' event.
  redis.on('error', (error: unknown) => {
    failing = true;
    const now = Date.now();
    if (now - lastWarnAt < ERROR_LOG_WINDOW_MS) {
      suppressed += 1;
      return;
    }
    logger.warn({ redis: name, error: safeReason(error), suppressed }, 'redis connection failing');
    lastWarnAt = now;
    suppressed = 0;
  });
  redis.on('ready', () => {
    if (!failing) return;
    failing = false;
    logger.info({ redis: name }, 'redis connection restored');
  });
  return redis;
}

/** Quits politely, or drops the connection when Redis cannot answer (down, or never connected). */
export async function closeRedis(redis: Redis): Promise<void> {
  try {
    await redis.quit();
  } catch {
    redis.disconnect();
  }
}
