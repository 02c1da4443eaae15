import { AppError } from '@aifactory/errors';
import Stripe from 'stripe';
import type {
  CheckoutSessionRequest,
  PaymentProvider,
  ProviderCheckoutSession,
  ProviderPaymentIntent,
  ProviderRefund,
  RefundRequestToProvider,
} from '../domain/payment-provider.js';

export interface StripePaymentProviderOptions {
  /**
   * The secret key, or where to read it before each call (billing's reloaded
   * STRIPE_API_KEY_FILE: a rolled key is used from the next call on, without a
   * restart). Never logged, never in an error.
   */
  apiKey: string | (() => string);
  /** STRIPE_API_URL: another Stripe API than api.stripe.com (the local fake). */
  apiUrl?: string | undefined;
  /** STRIPE_TIMEOUT_MS: a call that takes longer counts as Stripe unavailable. */
  timeoutMs: number;
  /**
   * Hears every call's outcome, for the reachability gauge: reachable when
   * Stripe answered with anything but a server error (a refusal is an answer).
   */
  onReachability?: (reachable: boolean) => void;
}

/** What the buyer sees on Stripe's page for a top-up. */
const TOP_UP_PRODUCT_NAME = 'AI Factory balance top-up';

/** The `stripe` library's host/port/protocol for an API URL (`http://127.0.0.1:12111`). */
export function stripeApiAddress(apiUrl: string): { host: string; port: number; protocol: 'http' | 'https' } {
  const url = new URL(apiUrl);
  const protocol = url.protocol === 'http:' ? 'http' : 'https';
  return { host: url.hostname, port: url.port === '' ? (protocol === 'http' ? 80 : 443) : Number(url.port), protocol };
}

/**
 * Billing's payment provider over Stripe's API. Every call that creates
 * something is sent with the caller's idempotency key, so a retry after a
 * crash or a lost answer finds what the first call made. The library does
 * not retry by itself: the callers (checkout, the webhook worker, refunds)
 * decide, and payment initiation fails closed at once (seed 002).
 */
export class StripePaymentProvider implements PaymentProvider {
  private readonly apiKey: () => string;
  private readonly config: Stripe.StripeConfig;
  private client: { apiKey: string; stripe: Stripe };
  private readonly onReachability: ((reachable: boolean) => void) | undefined;

  constructor(options: StripePaymentProviderOptions) {
    const { apiKey } = options;
    this.apiKey = typeof apiKey === 'string' ? () => apiKey : apiKey;
    this.config = {
      // Pinned: objects are read with the shapes of the version the library was built for.
      apiVersion: Stripe.API_VERSION,
      maxNetworkRetries: 0,
      timeout: options.timeoutMs,
      telemetry: false,
      ...(options.apiUrl === undefined ? {} : stripeApiAddress(options.apiUrl)),
    };
    this.client = this.clientFor(this.apiKey());
    this.onReachability = options.onReachability;
  }

  /** The client of the current key; a new one once the key rolled (calls already under way finish with the old). */
  private get stripe(): Stripe {
    const apiKey = this.apiKey();
    if (apiKey !== this.client.apiKey) this.client = this.clientFor(apiKey);
    return this.client.stripe;
  }

  private clientFor(apiKey: string): { apiKey: string; stripe: Stripe } {
    return { apiKey, stripe: new Stripe(apiKey, this.config) };
  }

  async createCustomer(input: { organizationId: string }, idempotencyKey: string): Promise<{ id: string }> {
    const customer = await this.call(() => this.stripe.customers.create({ metadata: { organizationId: input.organizationId } }, { idempotencyKey }));
    return { id: customer.id };
  }

  async createCheckoutSession(input: CheckoutSessionRequest, idempotencyKey: string): Promise<ProviderCheckoutSession> {
    const metadata = { paymentSessionId: input.paymentSessionId, organizationId: input.organizationId };
    const session = await this.call(() =>
      this.stripe.checkout.sessions.create(
        {
          mode: 'payment',
          customer: input.customerId,
          client_reference_id: input.paymentSessionId,
          metadata,
          // The payment intent, its charge and so refunds and disputes carry them too.
          payment_intent_data: { metadata },
          line_items: [
            {
              quantity: 1,
              price_data: { currency: input.currency.toLowerCase(), unit_amount: stripeAmount(input.amount), product_data: { name: TOP_UP_PRODUCT_NAME } },
            },
          ],
          success_url: input.successUrl,
          cancel_url: input.cancelUrl,
        },
        { idempotencyKey },
      ),
    );
    return checkoutSessionOf(session);
  }

  async retrieveCheckoutSession(id: string): Promise<ProviderCheckoutSession> {
    return checkoutSessionOf(await this.call(() => this.stripe.checkout.sessions.retrieve(id)));
  }

  async retrievePaymentIntent(id: string): Promise<ProviderPaymentIntent> {
    const intent = await this.call(() => this.stripe.paymentIntents.retrieve(id));
    return {
      id: intent.id,
      // A status billing does not know is read as neither failed nor paid: still processing.
      status: known(PAYMENT_INTENT_STATUSES, intent.status) ?? 'processing',
      amount: BigInt(intent.amount),
      currency: intent.currency.toUpperCase(),
    };
  }

  async createRefund(input: RefundRequestToProvider, idempotencyKey: string): Promise<ProviderRefund> {
    const refund = await this.call(() =>
      this.stripe.refunds.create(
        {
          payment_intent: input.paymentIntentId,
          amount: stripeAmount(input.amount),
          metadata: { refundRequestId: input.refundRequestId, organizationId: input.organizationId },
        },
        { idempotencyKey },
      ),
    );
    return refundOf(refund);
  }

  async listRefunds(chargeId: string): Promise<ProviderRefund[]> {
    return this.call(async () => {
      const refunds: ProviderRefund[] = [];
      for await (const refund of this.stripe.refunds.list({ charge: chargeId, limit: 100 })) refunds.push(refundOf(refund));
      return refunds;
    });
  }

  async createPortalSession(input: { customerId: string; returnUrl: string }): Promise<{ url: string }> {
    const session = await this.call(() => this.stripe.billingPortal.sessions.create({ customer: input.customerId, return_url: input.returnUrl }));
    return { url: session.url };
  }

  async probe(): Promise<void> {
    await this.call(() => this.stripe.customers.list({ limit: 1 }));
  }

  private async call<T>(operation: () => Promise<T>): Promise<T> {
    let result: T;
    try {
      result = await operation();
    } catch (error) {
      throw this.providerError(error);
    }
    this.onReachability?.(true);
    return result;
  }

  /** Stripe's failure in billing's codes; anything that is not Stripe's (a defect) goes on as it is. */
  private providerError(error: unknown): unknown {
    if (!(error instanceof Stripe.errors.StripeError)) return error;
    const status = error.statusCode;
    this.onReachability?.(status !== undefined && status < 500);
    const cause = new Error(redactKeys(`Stripe ${error.type} (${status ?? 'no answer'}): ${error.message}`));
    // A connection failure or timeout, a server error, rate limiting, or a conflict (409: another request with the same
    // idempotency key is still running) or anything Stripe marks retryable: Stripe may take it later. None is a refusal,
    // which would fail a refund request whose refund the concurrent call is creating.
    if (status === undefined || status >= 500 || status === 429 || status === 409 || status < 400 || error.headers?.['stripe-should-retry'] === 'true') {
      return new AppError('PAYMENT_PROVIDER_UNAVAILABLE', 'The payment provider is unavailable; try again later', { cause });
    }
    const stripeType = error.rawType ?? error.type;
    return new AppError('PAYMENT_PROVIDER_REFUSED', `The payment provider refused the request: ${stripeType}`, {
      cause,
      details: { stripeCode: error.code ?? null, stripeType },
    });
  }
}

/** Stripe takes amounts as JSON numbers; billing's bounds keep them far below 2^53. */
function stripeAmount(amount: bigint): number {
  const value = Number(amount);
  if (!Number.isSafeInteger(value)) throw new RangeError(`amount ${amount} does not fit a Stripe amount`);
  return value;
}

/** Stripe's own messages may quote a key (masked or not): none leaves this module. */
function redactKeys(text: string): string {
  return text.replace(/\b(sk|rk|pk)_(test|live)_[A-Za-z0-9*]+/g, '$1_$2_[redacted]').replace(/\bwhsec_[A-Za-z0-9*]+/g, 'whsec_[redacted]');
}

function idOf(value: string | { id: string } | null): string | null {
  return value === null ? null : typeof value === 'string' ? value : value.id;
}

function checkoutSessionOf(session: Stripe.Checkout.Session): ProviderCheckoutSession {
  return {
    id: session.id,
    url: session.url,
    // A status this library does not know yet is read as the least final: open and unpaid credit nothing.
    status: known(CHECKOUT_STATUSES, session.status) ?? 'open',
    paymentStatus: known(PAYMENT_STATUSES, session.payment_status) ?? 'unpaid',
    amountTotal: session.amount_total === null ? null : BigInt(session.amount_total),
    currency: session.currency === null ? null : session.currency.toUpperCase(),
    customerId: idOf(session.customer),
    paymentIntentId: idOf(session.payment_intent),
    clientReferenceId: session.client_reference_id,
    expiresAt: new Date(session.expires_at * 1000),
    metadata: { ...session.metadata },
  };
}

const CHECKOUT_STATUSES: ReadonlyArray<ProviderCheckoutSession['status']> = ['open', 'complete', 'expired'];
const PAYMENT_STATUSES: ReadonlyArray<ProviderCheckoutSession['paymentStatus']> = ['paid', 'unpaid', 'no_payment_required'];
const PAYMENT_INTENT_STATUSES: ReadonlyArray<ProviderPaymentIntent['status']> = [
  'requires_payment_method',
  'requires_confirmation',
  'requires_action',
  'processing',
  'requires_capture',
  'canceled',
  'succeeded',
];
const REFUND_STATUSES: ReadonlyArray<ProviderRefund['status']> = ['pending', 'requires_action', 'succeeded', 'failed', 'canceled'];

/** Stripe's status strings are open-ended (new ones appear with API versions): only the ones billing knows. */
function known<T extends string>(values: readonly T[], value: string | null): T | undefined {
  return values.find((candidate) => candidate === value);
}

function refundOf(refund: Stripe.Refund): ProviderRefund {
  return {
    id: refund.id,
    amount: BigInt(refund.amount),
    currency: refund.currency.toUpperCase(),
    // A status billing does not know is not final for it: still pending.
    status: known(REFUND_STATUSES, refund.status) ?? 'pending',
    chargeId: idOf(refund.charge),
    paymentIntentId: idOf(refund.payment_intent),
    metadata: { ...refund.metadata },
  };
}
