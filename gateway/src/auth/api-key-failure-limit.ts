import type { Clock } from '@aifactory/clock';
import type { RateLimitDecision, RateLimitRule } from '../edge/rate-limiter.js';

/** The limiter's one call we need (a RateLimiter). */
export interface FailureCounter {
  check(subject: string, policy: string, rule: RateLimitRule): Promise<RateLimitDecision>;
}

export const FAILURE_POLICY = 'api_key_failures';
const DEFAULT_MAX_BLOCKED = 100_000;

/**
 * Failed key authentications per source (issue 15, At the gateway). Each
 * failure is counted in Redis, shared by every gateway instance; a source
 * that went over its budget is then remembered here until the window ends,
 * so its further requests are refused before any lookup, HMAC or Redis call,
 * and a successful request costs nothing at all. Another instance learns of
 * the block at that source's next failure there. Redis being down makes the
 * counter fail open (the RateLimiter says so in its metrics).
 */
export class ApiKeyFailureLimit {
  private readonly blockedUntilMs = new Map<string, number>();

  constructor(
    private readonly counter: FailureCounter,
    private readonly rule: RateLimitRule,
    private readonly clock: Clock,
    private readonly maxBlocked = DEFAULT_MAX_BLOCKED,
  ) {}

  /** Seconds the source must wait, or 0 when it may try. */
  retryAfterSeconds(source: string): number {
    const until = this.blockedUntilMs.get(source);
    if (until === undefined) return 0;
    const nowMs = this.clock.nowMs();
    if (until > nowMs) return Math.max(1, Math.ceil((until - nowMs) / 1000));
    this.blockedUntilMs.delete(source);
    return 0;
  }

  /** Counts one failure; returns the seconds to wait when this failure went over the budget, else 0. */
  async failed(source: string): Promise<number> {
    const decision = await this.counter.check(source, FAILURE_POLICY, this.rule);
    if (decision.outcome !== 'limited') return 0;
    if (this.blockedUntilMs.size >= this.maxBlocked) this.prune();
    this.blockedUntilMs.set(source, decision.resetAt * 1000);
    return decision.retryAfterSeconds;
  }

  private prune(): void {
    const nowMs = this.clock.nowMs();
    for (const [source, until] of this.blockedUntilMs) if (until <= nowMs) this.blockedUntilMs.delete(source);
    // Still full of live blocks: forget the oldest; its next failure blocks it again.
    if (this.blockedUntilMs.size >= this.maxBlocked) {
      const oldest = this.blockedUntilMs.keys().next();
      if (!oldest.done) this.blockedUntilMs.delete(oldest.value);
    }
  }
}
