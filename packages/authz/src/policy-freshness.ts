import { AppError } from '@aifactory/errors';

export interface PolicyFreshness {
  /** How old the policy snapshot is (now - the read model's heartbeat); null when there is none yet. */
  ageMs: number | null;
  /** Seed 002: a decision on policy older than five minutes is refused rather than guessed. */
  maxAgeMs?: number;
  /** Counts refusals (a metric), so a stalled read model shows before users report it. */
  onRefusal?: () => void;
}

export const DEFAULT_POLICY_MAX_AGE_MS = 5 * 60_000;

/**
 * Refuses a policy-dependent decision when the snapshot is missing or too
 * old: enforcing a limit IAM has since changed would fail open (or shut)
 * silently, so the caller answers a retryable POLICY_SNAPSHOT_STALE instead.
 */
export function requireFreshPolicy({ ageMs, maxAgeMs = DEFAULT_POLICY_MAX_AGE_MS, onRefusal }: PolicyFreshness): void {
  if (ageMs !== null && ageMs <= maxAgeMs) return;
  onRefusal?.();
  throw new AppError('POLICY_SNAPSHOT_STALE', 'Policy is temporarily unavailable; retry shortly', { details: { ageMs, maxAgeMs } });
}
