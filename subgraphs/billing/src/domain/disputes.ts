import type pg from 'pg';
import { z } from 'zod';
import type { Access } from '@aifactory/authz';
import { parseInput } from '@aifactory/errors';
import { DisputeStore, type DisputedPayment, type DisputeRecord, type DisputeStatus } from '../data/disputes-store.js';
import { LedgerStore } from '../data/ledger-store.js';
import { inTransaction, type Tx } from '../data/transactions.js';
import { BILLING_READ } from './balances.js';
import type { Ledger } from './ledger.js';
import { bigintOf } from './money.js';
import { connectionOf, emptyConnection, pageRequest, type Connection } from './pagination.js';
import { awaitingCredit } from './refunds.js';
import { STRIPE_WEBHOOK_ACTOR, type StoredStripeEvent, type StripeEventHandlers, type StripeEventOutcome } from './stripe-events.js';


const stripeId = z.union([z.string().min(1), z.object({ id: z.string().min(1) }).transform((object) => object.id)]);
const disputeObject = z.object({
  id: z.string().regex(/^[A-Za-z0-9_]{1,180}$/, "is Stripe's dispute id"),
  amount: z.number().int().positive(),
  currency: z.string().regex(/^[A-Za-z]{3}$/),
  charge: stripeId.nullish(),
  payment_intent: stripeId.nullish(),
  reason: z.string().nullish(),
  status: z.string(),
});

type StripeDispute = z.output<typeof disputeObject>;

/**
 * Disputes (chargebacks) of Stripe payments, from Stripe's
 * `charge.dispute.created` and `charge.dispute.closed`. While open, the
 * disputed amount sits in the organization's disputes-held account
 * (`dispute-hold:<id>`); its close returns it to the customer balance when
 * won (`dispute-release:<id>`) or books it to payment clearing when lost
 * (`dispute-loss:<id>`), the money Stripe took back. Each event changes
 * things once; a close that overtook its creation holds and closes in order
 * in one transaction. An event that overtook its payment's credit (Stripe
 * does not order webhooks) is retried until the credit lands; one of a
 * payment that ended uncredited (it failed to reconcile, ...) moves nothing
 * out of the customer balance, which never held that money, and is flagged
 * for finance (`awaitingCredit`).
 */
export class Disputes {
  private readonly store = new DisputeStore();
  private readonly funds = new LedgerStore();

  constructor(
    private readonly pool: pg.Pool,
    private readonly ledger: Ledger,
  ) {}

  /** The organization's disputes, in the order they were held. */
  async disputes(access: Access, organizationId: string, args: { first?: number | null; after?: string | null }): Promise<Connection<DisputeRecord>> {
    const page = pageRequest('seq', args);
    if (!z.uuid().safeParse(organizationId).success) return emptyConnection();
    access.require(BILLING_READ, { organizationId });
    const rows = await this.store.page(this.pool, organizationId, page.after === null ? null : bigintOf(page.after), page.first + 1);
    return connectionOf('seq', rows, page, (row) => row.holdSeq.toString());
  }

  async recordOpened(event: StoredStripeEvent): Promise<StripeEventOutcome> {
    const dispute = parseInput(disputeObject, event.object);
    if (!dispute.payment_intent) return { flag: 'unknown_payment' };
    const payment = await this.store.paymentByIntent(this.pool, dispute.payment_intent);
    if (payment?.status !== 'credited') return awaitingCredit(event, dispute.payment_intent, payment);
    const found = { organizationId: payment.organizationId, paymentSessionId: payment.id };
    await this.warmAccounts(payment);
    await inTransaction(this.pool, async (tx) => {
      await this.funds.lockFunds(tx, [payment.organizationId]);
      if (!(await this.store.byId(tx, dispute.id))) await this.holdIn(tx, payment, dispute, event.correlationId);
    });
    return found;
  }

  /** Won (and warning_closed, an inquiry that ended without a chargeback) returns the amount; lost books it. */
  async recordClosed(event: StoredStripeEvent): Promise<StripeEventOutcome> {
    const dispute = parseInput(disputeObject, event.object);
    const outcome = closedAs(dispute.status);
    if (!dispute.payment_intent) return { flag: 'unknown_payment' };
    const payment = await this.store.paymentByIntent(this.pool, dispute.payment_intent);
    if (payment?.status !== 'credited') return awaitingCredit(event, dispute.payment_intent, payment);
    const found = { organizationId: payment.organizationId, paymentSessionId: payment.id };
    if (outcome === null) return { ...found, flag: 'dispute_not_closed' };
    await this.warmAccounts(payment);
    await inTransaction(this.pool, async (tx) => {
      await this.funds.lockFunds(tx, [payment.organizationId]);
      const held = (await this.store.byId(tx, dispute.id)) ?? (await this.holdIn(tx, payment, dispute, event.correlationId));
      if (held.status !== 'held') return;
      const accounts = await this.ledger.organizationAccounts(payment.organizationId, tx);
      const postingId = outcome === 'won' ? `dispute-release:${held.id}` : `dispute-loss:${held.id}`;
      const to =
        outcome === 'won' ? accounts.customer_balance.id : (await this.ledger.accounts.platformAccount('payment_clearing', accounts.currency, tx)).id;
      const kind = outcome === 'won' ? 'dispute_release' : 'dispute_loss';
      await this.ledger.postIn(tx, [
        {
          id: postingId,
          kind,
          currency: accounts.currency,
          organizationId: payment.organizationId,
          transfers: [{ debitAccountId: accounts.disputes_held.id, creditAccountId: to, amount: held.amount, code: kind }],
          description: `Stripe dispute ${held.id} ${outcome}`,
          metadata: { disputeId: held.id, paymentSessionId: payment.id, stripeStatus: dispute.status },
          actor: STRIPE_WEBHOOK_ACTOR,
          correlationId: event.correlationId,
        },
      ]);
      await this.store.close(tx, held.id, outcome, postingId);
    });
    return found;
  }

  /** Records the dispute `held` and moves its amount from the customer balance to disputes held; the funds row is locked. */
  private async holdIn(tx: Tx, payment: DisputedPayment, dispute: StripeDispute, correlationId: string): Promise<DisputeRecord> {
    const accounts = await this.ledger.organizationAccounts(payment.organizationId, tx);
    const amount = BigInt(dispute.amount);
    const holdPostingId = `dispute-hold:${dispute.id}`;
    await this.ledger.postIn(tx, [
      {
        id: holdPostingId,
        kind: 'dispute_hold',
        currency: accounts.currency,
        organizationId: payment.organizationId,
        transfers: [{ debitAccountId: accounts.customer_balance.id, creditAccountId: accounts.disputes_held.id, amount, code: 'dispute_hold' }],
        description: `Stripe dispute ${dispute.id}${dispute.reason ? ` (${dispute.reason})` : ''}`,
        metadata: { disputeId: dispute.id, paymentSessionId: payment.id },
        actor: STRIPE_WEBHOOK_ACTOR,
        correlationId,
      },
    ]);
    return this.store.insert(tx, {
      id: dispute.id,
      organizationId: payment.organizationId,
      paymentSessionId: payment.id,
      stripeChargeId: dispute.charge ?? null,
      amount,
      currency: dispute.currency.toUpperCase(),
      reason: dispute.reason ?? null,
      holdPostingId,
    });
  }

  /** Account facts never change: read on the pool before the transaction, which then needs its one connection only. */
  private async warmAccounts(payment: DisputedPayment): Promise<void> {
    const accounts = await this.ledger.organizationAccounts(payment.organizationId);
    await this.ledger.accounts.platformAccount('payment_clearing', accounts.currency);
  }
}

/** What a closed dispute's Stripe status means here; null for a status that is not a close. */
function closedAs(status: string): Exclude<DisputeStatus, 'held'> | null {
  if (status === 'won' || status === 'warning_closed') return 'won';
  if (status === 'lost') return 'lost';
  return null;
}

/** The Stripe event handlers of disputes, for the webhook worker's handler map. */
export function disputeEventHandlers(disputes: Disputes): StripeEventHandlers {
  return {
    'charge.dispute.created': (event) => disputes.recordOpened(event),
    'charge.dispute.closed': (event) => disputes.recordClosed(event),
  };
}
