import type pg from 'pg';
import { z } from 'zod';
import type { Access } from '@aifactory/authz';
import { balanceCreditedV1, type Actor } from '@aifactory/contracts';
import { AppError, parseInput } from '@aifactory/errors';
import { writeOutboxEvent } from '@aifactory/events';
import type { Principal } from '@aifactory/service-auth';
import { actorOf } from '@aifactory/subgraph-kit';
import {
  PAYMENT_SESSION_STATUSES,
  type PaymentSessionRecord,
  type PaymentSessionStatus,
  type PaymentSessionStore,
  type ReportedPayment,
} from '../data/payment-sessions-store.js';
import { inTransaction, type Tx } from '../data/transactions.js';
import { recordAudit } from './audit.js';
import { BILLING_READ } from './balances.js';
import type { Ledger } from './ledger.js';
import { formatAmount } from './money.js';
import { connectionOf, emptyConnection, pageRequest, type Connection } from './pagination.js';
import type { PaymentProvider, ProviderCheckoutSession, ProviderPaymentIntent } from './payment-provider.js';
import { BILLING_ADMIN } from './price-books.js';
import { STRIPE_WEBHOOK_ACTOR, type StoredStripeEvent, type StripeEventHandlers, type StripeEventOutcome } from './stripe-events.js';

/**
 * The session state machine (ARCHITECTURE.md, Seed conflicts): initiated ->
 * checkout_completed -> credited | failed_reconcile | payment_failed, or
 * initiated -> expired. Every other state is final for Stripe's events, so a
 * late or repeated event never moves it; only an admin's reconcile may still
 * credit a session that failed to reconcile.
 */
const NEXT: Readonly<Record<PaymentSessionStatus, readonly PaymentSessionStatus[]>> = {
  initiated: ['checkout_completed', 'expired'],
  checkout_completed: ['credited', 'failed_reconcile', 'payment_failed'],
  credited: [],
  failed_reconcile: [],
  payment_failed: [],
  expired: [],
};

/** The states a session may move to `to` from. */
function movingTo(to: PaymentSessionStatus): PaymentSessionStatus[] {
  return PAYMENT_SESSION_STATUSES.filter((from) => NEXT[from].includes(to));
}

/**
 * A complete checkout session's payment intent in these states will not be
 * paid: it was confirmed when the checkout completed, so
 * requires_payment_method means that attempt failed (a bounced debit), and
 * canceled that it was given up. Checkout never confirms it again.
 */
const FAILED_PAYMENT_INTENT_STATUSES: ReadonlyArray<ProviderPaymentIntent['status']> = ['requires_payment_method', 'canceled'];

/** What finance looks at: sessions that neither reached a final state by themselves nor were settled. */
const STUCK_STATUSES: readonly PaymentSessionStatus[] = ['initiated', 'checkout_completed', 'failed_reconcile'];

/** How far back finance may look for stuck sessions: ten years. */
const MAX_STUCK_AGE_SECONDS = 10 * 366 * 86_400;

/** A Stripe checkout session as its events carry it: the fields settlement reads. */
const stripeCheckoutSession = z.object({
  id: z.string().min(1),
  payment_status: z.string().nullish(),
  amount_total: z.number().int().nonnegative().nullish(),
  currency: z.string().nullish(),
  payment_intent: z.union([z.string(), z.object({ id: z.string() })]).nullish(),
  client_reference_id: z.string().nullish(),
  metadata: z.record(z.string(), z.unknown()).nullish(),
});

/** What Stripe said about one checkout session, from an event or a retrieve. */
interface StripeReport {
  stripeSessionId: string;
  paymentStatus: string | null;
  amountTotal: bigint | null;
  /** Upper-case, as billing spells currencies. */
  currency: string | null;
  paymentIntentId: string | null;
  /** Our id, as the session carries it in metadata.paymentSessionId (else client_reference_id). */
  paymentSessionId: string | null;
}

function reportOfEvent(event: StoredStripeEvent): StripeReport {
  const parsed = stripeCheckoutSession.safeParse(event.object);
  if (!parsed.success) throw new Error(`${event.type} event ${event.id} does not carry a checkout session: ${parsed.error.message}`);
  const session = parsed.data;
  const fromMetadata = session.metadata?.['paymentSessionId'];
  return {
    stripeSessionId: session.id,
    paymentStatus: session.payment_status ?? null,
    amountTotal: session.amount_total === null || session.amount_total === undefined ? null : BigInt(session.amount_total),
    currency: session.currency ? session.currency.toUpperCase() : null,
    paymentIntentId: typeof session.payment_intent === 'string' ? session.payment_intent : (session.payment_intent?.id ?? null),
    paymentSessionId: typeof fromMetadata === 'string' ? fromMetadata : (session.client_reference_id ?? null),
  };
}

function reportOfProvider(session: ProviderCheckoutSession): StripeReport {
  return {
    stripeSessionId: session.id,
    paymentStatus: session.paymentStatus,
    amountTotal: session.amountTotal,
    currency: session.currency,
    paymentIntentId: session.paymentIntentId,
    paymentSessionId: session.metadata['paymentSessionId'] ?? session.clientReferenceId,
  };
}

function reported(report: StripeReport): ReportedPayment {
  return {
    paymentStatus: report.paymentStatus,
    amountReceived: report.amountTotal,
    currencyReceived: report.currency,
    stripePaymentIntentId: report.paymentIntentId,
  };
}

/** Who settles and under which correlation id: Stripe's webhook (a system actor) or an admin's reconcile. */
interface Settler {
  actor: Actor;
  correlationId: string;
}

/** How a settlement step ended; `flag` when finance should look (StripeEventOutcome.flag). */
interface Settled {
  session: PaymentSessionRecord;
  flag?: string;
}

export interface ReconcileInput {
  /** Credit what Stripe received when it differs from the session's amount (same currency only). */
  acceptReceivedAmount?: boolean | null;
  reason: string;
}

const reconcileInput = z.object({ acceptReceivedAmount: z.boolean().nullish(), reason: z.string().trim().min(1).max(500) });

/** Who reconciles: a platform admin. */
export interface ReconcilingCaller {
  principal: Principal;
  access: Access;
  correlationId: string;
}

const sessionFilter = z.object({ status: z.array(z.enum(PAYMENT_SESSION_STATUSES)).min(1).nullish() });
export type PaymentSessionFilter = z.input<typeof sessionFilter>;
type PageArgs = { first?: number | null; after?: string | null };

export interface PaymentSettlementOptions {
  /** Outbox events go to `<subjectPrefix>.platform...`. */
  subjectPrefix: string;
}

/**
 * Settles Stripe Checkout top-ups (issue 18, seed 004 P5): Stripe's checkout
 * events and an admin's reconcile move a session along the state machine,
 * each step one transaction under the session's row lock. The credit is one
 * transaction: it posts `payment:<id>` from payment clearing to the
 * customer balance, marks the session credited and writes
 * `platform.billing.balance.credited` to billing's outbox, so it happens
 * exactly once whichever events repeat or race. What Stripe reports must
 * match the session (amount and currency), else it fails to reconcile and
 * nothing is credited.
 *
 * Lock order: the session row, then the ledger's funds rows.
 */
export class PaymentSettlement {
  /** Stripe's checkout events, by type, for the webhook worker (merged with the refund and dispute handlers). */
  readonly handlers: StripeEventHandlers = {
    'checkout.session.completed': (event) => this.onCheckoutEvent(event, 'completed'),
    'checkout.session.async_payment_succeeded': (event) => this.onCheckoutEvent(event, 'async_succeeded'),
    'checkout.session.async_payment_failed': (event) => this.onCheckoutEvent(event, 'async_failed'),
    'checkout.session.expired': (event) => this.onCheckoutEvent(event, 'expired'),
  };

  constructor(
    private readonly pool: pg.Pool,
    private readonly ledger: Ledger,
    private readonly provider: PaymentProvider,
    private readonly store: PaymentSessionStore,
    private readonly options: PaymentSettlementOptions,
  ) {}

  /**
   * Asks Stripe for the session and settles it as Stripe says (platform
   * admins; audited as billing.payment.reconcile in the transaction of the
   * change): complete and paid credits it once, with the amount Stripe
   * received when `acceptReceivedAmount` and it differs; expired expires an
   * initiated session; complete and unpaid completes it, and marks it
   * payment_failed when its payment intent says the delayed payment failed
   * (the async_payment_failed event was lost: the session alone stays
   * complete and unpaid for ever); open changes nothing.
   */
  async reconcilePaymentSession(caller: ReconcilingCaller, id: string, input: ReconcileInput): Promise<PaymentSessionRecord> {
    caller.access.requireHolds(BILLING_ADMIN);
    const { acceptReceivedAmount, reason } = parseInput(reconcileInput, input);
    const found = await this.store.find(id);
    if (!found) throw new AppError('BILLING_PAYMENT_SESSION_NOT_FOUND', 'There is no payment session with this id', { details: { id } });
    caller.access.require(BILLING_ADMIN, { organizationId: found.organizationId });
    const stripeSession = await this.provider.retrieveCheckoutSession(found.stripeSessionId);
    const report = reportOfProvider(stripeSession);
    // Asked before the transaction: no pool connection is held while Stripe answers.
    const paymentIntent =
      stripeSession.status === 'complete' && stripeSession.paymentStatus === 'unpaid' && report.paymentIntentId !== null
        ? await this.provider.retrievePaymentIntent(report.paymentIntentId)
        : null;
    const settler: Settler = { actor: actorOf(caller.principal), correlationId: caller.correlationId };

    return inTransaction(this.pool, async (tx) => {
      const before = (await this.store.lock(tx, found.id))!;
      let after = before;
      if (stripeSession.status === 'expired') {
        after = (await this.store.transition(tx, before.id, { to: 'expired', from: movingTo('expired') })) ?? before;
      } else if (stripeSession.status === 'complete') {
        after = await this.completeIn(tx, before, report);
        if (report.paymentStatus === 'paid') {
          after = (await this.creditIn(tx, after, report, settler, { acceptReceivedAmount: acceptReceivedAmount === true, reconciling: true })).session;
        } else if (paymentIntent !== null && FAILED_PAYMENT_INTENT_STATUSES.includes(paymentIntent.status)) {
          const failed = await this.store.transition(tx, before.id, {
            to: 'payment_failed',
            from: movingTo('payment_failed'),
            ...reported(report),
            failureReason: `Stripe reports the asynchronous payment failed: payment intent ${paymentIntent.id} is ${paymentIntent.status} (found by reconcile)`,
          });
          after = failed ?? after;
        }
      }
      await recordAudit(
        tx,
        {
          action: 'billing.payment.reconcile',
          caller,
          scope: BILLING_ADMIN,
          resource: { organizationId: before.organizationId, type: 'payment_session', id: before.id },
          reason,
          details: {
            paymentSessionId: before.id,
            stripeSessionId: before.stripeSessionId,
            stripeStatus: stripeSession.status,
            stripePaymentStatus: stripeSession.paymentStatus,
            stripePaymentIntentStatus: paymentIntent?.status ?? null,
            before: before.status,
            after: after.status,
            amount: formatAmount(before.amount),
            currency: before.currency,
            amountReceived: report.amountTotal === null ? null : formatAmount(report.amountTotal),
            currencyReceived: report.currency,
            acceptReceivedAmount: acceptReceivedAmount === true,
            postingId: after.postingId,
          },
        },
        { subjectPrefix: this.options.subjectPrefix },
      );
      return after;
    });
  }

  /** The organization's sessions, oldest first, optionally in some states only. */
  async paymentSessions(access: Access, organizationId: string, filter: PaymentSessionFilter | null | undefined, args: PageArgs): Promise<Connection<PaymentSessionRecord>> {
    const { status } = parseInput(sessionFilter, filter ?? {});
    const page = pageRequest('id', args);
    if (!z.uuid().safeParse(organizationId).success) return emptyConnection();
    access.require(BILLING_READ, { organizationId });
    const rows = await this.store.list({ organizationId, statuses: status ?? null, unchangedForSeconds: null, afterId: page.after, limit: page.first + 1 });
    return connectionOf('id', rows, page, (row) => row.id);
  }

  /** One session, or null when there is none the caller may read. */
  async paymentSession(access: Access, id: string): Promise<PaymentSessionRecord | null> {
    const session = await this.store.find(id);
    if (!session || !access.can(BILLING_READ, { organizationId: session.organizationId }, session.id)) return null;
    return session;
  }

  /** Finance: every organization's sessions stuck in initiated, checkout_completed or failed_reconcile, unchanged for `olderThanSeconds`. */
  async stuckPaymentSessions(access: Access, olderThanSeconds: number, args: PageArgs): Promise<Connection<PaymentSessionRecord>> {
    access.requireHolds(BILLING_ADMIN);
    const age = parseInput(z.number().int().min(0).max(MAX_STUCK_AGE_SECONDS), olderThanSeconds);
    const page = pageRequest('id', args);
    const rows = await this.store.list({ organizationId: null, statuses: STUCK_STATUSES, unchangedForSeconds: age, afterId: page.after, limit: page.first + 1 });
    return connectionOf('id', rows, page, (row) => row.id);
  }

  private async onCheckoutEvent(event: StoredStripeEvent, kind: 'completed' | 'async_succeeded' | 'async_failed' | 'expired'): Promise<StripeEventOutcome> {
    const report = reportOfEvent(event);
    const found = await this.sessionOf(report);
    if ('flag' in found) return found;
    const settler: Settler = { actor: STRIPE_WEBHOOK_ACTOR, correlationId: event.correlationId };
    const settled = await inTransaction(this.pool, async (tx): Promise<Settled> => {
      const session = (await this.store.lock(tx, found.id))!;
      switch (kind) {
        case 'expired':
          return { session: (await this.store.transition(tx, session.id, { to: 'expired', from: movingTo('expired') })) ?? session };
        case 'async_failed': {
          const completed = await this.completeIn(tx, session, report);
          const failed = await this.store.transition(tx, session.id, {
            to: 'payment_failed',
            from: movingTo('payment_failed'),
            ...reported(report),
            failureReason: 'Stripe reported that the asynchronous payment failed (checkout.session.async_payment_failed)',
          });
          return { session: failed ?? completed };
        }
        case 'completed':
        case 'async_succeeded': {
          const completed = await this.completeIn(tx, session, report);
          // A completed checkout still unpaid waits for its asynchronous payment's event.
          if (report.paymentStatus !== 'paid') return { session: completed };
          return this.creditIn(tx, completed, report, settler, { acceptReceivedAmount: false, reconciling: false });
        }
        default: {
          const unknown: never = kind;
          throw new Error(`unhandled checkout event kind ${String(unknown)}`);
        }
      }
    });
    return {
      organizationId: settled.session.organizationId,
      paymentSessionId: settled.session.id,
      ...(settled.flag === undefined ? {} : { flag: settled.flag }),
    };
  }

  /**
   * The session an event is about: by Stripe's session id, else by the id
   * the Stripe session carries. One found only the second way belongs to
   * another Stripe session (a checkout retried after Stripe forgot its
   * idempotency key): it is flagged and left alone, never settled by the
   * wrong Stripe session's events.
   */
  private async sessionOf(report: StripeReport): Promise<PaymentSessionRecord | StripeEventOutcome & { flag: string }> {
    const byStripeId = await this.store.findByStripeSessionId(report.stripeSessionId);
    if (byStripeId) return byStripeId;
    const byOurId = report.paymentSessionId === null ? undefined : await this.store.find(report.paymentSessionId);
    if (!byOurId) return { flag: 'unknown_session', organizationId: null, paymentSessionId: null };
    return { flag: 'stripe_session_mismatch', organizationId: byOurId.organizationId, paymentSessionId: byOurId.id };
  }

  /** initiated -> checkout_completed, with what Stripe reported; a session past initiated is returned as it is. */
  private async completeIn(tx: Tx, session: PaymentSessionRecord, report: StripeReport): Promise<PaymentSessionRecord> {
    return (await this.store.transition(tx, session.id, { to: 'checkout_completed', from: movingTo('checkout_completed'), ...reported(report) })) ?? session;
  }

  /**
   * Credits a completed, paid session whose row the transaction holds, or
   * marks it failed_reconcile when Stripe's amount or currency differs from
   * the session's. A reconcile may also credit a session that failed to
   * reconcile, and with `acceptReceivedAmount` credits what Stripe received.
   */
  private async creditIn(
    tx: Tx,
    session: PaymentSessionRecord,
    report: StripeReport,
    settler: Settler,
    options: { acceptReceivedAmount: boolean; reconciling: boolean },
  ): Promise<Settled> {
    const from: PaymentSessionStatus[] = options.reconciling ? [...movingTo('credited'), 'failed_reconcile'] : movingTo('credited');
    if (!from.includes(session.status)) return { session, ...paidButUncredited(session.status) };
    const mismatch = mismatchOf(session, report);
    const amount = mismatch === null ? session.amount : options.acceptReceivedAmount && mismatch.amountOnly ? report.amountTotal! : null;
    if (amount === null) {
      const failed = await this.store.transition(tx, session.id, {
        to: 'failed_reconcile',
        from: movingTo('failed_reconcile'),
        ...reported(report),
        failureReason: mismatch!.reason,
      });
      return { session: failed ?? session, flag: 'amount_mismatch' };
    }

    const postingId = `payment:${session.id}`;
    await this.ledger.creditIn(tx, {
      postingId,
      kind: 'payment_credit',
      organizationId: session.organizationId,
      amount,
      to: 'customer_balance',
      from: 'payment_clearing',
      actor: settler.actor,
      correlationId: settler.correlationId,
      description: `Stripe Checkout top-up ${session.stripeSessionId}`,
      metadata: { paymentSessionId: session.id, stripeSessionId: session.stripeSessionId, stripePaymentIntentId: report.paymentIntentId },
    });
    const credited = await this.store.transition(tx, session.id, { to: 'credited', from, ...reported(report), postingId });
    if (!credited) throw new Error(`payment session ${session.id} left ${session.status} under its row lock`);
    await writeOutboxEvent(
      tx,
      {
        type: balanceCreditedV1.type,
        version: balanceCreditedV1.version,
        payload: {
          organizationId: session.organizationId,
          paymentSessionId: session.id,
          postingId,
          amount: formatAmount(amount),
          currency: session.currency,
          balance: { paid: formatAmount(await this.store.paidBalance(tx, session.organizationId)) },
        },
        // The session is credited once: its only event is version 1 of it.
        aggregateId: session.id,
        aggregateVersion: 1,
        organizationId: session.organizationId,
        actor: settler.actor,
        correlationId: settler.correlationId,
      },
      { subjectPrefix: this.options.subjectPrefix },
    );
    return { session: credited };
  }
}

/**
 * Stripe reports a payment the session will not credit: finance should look
 * however often the event is handled (a worker that died before recording
 * the first outcome handles it again), so the flag follows from the state.
 */
function paidButUncredited(status: PaymentSessionStatus): { flag?: string } {
  switch (status) {
    case 'failed_reconcile':
      return { flag: 'amount_mismatch' };
    case 'expired':
    case 'payment_failed':
      return { flag: 'paid_not_credited' };
    case 'initiated':
    case 'checkout_completed':
    case 'credited':
      return {};
    default: {
      const unknown: never = status;
      throw new Error(`unhandled payment session status ${String(unknown)}`);
    }
  }
}

/** How Stripe's report differs from the session; null when it matches. `amountOnly`: the currency matches and an amount was paid. */
function mismatchOf(session: PaymentSessionRecord, report: StripeReport): { reason: string; amountOnly: boolean } | null {
  if (report.currency !== session.currency) {
    return { reason: `Stripe reported currency ${report.currency ?? 'none'}, the session is in ${session.currency}`, amountOnly: false };
  }
  if (report.amountTotal !== session.amount) {
    const received = report.amountTotal === null ? 'no amount' : `${report.amountTotal} minor units`;
    return {
      reason: `Stripe reported ${received} paid, the session is for ${session.amount}`,
      amountOnly: report.amountTotal !== null && report.amountTotal > 0n,
    };
  }
  return null;
}
