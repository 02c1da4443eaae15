import { createHash } from 'node:crypto';
import type { Clock } from '@aifactory/clock';
import type { Logger } from '@aifactory/logging';
import type { Redis, Result } from 'ioredis';

export interface RateLimitRule {
  limit: number;
  windowSeconds: number;
}

export type RateLimitOutcome = 'allowed' | 'limited' | 'fail_open';

export interface RateLimitDecision {
  outcome: RateLimitOutcome;
  limit: number;
  /** Never negative. */
  remaining: number;
  /** Epoch seconds when the current window ends. */
  resetAt: number;
  /** Above 0 only when limited. */
  retryAfterSeconds: number;
}

export interface RateLimiterOptions {
  redis: Redis;
  keyPrefix: string;
  clock: Clock;
  logger: Logger;
  onDecision?: (outcome: RateLimitOutcome, policy: string) => void;
}

declare module 'ioredis' {
  interface RedisCommander<Context> {
    aifRateLimitHit(key: string, ttlSeconds: number): Result<number, Context>;
  }
}

// Counting and expiry in one script: a separate EXPIRE could be lost between
// the two calls and leave a counter that never resets.
const HIT_SCRIPT = `
local count = redis.call('INCR', KEYS[1])
if count == 1 then
  redis.call('EXPIRE', KEYS[1], ARGV[1])
end
return count
`;

/**
 * Seed 004: fixed-window limits per principal and per operation or route,
 * counted atomically in Redis. A Redis outage must not take the API down with
 * it, so the limiter fails open and says so.
 */
export class RateLimiter {
  private readonly redis: Redis;
  private readonly keyPrefix: string;
  private readonly clock: Clock;
  private readonly logger: Logger;
  private readonly onDecision: ((outcome: RateLimitOutcome, policy: string) => void) | undefined;

  constructor(options: RateLimiterOptions) {
    this.redis = options.redis;
    this.keyPrefix = options.keyPrefix;
    this.clock = options.clock;
    this.logger = options.logger;
    this.onDecision = options.onDecision;
    this.redis.defineCommand('aifRateLimitHit', { numberOfKeys: 1, lua: HIT_SCRIPT });
  }

  async check(subject: string, policy: string, rule: RateLimitRule): Promise<RateLimitDecision> {
    assertRule(rule);
    const nowSeconds = this.clock.nowMs() / 1000;
    const windowStart = Math.floor(nowSeconds / rule.windowSeconds) * rule.windowSeconds;
    const resetAt = windowStart + rule.windowSeconds;
    let decision: RateLimitDecision;
    try {
      // The window start is in the key, so a TTL measured on Redis's clock only
      // collects old counters and never decides a window.
      const count = await this.redis.aifRateLimitHit(this.counterKey(policy, subject, windowStart), rule.windowSeconds);
      decision =
        count <= rule.limit
          ? { outcome: 'allowed', limit: rule.limit, remaining: rule.limit - count, resetAt, retryAfterSeconds: 0 }
          : {
              outcome: 'limited',
              limit: rule.limit,
              remaining: 0,
              resetAt,
              retryAfterSeconds: Math.max(1, Math.ceil(resetAt - nowSeconds)),
            };
    } catch (error) {
      // Name and message only: a reply error carries the command and its arguments.
      this.logger.warn({ policy, err: describeError(error) }, 'rate limiter failed open');
      decision = { outcome: 'fail_open', limit: rule.limit, remaining: rule.limit, resetAt, retryAfterSeconds: 0 };
    }
    this.onDecision?.(decision.outcome, policy);
    return decision;
  }

  private counterKey(policy: string, subject: string, windowStart: number): string {
    // The policy stays readable for operators; the subject is hashed so key
    // names hold no principal identifiers. Both are safe to join with ':'.
    return `${this.keyPrefix}rl:${encodeURIComponent(policy)}:${sha256(subject)}:${windowStart}`;
  }
}

/** GitHub-style headers: X-RateLimit-Limit, X-RateLimit-Remaining, X-RateLimit-Reset (epoch seconds), plus Retry-After when limited. */
export function rateLimitHeaders(decision: RateLimitDecision): Record<string, string> {
  const headers: Record<string, string> = {
    'X-RateLimit-Limit': String(decision.limit),
    'X-RateLimit-Remaining': String(decision.remaining),
    'X-RateLimit-Reset': String(decision.resetAt),
  };
  if (decision.outcome === 'limited') headers['Retry-After'] = String(decision.retryAfterSeconds);
  return headers;
}

function assertRule(rule: RateLimitRule): void {
  // A bad window would make every EXPIRE fail, and the limiter would fail open forever.
  if (!Number.isInteger(rule.windowSeconds) || rule.windowSeconds < 1) {
    throw new RangeError(`rate limit windowSeconds must be a positive integer, got ${rule.windowSeconds}`);
  }
  if (!Number.isInteger(rule.limit) || rule.limit < 0) {
    throw new RangeError(`rate limit limit must be a non-negative integer, got ${rule.limit}`);
  }
}

function sha256(value: string): string {
  return createHash('sha256').update(value, 'utf8').digest('base64url');
}

function describeError(error: unknown): { name: string; message: string } {
  return error instanceof Error ? { name: error.name, message: error.message } : { name: 'unknown', message: String(error) };
}
