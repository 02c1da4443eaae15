import { effectivePolicy, parsePolicyValue, requireFreshPolicy, type PolicySnapshot } from '@aifactory/authz';
import { AppError } from '@aifactory/errors';
import type { PolicySource } from './admin-credit.js';

const CHECKOUT_MIN_AMOUNT_KEY = 'billing.checkout.min_amount';
const CHECKOUT_MAX_AMOUNT_KEY = 'billing.checkout.max_amount';
const REFUND_WINDOW_KEY = 'billing.refund.window';

/** What one checkout may top up, in minor units, both ends allowed. */
export interface CheckoutBounds {
  min: bigint;
  max: bigint;
}

/**
 * The organization's policy snapshot, only when IAM's read model is fresh:
 * payment initiation and refunds fail closed (seed 002), so a missing or
 * stale snapshot refuses with POLICY_SNAPSHOT_STALE rather than guessing.
 */
export function freshPolicySnapshot(source: PolicySource, organizationId: string): PolicySnapshot {
  requireFreshPolicy({ ageMs: source.ageMs() });
  const snapshot = source.policy(organizationId);
  if (!snapshot) throw new AppError('POLICY_SNAPSHOT_STALE', 'Policy is temporarily unavailable; retry shortly', { details: { organizationId } });
  return snapshot;
}

/** `billing.checkout.min_amount` and `billing.checkout.max_amount` at the organization. */
export function checkoutBounds(snapshot: PolicySnapshot): CheckoutBounds {
  const min = policyUnits(snapshot, CHECKOUT_MIN_AMOUNT_KEY, 'a positive integer');
  const max = policyUnits(snapshot, CHECKOUT_MAX_AMOUNT_KEY, 'a positive integer');
  if (max < min) {
    throw new AppError('POLICY_VALUE_INVALID', `${CHECKOUT_MAX_AMOUNT_KEY} must not be below ${CHECKOUT_MIN_AMOUNT_KEY}`, {
      details: { key: CHECKOUT_MAX_AMOUNT_KEY, min: min.toString(), max: max.toString() },
    });
  }
  return { min, max };
}

/** `billing.refund.window` at the organization, in seconds: how long after its credit a payment may be refunded. */
export function refundWindowSeconds(snapshot: PolicySnapshot): number {
  return Number(policyUnits(snapshot, REFUND_WINDOW_KEY, 'a positive duration'));
}

/** The key's value in force at the organization on its exact scale (minor units, seconds); zero or less is refused as a misconfiguration. */
function policyUnits(snapshot: PolicySnapshot, key: string, expected: string): bigint {
  const effective = effectivePolicy(snapshot, {}, key);
  const parsed = parsePolicyValue(snapshot.keys[key]!, effective.value);
  if (!parsed.ok || parsed.exact.scale !== 0 || parsed.exact.units <= 0n) {
    throw new AppError('POLICY_VALUE_INVALID', `${key} must be ${expected}`, { details: { key, level: effective.level } });
  }
  return parsed.exact.units;
}
