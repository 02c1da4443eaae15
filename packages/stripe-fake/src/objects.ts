import { randomBytes } from 'node:crypto';

/**
 * The Stripe objects the fake keeps, shaped like Stripe's API answers them
 * (snake_case, amounts integer minor units, currencies lower-case, times in
 * Unix seconds), with only the fields billing and its tests read.
 */

export interface FakeCustomer {
  id: string;
  object: 'customer';
  created: number;
  email: string | null;
  name: string | null;
  description: string | null;
  metadata: Record<string, string>;
  livemode: false;
}

export interface FakeCheckoutSession {
  id: string;
  object: 'checkout.session';
  mode: 'payment';
  amount_subtotal: number;
  amount_total: number;
  currency: string;
  customer: string | null;
  client_reference_id: string | null;
  metadata: Record<string, string>;
  /** Set when the session completes. */
  payment_intent: string | null;
  payment_status: 'paid' | 'unpaid' | 'no_payment_required';
  status: 'open' | 'complete' | 'expired';
  success_url: string | null;
  cancel_url: string | null;
  /** The hosted payment page, on the fake itself; null once the session is no longer open (as Stripe). */
  url: string | null;
  expires_at: number;
  created: number;
  livemode: false;
}

export interface FakePaymentIntent {
  id: string;
  object: 'payment_intent';
  amount: number;
  amount_received: number;
  currency: string;
  customer: string | null;
  status: 'processing' | 'requires_payment_method' | 'succeeded';
  latest_charge: string | null;
  metadata: Record<string, string>;
  created: number;
  livemode: false;
}

export interface FakeCharge {
  id: string;
  object: 'charge';
  amount: number;
  amount_captured: number;
  amount_refunded: number;
  currency: string;
  customer: string | null;
  payment_intent: string;
  paid: true;
  captured: true;
  refunded: boolean;
  disputed: boolean;
  status: 'succeeded';
  metadata: Record<string, string>;
  created: number;
  livemode: false;
}

export interface FakeRefund {
  id: string;
  object: 'refund';
  amount: number;
  currency: string;
  charge: string;
  payment_intent: string;
  status: 'succeeded';
  reason: string | null;
  metadata: Record<string, string>;
  created: number;
}

export interface FakeDispute {
  id: string;
  object: 'dispute';
  amount: number;
  currency: string;
  charge: string;
  payment_intent: string;
  status: 'needs_response' | 'won' | 'lost';
  reason: string;
  is_charge_refundable: false;
  metadata: Record<string, string>;
  created: number;
  livemode: false;
}

export interface FakePortalSession {
  id: string;
  object: 'billing_portal.session';
  customer: string;
  return_url: string | null;
  url: string;
  created: number;
  livemode: false;
}

/** A Stripe event as Stripe sends it to a webhook endpoint. */
export interface StripeEventJson {
  id: string;
  object: 'event';
  api_version: string;
  created: number;
  type: string;
  /** A snapshot of the object as it was when the event happened. */
  data: { object: Record<string, unknown> };
  livemode: false;
  /** Always set on the fake's own events; optional so that a test can hand-craft one for deliver(). */
  pending_webhooks?: number;
  /** The API request that caused it; null id for what happened in Stripe (a payment, the dashboard). */
  request?: { id: string | null; idempotency_key: string | null };
}

export interface StripeList<T> {
  object: 'list';
  data: T[];
  has_more: boolean;
  url: string;
}

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

/** `<prefix><24 alphanumerics>`, like Stripe's ids (`cs_test_a1B2...`, `pi_3N...`). */
export function stripeId(prefix: string): string {
  return prefix + [...randomBytes(24)].map((byte) => ALPHABET[byte % ALPHABET.length]).join('');
}

export function unixNow(): number {
  return Math.floor(Date.now() / 1000);
}
