/**
 * Payments on a private billing database against the local fake Stripe:
 * the real Checkout and PaymentSettlement over StripePaymentProvider, with
 * fresh policy by default. Stripe's events are handed to the handlers as the
 * webhook worker would after storing them (`handle`), so a test drives a
 * payment with the fake's scenario drivers and settles it without the
 * webhook route. Refund and dispute tests start from `creditedPayment`.
 */
import { randomUUID } from 'node:crypto';
import type { PolicySnapshot } from '@aifactory/authz';
import { startFakeStripe, type FakeStripe, type StripeEventJson } from '@aifactory/stripe-fake';
import { uniqueEventSubjectPrefix } from '@aifactory/testing';
import { PaymentSessionStore, type PaymentSessionRecord } from '../src/data/payment-sessions-store.js';
import { Checkout, type CheckoutCaller, type CheckoutOptions } from '../src/domain/checkout.js';
import { PaymentSettlement } from '../src/domain/payment-settlement.js';
import type { StoredStripeEvent, StripeEventHandlers, StripeEventOutcome } from '../src/domain/stripe-events.js';
import { StripePaymentProvider } from '../src/stripe/stripe-payment-provider.js';
import { billingAccess, orgAdmin, policySource, type BillingAccess } from './billing-access.js';
import { startBillingFixture, type BillingFixture } from './billing-fixture.js';

export const CHECKOUT_URLS: CheckoutOptions = {
  successUrl: 'http://localhost:3000/billing/checkout/success',
  cancelUrl: 'http://localhost:3000/billing/checkout/cancel',
  portalReturnUrl: 'http://localhost:3000/billing',
};

/** IAM's read model as a checkout reads it; `ageMs` null or past five minutes is stale. */
export interface TestPolicySource {
  ageMs(): number | null;
  policy(organizationId: string): PolicySnapshot | undefined;
}

export interface PaymentFixture {
  fx: BillingFixture;
  stripe: FakeStripe;
  provider: StripePaymentProvider;
  store: PaymentSessionStore;
  checkout: Checkout;
  settlement: PaymentSettlement;
  access: BillingAccess;
  /** The subject prefix of the outbox events written. */
  subjectPrefix: string;
  /** An org admin's checkout caller with a fresh policy snapshot (or `policy`) and a new Idempotency-Key unless given. */
  checkoutCaller(organizationId: string, options?: { idempotencyKey?: string | undefined; policy?: TestPolicySource }): CheckoutCaller;
  /** Hands a Stripe event to its handler, as the webhook worker does once the event is stored; handlers default to the settlement's. */
  handle(event: StripeEventJson, handlers?: StripeEventHandlers): Promise<StripeEventOutcome>;
  /** A session checked out through Checkout, paid at the fake and settled: credited, with its real pi_ at the fake. */
  creditedPayment(organizationId: string, amount: bigint): Promise<{ session: PaymentSessionRecord; paymentIntentId: string }>;
  /** The organization's paid balance and what its disputes hold. */
  money(organizationId: string): Promise<{ paid: bigint; held: bigint }>;
  close(): Promise<void>;
}

/** The event as billing stores it (stripe_events) and hands it to a handler. */
export function storedEvent(event: StripeEventJson): StoredStripeEvent {
  return {
    id: event.id,
    type: event.type,
    object: event.data.object,
    correlationId: `stripe-${event.id}`,
  };
}

export async function startPaymentFixture(options: { poolSize?: number } = {}): Promise<PaymentFixture> {
  const fx = await startBillingFixture(options);
  const stripe = await startFakeStripe();
  const provider = new StripePaymentProvider({ apiKey: stripe.apiKey, apiUrl: stripe.url, timeoutMs: 5_000 });
  const store = new PaymentSessionStore(fx.database.pool);
  const subjectPrefix = uniqueEventSubjectPrefix();
  const checkout = new Checkout(fx.ledger, provider, store, CHECKOUT_URLS);
  const settlement = new PaymentSettlement(fx.database.pool, fx.ledger, provider, store, { subjectPrefix });
  const access = billingAccess();

  const checkoutCaller: PaymentFixture['checkoutCaller'] = (organizationId, callerOptions = {}) => ({
    ...access.caller(orgAdmin(organizationId)),
    accessModel: callerOptions.policy ?? policySource(),
    idempotencyKey: 'idempotencyKey' in callerOptions ? callerOptions.idempotencyKey : randomUUID(),
  });

  const handle: PaymentFixture['handle'] = async (event, handlers = settlement.handlers) => {
    const handler = handlers[event.type];
    if (!handler) throw new Error(`no handler for ${event.type}`);
    return handler(storedEvent(event));
  };

  return {
    fx,
    stripe,
    provider,
    store,
    checkout,
    settlement,
    access,
    subjectPrefix,
    checkoutCaller,
    handle,
    creditedPayment: async (organizationId, amount) => {
      const created = await checkout.createCheckoutSession(checkoutCaller(organizationId), { organizationId, amount: amount.toString() });
      const completed = await stripe.completeCheckout(created.stripeSessionId);
      await handle(completed);
      const session = (await store.find(created.id))!;
      if (session.status !== 'credited' || session.stripePaymentIntentId === null) {
        throw new Error(`payment session ${session.id} ended ${session.status}, not credited`);
      }
      return { session, paymentIntentId: session.stripePaymentIntentId };
    },
    money: async (organizationId) => {
      const { rows } = await fx.admin.query<{ paid: string; held: string | null }>(
        `SELECT f.paid,
                (SELECT sum(b.credits_posted - b.debits_posted) FROM account_balances b JOIN accounts a ON a.id = b.account_id
                  WHERE a.organization_id = f.organization_id AND a.kind = 'disputes_held')::int8 AS held
         FROM organization_funds f WHERE f.organization_id = $1`,
        [organizationId],
      );
      return { paid: BigInt(rows[0]!.paid), held: BigInt(rows[0]!.held ?? '0') };
    },
    close: async () => {
      await stripe.close();
      await fx.close();
    },
  };
}
