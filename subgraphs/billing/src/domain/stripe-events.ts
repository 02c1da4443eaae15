import type { Actor } from '@aifactory/contracts';

/** Who Stripe's webhook events post and settle as: their ledger postings and outbox events name it. */
export const STRIPE_WEBHOOK_ACTOR: Actor = { type: 'system', id: 'billing.stripe-webhooks' };

/**
 * A Stripe event as billing stored it (stripe_events), handed to the handler
 * of its type by the webhook worker. Handlers are idempotent (their ledger
 * postings have ids derived from Stripe's ids), run their own transactions
 * and may call Stripe; one that throws is retried with backoff and, after
 * the last attempt, the event is dead-lettered for finance.
 */
export interface StoredStripeEvent {
  /** Stripe's event id (evt_...). */
  id: string;
  type: string;
  /** The event's `data.object` as Stripe sent it (a checkout session, charge, dispute, ...). */
  object: Record<string, unknown>;
  /** The webhook request's correlation id: the handler's postings and outbox events carry it. */
  correlationId: string;
}

/** What handling an event found, stored on the event. */
export interface StripeEventOutcome {
  /**
   * Finance should look at it (`flagReason`): an event for a checkout session
   * billing does not know, a refund or dispute of no Checkout payment or of one
   * that ended uncredited, a mismatch.
   */
  flag?: string;
  organizationId?: string | null;
  paymentSessionId?: string | null;
}

export type StripeEventHandler = (event: StoredStripeEvent) => Promise<StripeEventOutcome>;

/** Handlers by Stripe event type; a type without one is stored and marked processed, nothing else. */
export type StripeEventHandlers = Readonly<Record<string, StripeEventHandler>>;
