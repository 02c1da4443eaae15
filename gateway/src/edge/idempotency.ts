import { createHash, randomUUID } from 'node:crypto';
import { AppError } from '@aifactory/errors';
import { validateIdempotencyKey } from '@aifactory/http';
import type { Logger } from '@aifactory/logging';
import type { Redis, Result } from 'ioredis';

export interface StoredResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

export type IdempotencyBegin = { kind: 'new'; lease: IdempotencyLease } | { kind: 'replay'; response: StoredResponse };

export interface IdempotencyLease {
  /** Stores the response for replay, or only the fact that it showed a secret. */
  complete(response: StoredResponse | { secretShown: true }): Promise<void>;
  /** Frees the key so a retry runs again; for failures that must be retryable. */
  abandon(): Promise<void>;
}

export interface IdempotencyStoreOptions {
  redis: Redis;
  keyPrefix: string;
  /** How long a completed response is kept; seed 004 says 24 h (86400). */
  ttlSeconds: number;
  /** How long a claim lives if the process dies mid-request. */
  inFlightTtlSeconds: number;
  logger: Logger;
}

declare module 'ioredis' {
  interface RedisCommander<Context> {
    aifIdempotencyBegin(
      key: string,
      token: string,
      fingerprint: string,
      inFlightTtlSeconds: number,
    ): Result<[string | null, string | null, string | null] | null, Context>;
    aifIdempotencyComplete(key: string, token: string, state: string, response: string, ttlSeconds: number): Result<number, Context>;
    aifIdempotencyAbandon(key: string, token: string): Result<number, Context>;
  }
}

type RecordState = 'in_flight' | 'completed' | 'secret_shown';

// Claim or report in one step, so of two concurrent begins exactly one claims.
const BEGIN_SCRIPT = `
if redis.call('EXISTS', KEYS[1]) == 1 then
  return redis.call('HMGET', KEYS[1], 'state', 'fingerprint', 'response')
end
redis.call('HSET', KEYS[1], 'state', 'in_flight', 'fingerprint', ARGV[2], 'token', ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[3])
return false
`;

// Only the lease that claimed the key may finish it: after its claim expired
// another request may own the key, and that one must not be overwritten.
const COMPLETE_SCRIPT = `
if redis.call('HGET', KEYS[1], 'token') ~= ARGV[1] then
  return 0
end
redis.call('HDEL', KEYS[1], 'token')
redis.call('HSET', KEYS[1], 'state', ARGV[2])
if ARGV[3] ~= '' then
  redis.call('HSET', KEYS[1], 'response', ARGV[3])
end
redis.call('EXPIRE', KEYS[1], ARGV[4])
return 1
`;

const ABANDON_SCRIPT = `
if redis.call('HGET', KEYS[1], 'token') ~= ARGV[1] then
  return 0
end
return redis.call('DEL', KEYS[1])
`;

/**
 * Seed 004: a mutation with an Idempotency-Key runs once per principal and key;
 * a retry gets the stored response. Without Redis no mutation can be proven
 * not to run twice, so the store fails closed.
 */
export class IdempotencyStore {
  private readonly redis: Redis;
  private readonly keyPrefix: string;
  private readonly ttlSeconds: number;
  private readonly inFlightTtlSeconds: number;
  private readonly logger: Logger;

  constructor(options: IdempotencyStoreOptions) {
    assertPositiveInteger('ttlSeconds', options.ttlSeconds);
    assertPositiveInteger('inFlightTtlSeconds', options.inFlightTtlSeconds);
    this.redis = options.redis;
    this.keyPrefix = options.keyPrefix;
    this.ttlSeconds = options.ttlSeconds;
    this.inFlightTtlSeconds = options.inFlightTtlSeconds;
    this.logger = options.logger;
    this.redis.defineCommand('aifIdempotencyBegin', { numberOfKeys: 1, lua: BEGIN_SCRIPT });
    this.redis.defineCommand('aifIdempotencyComplete', { numberOfKeys: 1, lua: COMPLETE_SCRIPT });
    this.redis.defineCommand('aifIdempotencyAbandon', { numberOfKeys: 1, lua: ABANDON_SCRIPT });
  }

  /**
   * Throws AppError IDEMPOTENCY_KEY_INVALID (key must be 1..255 printable ASCII),
   * IDEMPOTENCY_KEY_REUSED, IDEMPOTENCY_REQUEST_IN_FLIGHT,
   * IDEMPOTENCY_SECRET_ALREADY_SHOWN, IDEMPOTENCY_UNAVAILABLE.
   */
  async begin(principalKey: string, idempotencyKey: string, requestFingerprint: string): Promise<IdempotencyBegin> {
    validateIdempotencyKey(idempotencyKey);
    const key = this.recordKey(principalKey, idempotencyKey);
    const token = randomUUID();
    let existing: [string | null, string | null, string | null] | null;
    try {
      existing = await this.redis.aifIdempotencyBegin(key, token, requestFingerprint, this.inFlightTtlSeconds);
    } catch (cause) {
      throw unavailable(cause);
    }
    if (existing === null) return { kind: 'new', lease: this.lease(key, token) };

    const [state, fingerprint, response] = existing;
    // A different body under the same key is a client bug whatever the first request's state.
    if (fingerprint !== requestFingerprint) {
      throw new AppError('IDEMPOTENCY_KEY_REUSED', 'This Idempotency-Key was already used with a different request');
    }
    const known = state as RecordState;
    switch (known) {
      case 'in_flight':
        throw new AppError('IDEMPOTENCY_REQUEST_IN_FLIGHT', 'A request with this Idempotency-Key is still running; retry later');
      case 'secret_shown':
        throw new AppError(
          'IDEMPOTENCY_SECRET_ALREADY_SHOWN',
          'The response to this request showed a secret once and is not kept; check the result before trying again',
        );
      case 'completed':
        if (response === null) throw unavailable(new Error('completed idempotency record has no response'));
        return { kind: 'replay', response: JSON.parse(response) as StoredResponse };
      default: {
        const unknownState: never = known;
        throw unavailable(new Error(`idempotency record in unknown state ${String(unknownState)}`));
      }
    }
  }

  private lease(key: string, token: string): IdempotencyLease {
    return {
      complete: async (response) => {
        // A secret is shown once: only the fact that it was shown is kept, never the response.
        const [state, stored]: [RecordState, string] =
          'secretShown' in response
            ? ['secret_shown', '']
            : ['completed', JSON.stringify({ status: response.status, headers: response.headers, body: response.body })];
        let owned: number;
        try {
          owned = await this.redis.aifIdempotencyComplete(key, token, state, stored, this.ttlSeconds);
        } catch (cause) {
          throw unavailable(cause);
        }
        if (owned === 0) {
          this.logger.warn({ inFlightTtlSeconds: this.inFlightTtlSeconds }, 'idempotency claim lost before the response was stored');
        }
      },
      abandon: async () => {
        try {
          await this.redis.aifIdempotencyAbandon(key, token);
        } catch (cause) {
          throw unavailable(cause);
        }
      },
    };
  }

  private recordKey(principalKey: string, idempotencyKey: string): string {
    // Hashed parts cannot collide across the ':' and hold no caller-chosen text.
    return `${this.keyPrefix}idem:${sha256(principalKey)}:${sha256(idempotencyKey)}`;
  }
}

function assertPositiveInteger(name: string, value: number): void {
  // Redis refuses a fractional EXPIRE, which would fail every begin as unavailable.
  if (!Number.isInteger(value) || value < 1) throw new RangeError(`idempotency ${name} must be a positive integer, got ${value}`);
}

function unavailable(cause: unknown): AppError {
  return new AppError('IDEMPOTENCY_UNAVAILABLE', 'Idempotent requests are unavailable right now; retry later', { cause });
}

function sha256(value: string): string {
  return createHash('sha256').update(value, 'utf8').digest('base64url');
}
