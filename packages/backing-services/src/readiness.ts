import type { NatsConnection } from '@nats-io/transport-node';
import type { Redis } from 'ioredis';
import type pg from 'pg';

export type DependencyCheck = () => Promise<void>;

export interface DependencyStatus {
  status: 'up' | 'down';
  latencyMs: number;
  /** A short reason safe to show a probe: never a URL with credentials. */
  error?: string;
}

export interface ReadinessReport {
  ready: boolean;
  dependencies: Record<string, DependencyStatus>;
}

/** Runs every check in parallel, each bounded by `timeoutMs`; ready when all are up. */
export async function checkReadiness(checks: Record<string, DependencyCheck>, timeoutMs: number): Promise<ReadinessReport> {
  const results = await Promise.all(
    Object.entries(checks).map(async ([name, check]) => [name, await runCheck(check, timeoutMs)] as const),
  );
  return {
    ready: results.every(([, result]) => result.status === 'up'),
    dependencies: Object.fromEntries(results),
  };
}

async function runCheck(check: DependencyCheck, timeoutMs: number): Promise<DependencyStatus> {
  const started = performance.now();
  const latencyMs = () => Math.round((performance.now() - started) * 10) / 10;
  try {
    await withinTimeout(check, timeoutMs);
    return { status: 'up', latencyMs: latencyMs() };
  } catch (error) {
    return { status: 'down', latencyMs: latencyMs(), error: safeReason(error) };
  }
}

function withinTimeout(check: DependencyCheck, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs} ms`)), timeoutMs);
    // Started from a promise so that a check throwing synchronously is a failure, not a crash.
    Promise.resolve()
      .then(check)
      .then(resolve, reject)
      .finally(() => clearTimeout(timer));
  });
}

const MAX_REASON_LENGTH = 200;
const URL_CREDENTIALS = /\b([a-z][a-z0-9+.-]*:\/\/)[^\s/@]+@/gi;
const PASSWORD_SETTING = /\b(password|pass|pwd)=[^\s&;]+/gi;

/**
 * The message of a failure with any credentials a driver might echo removed,
 * short enough for a probe response or a log line.
 */
export function safeReason(error: unknown): string {
  const reason = reasonOf(error)
    .replace(URL_CREDENTIALS, '$1[redacted]@')
    .replace(PASSWORD_SETTING, '$1=[redacted]');
  return reason.length > MAX_REASON_LENGTH ? `${reason.slice(0, MAX_REASON_LENGTH)}…` : reason;
}

function reasonOf(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  // Node reports a refused connection to several addresses as an AggregateError with an empty message.
  const code = 'code' in error && typeof error.code === 'string' ? error.code : undefined;
  return error.message || code || error.name;
}

/** PING; down at once while the client is not connected, since it queues nothing. */
export function redisCheck(redis: Redis): DependencyCheck {
  return async () => {
    if (redis.status !== 'ready') throw new Error(`redis connection is ${redis.status}`);
    await redis.ping();
  };
}

/** A round trip to the server; rejects at once when the connection is closed or reconnecting. */
export function natsCheck(nc: NatsConnection): DependencyCheck {
  return async () => {
    await nc.rtt();
  };
}

export function postgresCheck(pool: pg.Pool): DependencyCheck {
  return async () => {
    await pool.query('SELECT 1');
  };
}
