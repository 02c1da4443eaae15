import { z } from 'zod';
import { SUBJECT_FAMILIES } from '../subjects.js';
import { defineEvent } from './definition.js';

/** Integer minor units as events carry them: a string, negative for a balance below zero. */
const minorUnits = z.string().regex(/^-?(0|[1-9][0-9]*)$/);

/**
 * What both balance alerts say: the organization's spendable balance (paid
 * plus promotional, which may be below zero: only delivered service takes it
 * there) against the low-balance threshold in force when it was checked.
 */
const balanceAlertFields = {
  organizationId: z.uuid(),
  /** ISO 4217, the organization's billing currency. */
  currency: z.string().regex(/^[A-Z]{3}$/),
  balance: minorUnits,
  /** `billing.balance.low_warning_threshold` at the organization, in minor units. */
  threshold: minorUnits,
  announcedAt: z.iso.datetime({ offset: true }),
};

export const balanceLowWarningPayloadSchema = z.object({
  ...balanceAlertFields,
  /** `crossed`: the balance went to or below the threshold; `still_low`: a reminder, 24 h or more after the last one. */
  reason: z.enum(['crossed', 'still_low']),
});
export type BalanceLowWarningPayload = z.infer<typeof balanceLowWarningPayloadSchema>;

export const balanceDepletedPayloadSchema = z.object({
  ...balanceAlertFields,
  /** Depletion is announced once per crossing to zero or below, never as a reminder. */
  reason: z.literal('crossed'),
});
export type BalanceDepletedPayload = z.infer<typeof balanceDepletedPayloadSchema>;

/**
 * Balance alerts (seed 004: low_balance_warning, balance_depleted). The
 * aggregate is the organization's balance alerts: every announcement of
 * either kind is its next version, so consumers see them in order.
 */
export const balanceLowWarningV1 = defineEvent({
  type: 'platform.billing.balance.low_warning',
  version: 1,
  subject: `${SUBJECT_FAMILIES.platformBilling}.balance.low_warning`,
  kind: 'state',
  aggregateType: 'organization_balance',
  description:
    "An organization's balance went to or below its low-balance threshold, or is still there 24 h after the last warning.",
  payload: balanceLowWarningPayloadSchema,
});

export const balanceDepletedV1 = defineEvent({
  type: 'platform.billing.balance.depleted',
  version: 1,
  subject: `${SUBJECT_FAMILIES.platformBilling}.balance.depleted`,
  kind: 'state',
  aggregateType: 'organization_balance',
  description: "An organization's balance went to zero or below; announced again only after it rose above zero.",
  payload: balanceDepletedPayloadSchema,
});

export const balanceCreditedPayloadSchema = z.object({
  organizationId: z.uuid(),
  paymentSessionId: z.uuid(),
  /** The ledger posting that credited it: `payment:<paymentSessionId>`. */
  postingId: z.string().min(1),
  /** What the payment credited, in minor units: always above zero. */
  amount: z.string().regex(/^[1-9][0-9]*$/),
  /** ISO 4217, the organization's billing currency. */
  currency: z.string().regex(/^[A-Z]{3}$/),
  /** The organization's paid balance right after the credit (promotional credit apart); below zero when usage had taken it there. */
  balance: z.object({ paid: minorUnits }),
});
export type BalanceCreditedPayload = z.infer<typeof balanceCreditedPayloadSchema>;

/**
 * A Stripe payment credited an organization's balance (seed 004:
 * balance_credited), written in the transaction that posts the credit. Its
 * aggregate is the payment session, not the organization balance: the
 * balance alerts own that aggregate's versions, and a session is credited at
 * most once, so the event is always version 1 of its session and the
 * outbox's unique aggregate version refuses a second announcement.
 */
export const balanceCreditedV1 = defineEvent({
  type: 'platform.billing.balance.credited',
  version: 1,
  subject: `${SUBJECT_FAMILIES.platformBilling}.balance.credited`,
  kind: 'state',
  aggregateType: 'payment_session',
  description: "A paid Stripe checkout credited an organization's balance.",
  payload: balanceCreditedPayloadSchema,
});

export const BILLING_EVENTS = [balanceLowWarningV1, balanceDepletedV1, balanceCreditedV1] as const;
