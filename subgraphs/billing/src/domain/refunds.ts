import { randomUUID } from 'node:crypto';
import type pg from 'pg';
import { z } from 'zod';
import type { Access } from '@aifactory/authz';
import { systemClock, type Clock } from '@aifactory/clock';
import type { Actor } from '@aifactory/contracts';
import { AppError, isAppError, parseInput } from '@aifactory/errors';
import type { Principal } from '@aifactory/service-auth';
import { actorOf } from '@aifactory/subgraph-kit';
import { LedgerStore } from '../data/ledger-store.js';
import type { PaymentSessionStatus } from '../data/payment-sessions-store.js';
import { RefundStore, type RefundablePayment, type RefundRequestRecord } from '../data/refunds-store.js';
import { inTransaction, type Tx } from '../data/transactions.js';
import { freshSnapshot, moneyActionKey, type PolicySource } from './admin-credit.js';
import { recordAudit } from './audit.js';
import type { Ledger, PostingResult } from './ledger.js';
import { parseAmount } from './money.js';
import { connectionOf, emptyConnection, pageRequest, type Connection } from './pagination.js';
import type { PaymentProvider, ProviderRefund } from './payment-provider.js';
import { refundWindowSeconds } from './payment-policy.js';
import { BILLING_ADMIN } from './price-books.js';
import { STRIPE_WEBHOOK_ACTOR, type StoredStripeEvent, type StripeEventHandler, type StripeEventHandlers, type StripeEventOutcome } from './stripe-events.js';


const refundInput = z.object({
  paymentSessionId: z.uuid(),
  amount: z.string(),
  reason: z.string().trim().min(1).max(500),
  idempotencyKey: moneyActionKey,
});

export type RefundPaymentInput = z.input<typeof refundInput>;

const stripeId = z.union([z.string(), z.object({ id: z.string() }).transform((object) => object.id)]);
const chargeObject = z.object({
  id: z.string().min(1),
  payment_intent: stripeId.nullish(),
});
/** A refund as charge.refund.updated, refund.updated and refund.failed carry it. */
const refundObject = z.object({
  id: z.string().min(1),
  charge: stripeId.nullish(),
  payment_intent: stripeId.nullish(),
});

/** Who refunds: the request's principal, its authorization and correlation id, and the policy it is judged under. */
export interface RefundingCaller {
  principal: Principal;
  access: Access;
  correlationId: string;
  accessModel: PolicySource;
}

/**
 * Refunds of credited Stripe payments (`refundPayment`, `charge.refunded`).
 * A platform admin's refund is a request that goes requested -> submitted
 * -> refunded -> posted (or failed when Stripe refuses it); it is allowed
 * within `billing.refund.window` of the credit and up to the unspent paid
 * balance, never promotional credit. The posting id is
 * `refund:<stripe refund id>`, so our refund and Stripe's charge.refunded
 * for it post once between them, whichever comes first. A refund event that
 * overtook its payment's credit is retried until the credit lands
 * (`awaitingCredit`).
 */
export class Refunds {
  private readonly store = new RefundStore();
  private readonly funds = new LedgerStore();
  private readonly clock: Clock;

  constructor(
    private readonly pool: pg.Pool,
    private readonly ledger: Ledger,
    private readonly provider: PaymentProvider,
    private readonly options: { subjectPrefix: string; clock?: Clock },
  ) {
    this.clock = options.clock ?? systemClock;
  }

  /**
   * Records the request and its audit record in one transaction that holds
   * the organization's funds row, the lock every posting takes first, so
   * concurrent refunds and charges see each other; then asks Stripe (no
   * connection held) and posts. The same idempotency key again returns the
   * request and carries an unfinished one on: Stripe is called with
   * `refund:<request id>`, so it refunds once however often it is asked.
   */
  async refundPayment(caller: RefundingCaller, input: RefundPaymentInput): Promise<RefundRequestRecord> {
    const valid = parseInput(refundInput, input);
    const amount = parseAmount(valid.amount, 'amount');
    caller.access.requireHolds(BILLING_ADMIN);
    const payment = await this.store.payment(this.pool, valid.paymentSessionId);
    if (!payment) {
      throw new AppError('BILLING_PAYMENT_SESSION_NOT_FOUND', 'No such payment session', { details: { paymentSessionId: valid.paymentSessionId } });
    }
    const { organizationId } = payment;
    caller.access.require(BILLING_ADMIN, { organizationId });
    // Immutable account facts, read before the transactions: each then needs its one connection only.
    const accounts = await this.ledger.organizationAccounts(organizationId);
    await this.ledger.accounts.platformAccount('refunds', accounts.currency);

    const recorded = await inTransaction(this.pool, async (tx) => {
      const funds = (await this.funds.lockFunds(tx, [organizationId])).get(organizationId);
      if (!funds) throw new AppError('BILLING_ORGANIZATION_UNKNOWN', 'Billing has no accounts for this organization yet', { details: { organizationId } });
      const current = (await this.store.payment(tx, payment.id))!;
      const earlier = await this.store.byKey(tx, current.id, valid.idempotencyKey);
      if (earlier) {
        if (earlier.amount !== amount) {
          throw new AppError('IDEMPOTENCY_KEY_REUSED', 'This idempotency key was already used for another refund of this payment', {
            details: { idempotencyKey: valid.idempotencyKey, refundRequestId: earlier.id },
          });
        }
        return { request: earlier, payment: current };
      }
      this.checkRefundable(caller, current);
      const refundable = current.creditedAmount - (await this.store.refundedOfPayment(tx, current.id));
      if (amount > refundable) {
        throw new AppError('BILLING_REFUND_EXCEEDS_PAYMENT', 'The refund is more than what is left of the payment', {
          details: { paymentSessionId: current.id, refundable: refundable.toString() },
        });
      }
      // Promotional credit is never refunded: only the paid balance counts, less refunds already on their way out and
      // less what reservations hold of it (their charges take promotional credit first, the paid balance the rest).
      const reservedOfPaid = funds.reserved > funds.promotional ? funds.reserved - funds.promotional : 0n;
      const unspentPaid = funds.paid - reservedOfPaid - (await this.store.inFlightOfOrganization(tx, organizationId));
      if (amount > unspentPaid) {
        throw new AppError('BILLING_REFUND_EXCEEDS_BALANCE', "The refund is more than the organization's unspent paid balance", {
          details: { organizationId, unspentPaid: (unspentPaid > 0n ? unspentPaid : 0n).toString() },
        });
      }
      const created = await this.store.insert(tx, {
        id: randomUUID(),
        organizationId,
        paymentSessionId: current.id,
        amount,
        currency: current.currency,
        idempotencyKey: valid.idempotencyKey,
        reason: valid.reason,
        requestedBy: actorOf(caller.principal),
        correlationId: caller.correlationId,
      });
      await recordAudit(
        tx,
        {
          action: 'billing.payment.refund',
          caller,
          scope: BILLING_ADMIN,
          resource: { organizationId, type: 'payment_session', id: current.id },
          reason: valid.reason,
          details: {
            refundRequestId: created.id,
            paymentSessionId: current.id,
            amount: amount.toString(),
            currency: current.currency,
            idempotencyKey: valid.idempotencyKey,
          },
        },
        { subjectPrefix: this.options.subjectPrefix },
      );
      return { request: created, payment: current };
    });
    return this.carryOn(recorded.request, recorded.payment);
  }

  /** The organization's refund requests, oldest first (platform admins). */
  async requests(access: Access, organizationId: string, args: { first?: number | null; after?: string | null }): Promise<Connection<RefundRequestRecord>> {
    const page = pageRequest('id', args);
    if (!z.uuid().safeParse(organizationId).success) return emptyConnection();
    access.require(BILLING_ADMIN, { organizationId });
    const rows = await this.store.page(this.pool, organizationId, page.after, page.first + 1);
    return connectionOf('id', rows, page, (row) => row.id);
  }

  /**
   * `charge.refunded`: every succeeded refund of the charge is posted once.
   * Ours (known by its Stripe id, or by the request id Stripe keeps in its
   * metadata when the webhook overtook our own record of Stripe's answer)
   * advances to posted; one made at Stripe is recorded as an origin
   * `stripe` request and posted even below a zero paid balance, since the
   * money is gone, and the event is flagged for finance when it did.
   */
  async recordChargeRefunded(event: StoredStripeEvent): Promise<StripeEventOutcome> {
    const charge = parseInput(chargeObject, event.object);
    return this.settleRefundsOfCharge(event, charge.id, charge.payment_intent ?? null);
  }

  /**
   * `charge.refund.updated`, `refund.updated`, `refund.failed`: a refund
   * Stripe first reported pending (so charge.refunded posted nothing) has
   * succeeded, and is posted, or failed, and our request fails with it,
   * which lets go of the paid balance it held. Stripe is asked for the
   * charge's refunds as they are now, as for charge.refunded.
   */
  async recordRefundUpdated(event: StoredStripeEvent): Promise<StripeEventOutcome> {
    const refund = parseInput(refundObject, event.object);
    if (!refund.charge) return { flag: 'unknown_payment' };
    return this.settleRefundsOfCharge(event, refund.charge, refund.payment_intent ?? null);
  }

  /** Posts every succeeded refund of the charge once, and fails our requests whose refunds failed at Stripe. */
  private async settleRefundsOfCharge(event: StoredStripeEvent, chargeId: string, paymentIntentId: string | null): Promise<StripeEventOutcome> {
    // No payment intent: not a Checkout payment, so none billing will ever credit.
    if (paymentIntentId === null) return { flag: 'unknown_payment' };
    const payment = await this.store.paymentByIntent(this.pool, paymentIntentId);
    if (payment?.status !== 'credited') return awaitingCredit(event, paymentIntentId, payment);
    const outcome: StripeEventOutcome = { organizationId: payment.organizationId, paymentSessionId: payment.id };
    const accounts = await this.ledger.organizationAccounts(payment.organizationId);
    await this.ledger.accounts.platformAccount('refunds', accounts.currency);
    let flag: string | undefined;
    for (const refund of await this.provider.listRefunds(chargeId)) {
      if (refund.status === 'succeeded') {
        if (await inTransaction(this.pool, (tx) => this.postStripeRefundIn(tx, payment, refund, event.correlationId))) flag ??= 'refund_exceeds_balance';
      } else if (refund.status === 'failed' || refund.status === 'canceled') {
        // Failed after Stripe said it succeeded (and so after, or before, its posting): the money came back to the platform's
        // Stripe balance, and finance decides what the customer is owed.
        if (await inTransaction(this.pool, (tx) => this.failStripeRefundIn(tx, payment, refund))) flag = 'refund_failed_after_posting';
      }
    }
    return flag === undefined ? outcome : { ...outcome, flag };
  }

  private checkRefundable(caller: RefundingCaller, payment: RefundablePayment): void {
    if (payment.status !== 'credited' || payment.creditedAt === null || payment.stripePaymentIntentId === null) {
      throw new AppError('BILLING_PAYMENT_NOT_REFUNDABLE', 'Only a credited payment can be refunded', {
        details: { paymentSessionId: payment.id, status: payment.status },
      });
    }
    const windowSeconds = refundWindowSeconds(freshSnapshot(caller.accessModel, payment.organizationId));
    const closesAt = new Date(payment.creditedAt.getTime() + windowSeconds * 1000);
    if (this.clock.nowMs() > closesAt.getTime()) {
      throw new AppError('BILLING_REFUND_WINDOW_EXCEEDED', 'The refund window of this payment has passed (billing.refund.window)', {
        details: { paymentSessionId: payment.id, creditedAt: payment.creditedAt.toISOString(), closedAt: closesAt.toISOString() },
      });
    }
  }

  /** Takes a request from where it stands to posted, as far as Stripe lets it. */
  private async carryOn(request: RefundRequestRecord, payment: RefundablePayment): Promise<RefundRequestRecord> {
    let current = request;
    // A submitted request's refund exists at Stripe: asking again could create a second one once Stripe has forgotten
    // the idempotency key (24 hours), and a replay says nothing new. Its refund events settle it.
    if (current.status === 'requested') current = await this.submit(current, payment);
    if (current.status === 'refunded') current = await this.post(current);
    return current;
  }

  /**
   * Asks Stripe for the refund. Stripe unreachable: the request stays as it
   * is and the call fails with PAYMENT_PROVIDER_UNAVAILABLE, for a retry
   * with the key; Stripe refusing: the request fails with its reason.
   */
  private async submit(request: RefundRequestRecord, payment: RefundablePayment): Promise<RefundRequestRecord> {
    let refund: ProviderRefund;
    try {
      refund = await this.provider.createRefund(
        { paymentIntentId: payment.stripePaymentIntentId!, amount: request.amount, refundRequestId: request.id, organizationId: request.organizationId },
        `refund:${request.id}`,
      );
    } catch (error) {
      if (!isAppError(error) || error.code !== 'PAYMENT_PROVIDER_REFUSED') throw error;
      const code = typeof error.details?.['stripeCode'] === 'string' ? `${error.details['stripeCode']}: ` : '';
      return this.settled(request, (tx) => this.store.recordFailed(tx, request.id, null, `${code}${error.message}`));
    }
    if (refund.status === 'failed' || refund.status === 'canceled') {
      return this.settled(request, (tx) => this.store.recordFailed(tx, request.id, refund.id, `Stripe reports the refund ${refund.status}`));
    }
    return this.settled(request, (tx) => this.store.recordSubmitted(tx, request.id, refund.id, refund.status === 'succeeded'));
  }

  /** Records Stripe's answer; a request its webhook moved on meanwhile is returned as it now is. */
  private settled(request: RefundRequestRecord, record: (tx: Tx) => Promise<RefundRequestRecord | undefined>): Promise<RefundRequestRecord> {
    return inTransaction(this.pool, async (tx) => (await record(tx)) ?? (await this.store.byId(tx, request.id))!);
  }

  /** Posts a refunded request, unless its webhook posted it first. */
  private post(request: RefundRequestRecord): Promise<RefundRequestRecord> {
    return inTransaction(this.pool, async (tx) => {
      await this.funds.lockFunds(tx, [request.organizationId]);
      const current = (await this.store.byId(tx, request.id))!;
      if (current.status !== 'refunded') return current;
      const posted = await this.postRefundIn(tx, current, current.stripeRefundId!, current.requestedBy ?? STRIPE_WEBHOOK_ACTOR, false);
      return this.store.recordPosted(tx, current.id, current.stripeRefundId!, posted.posting.id);
    });
  }

  /** One succeeded refund seen in charge.refunded; true when its posting took the paid balance below zero. */
  private async postStripeRefundIn(tx: Tx, payment: RefundablePayment, refund: ProviderRefund, correlationId: string): Promise<boolean> {
    const funds = (await this.funds.lockFunds(tx, [payment.organizationId])).get(payment.organizationId);
    if (!funds) throw new AppError('BILLING_ORGANIZATION_UNKNOWN', 'Billing has no accounts for this organization yet', { details: { organizationId: payment.organizationId } });
    let request = (await this.store.byStripeRefundId(tx, refund.id)) ?? (await this.ourRequestNamedBy(tx, payment, refund));
    if (request?.status === 'posted') return false;
    request ??= await this.store.insertFromStripe(tx, {
      id: randomUUID(),
      organizationId: payment.organizationId,
      paymentSessionId: payment.id,
      amount: refund.amount,
      currency: payment.currency,
      stripeRefundId: refund.id,
      correlationId,
    });
    const overdrawn = funds.paid < refund.amount;
    const posted = await this.postRefundIn(tx, { ...request, amount: refund.amount, correlationId }, refund.id, request.requestedBy ?? STRIPE_WEBHOOK_ACTOR, overdrawn);
    await this.store.recordPosted(tx, request.id, refund.id, posted.posting.id);
    return posted.created && overdrawn;
  }

  /** A refund Stripe reports failed or canceled: our request still waiting for it fails; true when Stripe had said it succeeded. */
  private async failStripeRefundIn(tx: Tx, payment: RefundablePayment, refund: ProviderRefund): Promise<boolean> {
    await this.funds.lockFunds(tx, [payment.organizationId]);
    const request = (await this.store.byStripeRefundId(tx, refund.id)) ?? (await this.ourRequestNamedBy(tx, payment, refund));
    if (!request) return false;
    if (request.status === 'refunded' || request.status === 'posted') return true;
    await this.store.recordFailed(tx, request.id, refund.id, `Stripe reports the refund ${refund.status}`);
    return false;
  }

  /** Our request a Stripe refund names in its metadata, when it is one of this payment's. */
  private async ourRequestNamedBy(tx: Tx, payment: RefundablePayment, refund: ProviderRefund): Promise<RefundRequestRecord | undefined> {
    const id = refund.metadata['refundRequestId'];
    if (id === undefined || !z.uuid().safeParse(id).success) return undefined;
    const request = await this.store.byId(tx, id);
    return request?.paymentSessionId === payment.id ? request : undefined;
  }

  /** `refund:<stripe refund id>`: the organization's customer balance to the platform's refunds account. */
  private async postRefundIn(
    tx: Tx,
    request: Pick<RefundRequestRecord, 'id' | 'organizationId' | 'paymentSessionId' | 'amount' | 'reason' | 'correlationId'>,
    stripeRefundId: string,
    actor: Actor,
    flagged: boolean,
  ): Promise<PostingResult> {
    const accounts = await this.ledger.organizationAccounts(request.organizationId, tx);
    const refunds = await this.ledger.accounts.platformAccount('refunds', accounts.currency, tx);
    const [result] = await this.ledger.postIn(tx, [
      {
        id: `refund:${stripeRefundId}`,
        kind: 'refund',
        currency: accounts.currency,
        organizationId: request.organizationId,
        transfers: [{ debitAccountId: accounts.customer_balance.id, creditAccountId: refunds.id, amount: request.amount, code: 'refund' }],
        description: request.reason,
        metadata: { refundRequestId: request.id, paymentSessionId: request.paymentSessionId, stripeRefundId },
        flagged,
        actor,
        correlationId: request.correlationId,
      },
    ]);
    return result!;
  }
}

/** A refunded or disputed payment as its event's handler found it by payment intent. */
export interface PaymentOfEvent {
  id: string;
  organizationId: string;
  status: PaymentSessionStatus;
}

/** Sessions whose payment may still be credited: checkout or its asynchronous payment has not finished yet. */
const CREDIT_MAY_COME: readonly PaymentSessionStatus[] = ['initiated', 'checkout_completed'];

/**
 * A refund or dispute event of a payment billing has not credited (unknown,
 * or its session is not `credited`). Stripe does not order its webhooks:
 * the event may be handled before the checkout.session.completed (or
 * async_payment_succeeded) that records the payment intent on its session
 * and credits it, delivered later or being retried. Handled then, its money
 * would never be posted once the credit lands, so while the payment is
 * unknown or its credit may still come the handler throws: the worker
 * retries the event with backoff, the attempt after the credit posts it, and
 * after the last attempt it is dead-lettered for finance. A session that
 * ended uncredited (failed_reconcile, expired, payment_failed) never put the
 * money in the customer balance: the event posts nothing and is flagged
 * `payment_not_credited` for finance to settle.
 */
export function awaitingCredit(event: StoredStripeEvent, paymentIntentId: string, payment: PaymentOfEvent | undefined): StripeEventOutcome {
  if (!payment) {
    throw new AppError(
      'BILLING_PAYMENT_SESSION_NOT_FOUND',
      'No payment session has this payment intent yet: the payment is not credited yet (its checkout event may still come), and the event is retried',
      { details: { stripeEventId: event.id, type: event.type, paymentIntentId } },
    );
  }
  if (CREDIT_MAY_COME.includes(payment.status)) {
    throw new AppError('BILLING_PAYMENT_NOT_REFUNDABLE', `The payment is not credited yet (its session is ${payment.status}), and the event is retried`, {
      details: { stripeEventId: event.id, type: event.type, paymentIntentId, paymentSessionId: payment.id, status: payment.status },
    });
  }
  return { organizationId: payment.organizationId, paymentSessionId: payment.id, flag: 'payment_not_credited' };
}

/** The Stripe event handlers of refunds, for the webhook worker's handler map. */
export function refundEventHandlers(refunds: Refunds): StripeEventHandlers {
  const updated: StripeEventHandler = (event) => refunds.recordRefundUpdated(event);
  return { 'charge.refunded': (event) => refunds.recordChargeRefunded(event), 'charge.refund.updated': updated, 'refund.updated': updated, 'refund.failed': updated };
}
