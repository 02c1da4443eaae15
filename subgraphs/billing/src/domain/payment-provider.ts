/**
 * What billing asks of its payment provider (Stripe), in billing's own
 * terms: amounts are integer minor units, currencies upper-case ISO 4217.
 * `StripePaymentProvider` (src/stripe/) implements it over the `stripe`
 * library; tests and the dev stack point that library at the local fake
 * Stripe (@aifactory/stripe-fake). Every call that creates something takes
 * the Stripe idempotency key it is sent with. A call that could not reach
 * Stripe, or that Stripe answered with a server error, throws AppError
 * PAYMENT_PROVIDER_UNAVAILABLE, and so does a 409 or 429 (Stripe may take
 * it later); one Stripe refused (any other 4xx) throws
 * PAYMENT_PROVIDER_REFUSED with Stripe's code and type in details
 * (`stripeCode`, `stripeType`).
 */
export interface PaymentProvider {
  createCustomer(input: { organizationId: string }, idempotencyKey: string): Promise<{ id: string }>;
  createCheckoutSession(input: CheckoutSessionRequest, idempotencyKey: string): Promise<ProviderCheckoutSession>;
  retrieveCheckoutSession(id: string): Promise<ProviderCheckoutSession>;
  /**
   * A checkout session's payment intent: whether a delayed payment is still
   * processing, failed or succeeded when the session alone (complete, unpaid)
   * does not say.
   */
  retrievePaymentIntent(id: string): Promise<ProviderPaymentIntent>;
  createRefund(input: RefundRequestToProvider, idempotencyKey: string): Promise<ProviderRefund>;
  /** Every refund of a charge (charge.refunded names the charge; its refunds are read here). */
  listRefunds(chargeId: string): Promise<ProviderRefund[]>;
  createPortalSession(input: { customerId: string; returnUrl: string }): Promise<{ url: string }>;
  /** A cheap authenticated read, for the reachability gauge. */
  probe(): Promise<void>;
}

export interface CheckoutSessionRequest {
  customerId: string;
  /** Billing's payment session id: Stripe's client_reference_id and metadata.paymentSessionId. */
  paymentSessionId: string;
  organizationId: string;
  amount: bigint;
  currency: string;
  successUrl: string;
  cancelUrl: string;
}

export interface ProviderCheckoutSession {
  id: string;
  url: string | null;
  status: 'open' | 'complete' | 'expired';
  paymentStatus: 'paid' | 'unpaid' | 'no_payment_required';
  /** amount_total, when Stripe reports one. */
  amountTotal: bigint | null;
  currency: string | null;
  customerId: string | null;
  paymentIntentId: string | null;
  clientReferenceId: string | null;
  expiresAt: Date | null;
  metadata: Record<string, string>;
}

export interface ProviderPaymentIntent {
  id: string;
  /** `requires_payment_method` after a failed attempt (a delayed debit that bounced), `canceled` when given up. */
  status: 'requires_payment_method' | 'requires_confirmation' | 'requires_action' | 'processing' | 'requires_capture' | 'canceled' | 'succeeded';
  amount: bigint;
  currency: string;
}

export interface RefundRequestToProvider {
  paymentIntentId: string;
  amount: bigint;
  /** Billing's refund request id: metadata.refundRequestId. */
  refundRequestId: string;
  organizationId: string;
}

export interface ProviderRefund {
  id: string;
  amount: bigint;
  currency: string;
  status: 'pending' | 'requires_action' | 'succeeded' | 'failed' | 'canceled';
  chargeId: string | null;
  paymentIntentId: string | null;
  metadata: Record<string, string>;
}
