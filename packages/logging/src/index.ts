import { AsyncLocalStorage } from 'node:async_hooks';
import { randomUUID } from 'node:crypto';
import { pino, type DestinationStream, type Logger } from 'pino';

export type { Logger } from 'pino';

interface RequestScope {
  correlationId: string;
}

const scope = new AsyncLocalStorage<RequestScope>();

/** Lines written outside any request (start-up, shutdown) carry this id. */
export const SYSTEM_CORRELATION_ID = 'system';

const CORRELATION_ID_PATTERN = /^[A-Za-z0-9._:-]{8,128}$/;

/**
 * Echo a client's correlation id only when it is a plain token; anything else
 * (too long, odd characters that could forge log lines) gets a fresh id.
 */
export function acceptCorrelationId(candidate: string | string[] | undefined | null): string {
  const value = Array.isArray(candidate) ? candidate[0] : candidate;
  if (value && CORRELATION_ID_PATTERN.test(value)) return value;
  return randomUUID();
}

export function runWithCorrelationId<T>(correlationId: string, fn: () => T): T {
  return scope.run({ correlationId }, fn);
}

export function currentCorrelationId(): string {
  return scope.getStore()?.correlationId ?? SYSTEM_CORRELATION_ID;
}

/**
 * Paths that may hold credentials. Redaction is the second line of defence:
 * code should never log these objects in the first place.
 */
const REDACT_PATHS = [
  'authorization',
  'headers.authorization',
  'req.headers.authorization',
  'headers["x-pomerium-jwt-assertion"]',
  'req.headers["x-pomerium-jwt-assertion"]',
  'token',
  'assertion',
  'password',
  'secret',
  '*.token',
  '*.assertion',
  '*.password',
  '*.secret',
];

export interface LoggerOptions {
  service: string;
  level?: string;
  destination?: DestinationStream;
}

export function createLogger(options: LoggerOptions): Logger {
  return pino(
    {
      level: options.level ?? 'info',
      base: { service: options.service },
      messageKey: 'msg',
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      mixin: () => ({ correlationId: currentCorrelationId() }),
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    },
    options.destination,
  );
}
