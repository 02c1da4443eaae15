import { createHash } from 'node:crypto';
import { z } from 'zod';
import type { Access } from '@aifactory/authz';
import { AppError, isAppError, parseInput } from '@aifactory/errors';
import type { Principal } from '@aifactory/service-auth';
import { actorOf } from '@aifactory/subgraph-kit';
import type { PaymentSessionRecord, PaymentSessionStore } from '../data/payment-sessions-store.js';
import { freshSnapshot, type PolicySource } from './admin-credit.js';
import type { Ledger } from './ledger.js';
import { formatAmount, parseAmount } from './money.js';
import type { PaymentProvider } from './payment-provider.js';
import { checkoutBounds } from './payment-policy.js';

/** Who may start a top-up or open the customer portal: the organization's billing admins (org_admin holds it). */
const BILLING_MANAGE = 'platform:billing:manage';

/**
 * Seed 004's rule for the Idempotency-Key header (printable ASCII, at most
 * 255 characters), as the gateway and the subgraph kit check it: the Stripe
 * key is derived from it, so any key the gateway takes serves.
 */
const IDEMPOTENCY_KEY = /^[\x20-\x7e]{1,255}$/;

const checkoutInput = z.object({ organizationId: z.uuid(), amount: z.string() });
const organizationIdInput = z.uuid();

export type CreateCheckoutSessionInput = z.input<typeof checkoutInput>;

/** Who starts a checkout: the request's principal, authorization, correlation id, policy source and Idempotency-Key header. */
export interface CheckoutCaller {
  principal: Principal;
  access: Access;
  correlationId: string;
  accessModel: PolicySource;
  idempotencyKey?: string | undefined;
}

export interface CheckoutOptions {
  /** BILLING_CHECKOUT_SUCCESS_URL and BILLING_CHECKOUT_CANCEL_URL: where Stripe Checkout sends the customer back. */
  successUrl: string;
  cancelUrl: string;
  /** BILLING_PORTAL_RETURN_URL. */
  portalReturnUrl: string;
}

/**
 * A payment session's id and the Stripe idempotency key of its checkout,
 * both from (organization, Idempotency-Key): a retry after a crash between
 * Stripe's answer and our insert sends Stripe the same key with the same
 * parameters and gets the session it created before, so there is never a
 * second payable one. The id is a UUID (version 8, RFC 9562) made of the
 * hash's first 16 bytes.
 */
export function checkoutIdentity(organizationId: string, idempotencyKey: string): { paymentSessionId: string; stripeIdempotencyKey: string } {
  const hash = createHash('sha256').update(`${organizationId}:${idempotencyKey}`).digest();
  const bytes = Buffer.from(hash.subarray(0, 16));
  bytes[6] = (bytes[6]! & 0x0f) | 0x80;
  bytes[8] = (bytes[8]! & 0x3f) | 0x80;
  const hex = bytes.toString('hex');
  return {
    paymentSessionId: `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`,
    stripeIdempotencyKey: `checkout:${hash.toString('hex')}`,
  };
}

/**
 * Stripe Checkout top-ups (issue 18) and the customer portal. A checkout is
 * idempotent through the request's Idempotency-Key and fails closed (seed
 * 002): without a fresh policy snapshot or with Stripe unreachable it is
 * refused and no session is recorded. The session is recorded `initiated`
 * only after Stripe created it; its settlement is PaymentSettlement's.
 */
export class Checkout {
  constructor(
    private readonly ledger: Ledger,
    private readonly provider: PaymentProvider,
    private readonly store: PaymentSessionStore,
    private readonly options: CheckoutOptions,
  ) {}

  async createCheckoutSession(caller: CheckoutCaller, input: CreateCheckoutSessionInput): Promise<PaymentSessionRecord> {
    const { organizationId, amount: amountText } = parseInput(checkoutInput, input);
    const idempotencyKey = requiredIdempotencyKey(caller.idempotencyKey);
    caller.access.require(BILLING_MANAGE, { organizationId });
    const amount = parseAmount(amountText, 'amount');

    const existing = await this.store.findByKey(organizationId, idempotencyKey);
    if (existing) return sameCheckout(existing, amount);

    const { min, max } = checkoutBounds(freshSnapshot(caller.accessModel, organizationId));
    if (amount < min || amount > max) {
      throw new AppError('BILLING_CHECKOUT_AMOUNT_OUT_OF_BOUNDS', `A top-up must be between ${min} and ${max} minor units`, {
        details: { field: 'amount', amount: formatAmount(amount), min: formatAmount(min), max: formatAmount(max) },
      });
    }
    const { currency } = await this.ledger.organizationAccounts(organizationId);
    const customerId = await this.customerOf(organizationId);
    const { paymentSessionId, stripeIdempotencyKey } = checkoutIdentity(organizationId, idempotencyKey);
    const stripeSession = await reusedKeyRefused(idempotencyKey, () =>
      this.provider.createCheckoutSession(
        {
          customerId,
          paymentSessionId,
          organizationId,
          amount,
          currency,
          successUrl: this.options.successUrl,
          cancelUrl: this.options.cancelUrl,
        },
        stripeIdempotencyKey,
      ),
    );
    const stored = await this.store.insertInitiated({
      id: paymentSessionId,
      organizationId,
      amount,
      currency,
      idempotencyKey,
      stripeSessionId: stripeSession.id,
      stripeCustomerId: customerId,
      url: stripeSession.url,
      expiresAt: stripeSession.expiresAt,
      createdBy: actorOf(caller.principal),
      correlationId: caller.correlationId,
    });
    // A concurrent request with the same key may have inserted first.
    return sameCheckout(stored, amount);
  }

  /** A Stripe customer portal session where the organization's billing admins manage payment methods and invoices. */
  async createPortalSession(caller: { access: Access }, organizationId: string): Promise<{ url: string }> {
    const id = parseInput(organizationIdInput, organizationId);
    caller.access.require(BILLING_MANAGE, { organizationId: id });
    await this.ledger.organizationAccounts(id);
    const customerId = await this.customerOf(id);
    return this.provider.createPortalSession({ customerId, returnUrl: this.options.portalReturnUrl });
  }

  /** The organization's Stripe customer, created once: concurrent first checkouts send Stripe the same key and get the same customer. */
  private async customerOf(organizationId: string): Promise<string> {
    const known = await this.store.customerOf(organizationId);
    if (known !== undefined) return known;
    const customer = await this.provider.createCustomer({ organizationId }, `customer:${organizationId}`);
    return this.store.saveCustomer(organizationId, customer.id);
  }
}

function requiredIdempotencyKey(key: string | undefined): string {
  if (key === undefined || key === '') {
    throw new AppError('IDEMPOTENCY_KEY_REQUIRED', 'A checkout needs an Idempotency-Key header: the same key returns the same session');
  }
  if (!IDEMPOTENCY_KEY.test(key)) {
    throw new AppError('IDEMPOTENCY_KEY_INVALID', 'The Idempotency-Key header must be 1-255 printable ASCII characters (a UUID serves)');
  }
  return key;
}

/** The session recorded under the key, when it was for this amount; another amount under the same key is refused. */
function sameCheckout(session: PaymentSessionRecord, amount: bigint): PaymentSessionRecord {
  if (session.amount !== amount) {
    throw new AppError('IDEMPOTENCY_KEY_REUSED', 'This idempotency key was already used for a checkout of another amount', {
      details: { paymentSessionId: session.id, amount: formatAmount(session.amount) },
    });
  }
  return session;
}

/**
 * Stripe refuses a key it saw with other parameters: after a crash the key's
 * first checkout exists only at Stripe, so another amount under the same key
 * is the client reusing its key.
 */
async function reusedKeyRefused<T>(idempotencyKey: string, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    if (isAppError(error) && error.code === 'PAYMENT_PROVIDER_REFUSED' && error.details?.['stripeType'] === 'idempotency_error') {
      throw new AppError('IDEMPOTENCY_KEY_REUSED', 'This idempotency key was already used for a checkout of another amount', {
        details: { idempotencyKey },
        cause: error,
      });
    }
    throw error;
  }
}
