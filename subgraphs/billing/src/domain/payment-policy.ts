import { effectivePolicy, parsePolicyValue, type PolicySnapshot } from '@aifactory/authz';
import { AppError } from '@aifactory/errors';

const CHECKOUT_MIN_AMOUNT_KEY = 'billing.checkout.min_amount';
const CHECKOUT_MAX_AMOUNT_KEY = 'billing.checkout.max_amount';
const REFUND_WINDOW_KEY = 'billing.refund.window';

/** What one checkout may top up, in minor units, both ends allowed. */
export interface CheckoutBounds {
  min: bigint;
  max: bigint;
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
