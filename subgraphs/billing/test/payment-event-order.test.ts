/**
 * Issue 18, webhook order: Stripe does not order its webhooks, so a refund
 * or dispute event may be handled before the checkout event that records
 * its payment and credits it (delivered later, or its processing retried).
 * Such an event fails retryably until the credit lands, then posts once;
 * after the last attempt it is dead-lettered for finance, whose retry posts
 * it. A payment whose session ended uncredited keeps its events flagged.
 */
import { randomUUID } from 'node:crypto';
import { ManualClock } from '@aifactory/clock';
import type { StripeEventJson } from '@aifactory/stripe-fake';
import { StripeEventsStore } from '../src/data/stripe-events-store.js';
import { Disputes, disputeEventHandlers } from '../src/domain/disputes.js';
import { PaymentMetrics } from '../src/domain/payment-metrics.js';
import { Refunds, refundEventHandlers } from '../src/domain/refunds.js';
import { StripeEventProcessor } from '../src/domain/stripe-event-processing.js';
import type { StoredStripeEvent, StripeEventHandlers } from '../src/domain/stripe-events.js';
import { platformAdmin } from './billing-access.js';
import { startPaymentFixture, storedEvent, type PaymentFixture } from './payment-fixture.js';

let pf: PaymentFixture;
let handlers: StripeEventHandlers;

beforeAll(async () => {
  // One connection: no handler may hold it while asking the pool for another.
  pf = await startPaymentFixture({ poolSize: 1 });
  const refunds = new Refunds(pf.fx.database.pool, pf.fx.ledger, pf.provider, { subjectPrefix: pf.subjectPrefix });
  const disputes = new Disputes(pf.fx.database.pool, pf.fx.ledger);
  handlers = { ...pf.settlement.handlers, ...refundEventHandlers(refunds), ...disputeEventHandlers(disputes) };
});

afterAll(async () => {
  await pf?.close();
});

/** A checkout paid at Stripe whose completion billing has not handled yet: its event and payment intent. */
async function paidAtStripe(organizationId: string, amount: number, options: { paid?: boolean } = {}) {
  const created = await pf.checkout.createCheckoutSession(pf.checkoutCaller(organizationId), { organizationId, amount: amount.toString() });
  const completed = await pf.stripe.completeCheckout(created.stripeSessionId, options);
  return { sessionId: created.id, stripeSessionId: created.stripeSessionId, completed, paymentIntentId: completed.data.object['payment_intent'] as string };
}

const objectId = (event: StripeEventJson) => event.data.object['id'] as string;

const stripeId = (prefix: string) => `${prefix}${randomUUID().replaceAll('-', '')}`;

/** A Stripe event the fake's drivers do not send, as billing stores it. */
function stripeEvent(type: string, object: Record<string, unknown>): StoredStripeEvent {
  const created = Math.floor(Date.now() / 1000);
  return storedEvent({ id: stripeId('evt_'), object: 'event', api_version: '2025-01-27.acacia', created, type, data: { object }, livemode: false });
}

/** Stripe's charge.refund.updated for a refund at the fake. */
function refundUpdated(stripeRefundId: string): StoredStripeEvent {
  const refund = pf.stripe.refunds().find((candidate) => candidate.id === stripeRefundId)!;
  return stripeEvent('charge.refund.updated', { ...refund });
}

async function thrownBy(work: Promise<unknown>): Promise<unknown> {
  return work.then(
    () => 'accepted',
    (error: unknown) => error,
  );
}

async function postingsOf(organizationId: string): Promise<string[]> {
  const { rows } = await pf.fx.admin.query<{ id: string }>(
    "SELECT id FROM postings WHERE organization_id = $1 AND kind IN ('payment_credit', 'refund', 'dispute_hold', 'dispute_release', 'dispute_loss') ORDER BY seq",
    [organizationId],
  );
  return rows.map((row) => row.id);
}

const NOT_CREDITED_YET = /not credited yet.*the event is retried/;

describe('refund and dispute events before their payment is credited', () => {
  it('retries a Stripe refund and a dispute handled before the checkout completion, and posts each once after the credit', async () => {
    const { organizationId } = await pf.fx.organization();
    const { sessionId, completed, paymentIntentId } = await paidAtStripe(organizationId, 5_000);
    const refunded = await pf.stripe.refundOutside(paymentIntentId, 1_000);
    const stripeRefundId = pf.stripe.refunds().find((refund) => refund.payment_intent === paymentIntentId)!.id;
    const opened = await pf.stripe.openDispute(paymentIntentId, 1_500);

    const early = [() => pf.handle(refunded, handlers), () => handlers['charge.refund.updated']!(refundUpdated(stripeRefundId)), () => pf.handle(opened, handlers)];
    for (const handle of early) {
      expect(await thrownBy(handle())).toMatchObject({ code: 'BILLING_PAYMENT_SESSION_NOT_FOUND', message: expect.stringMatching(NOT_CREDITED_YET) });
    }
    expect(await postingsOf(organizationId)).toEqual([]);

    await pf.handle(completed, handlers);
    const found = { organizationId, paymentSessionId: sessionId };
    expect(await handlers['charge.refund.updated']!(refundUpdated(stripeRefundId))).toEqual(found);
    expect(await pf.handle(opened, handlers)).toEqual(found);
    // Retried again (a worker that died before recording the outcome): nothing more.
    expect(await pf.handle(refunded, handlers)).toEqual(found);
    expect(await pf.handle(opened, handlers)).toEqual(found);

    expect(await pf.money(organizationId)).toEqual({ paid: 2_500n, held: 1_500n });
    expect(await postingsOf(organizationId)).toEqual([`payment:${sessionId}`, `refund:${stripeRefundId}`, `dispute-hold:${objectId(opened)}`]);
    const { rows } = await pf.fx.admin.query('SELECT origin, status, amount FROM refund_requests WHERE payment_session_id = $1', [sessionId]);
    expect(rows).toEqual([{ origin: 'stripe', status: 'posted', amount: '1000' }]);
  });

  it('retries while the checkout waits for its asynchronous payment, and settles in order once it is credited', async () => {
    const { organizationId } = await pf.fx.organization();
    const { sessionId, stripeSessionId, completed, paymentIntentId } = await paidAtStripe(organizationId, 4_000, { paid: false });
    await pf.handle(completed, handlers);
    expect(await pf.store.find(sessionId)).toMatchObject({ status: 'checkout_completed', stripePaymentIntentId: paymentIntentId });
    const succeeded = await pf.stripe.asyncPaymentSucceeded(stripeSessionId);
    const refunded = await pf.stripe.refundOutside(paymentIntentId, 500);
    const opened = await pf.stripe.openDispute(paymentIntentId, 1_000);
    const closed = await pf.stripe.closeDispute(objectId(opened), 'lost');

    for (const early of [refunded, closed, opened]) {
      const error = await thrownBy(pf.handle(early, handlers));
      expect(error).toMatchObject({ code: 'BILLING_PAYMENT_NOT_REFUNDABLE', message: expect.stringMatching(NOT_CREDITED_YET) });
      expect((error as Error).message).toContain('checkout_completed');
    }
    expect(await postingsOf(organizationId)).toEqual([]);

    await pf.handle(succeeded, handlers);
    for (const late of [closed, opened, refunded, closed]) expect(await pf.handle(late, handlers)).toEqual({ organizationId, paymentSessionId: sessionId });

    const id = objectId(opened);
    expect(await pf.money(organizationId)).toEqual({ paid: 2_500n, held: 0n });
    expect(await postingsOf(organizationId)).toEqual([`payment:${sessionId}`, `dispute-hold:${id}`, `dispute-loss:${id}`, expect.stringMatching(/^refund:re_/)]);
  });

  /** A session that ended uncredited, and the payment intent a refund or dispute of it names. */
  const endedUncredited: Record<string, (organizationId: string) => Promise<{ sessionId: string; paymentIntentId: string }>> = {
    failed_reconcile: async (organizationId) => {
      const created = await pf.checkout.createCheckoutSession(pf.checkoutCaller(organizationId), { organizationId, amount: '3000' });
      await pf.handle(await pf.stripe.completeCheckout(created.stripeSessionId, { amountTotal: 2_900 }), handlers);
      return { sessionId: created.id, paymentIntentId: (await pf.store.find(created.id))!.stripePaymentIntentId! };
    },
    payment_failed: async (organizationId) => {
      const { sessionId, stripeSessionId, completed, paymentIntentId } = await paidAtStripe(organizationId, 3_000, { paid: false });
      await pf.handle(completed, handlers);
      await pf.handle(await pf.stripe.asyncPaymentFailed(stripeSessionId), handlers);
      return { sessionId, paymentIntentId };
    },
    expired: async (organizationId) => {
      const created = await pf.checkout.createCheckoutSession(pf.checkoutCaller(organizationId), { organizationId, amount: '3000' });
      await pf.handle(await pf.stripe.expireCheckout(created.stripeSessionId), handlers);
      // Billing records no payment intent on a session that expires: one set by hand stands for a payment Stripe took anyway.
      const paymentIntentId = stripeId('pi_');
      await pf.fx.admin.query('UPDATE payment_sessions SET stripe_payment_intent_id = $2 WHERE id = $1', [created.id, paymentIntentId]);
      return { sessionId: created.id, paymentIntentId };
    },
  };

  it.each(Object.keys(endedUncredited))('flags, and posts nothing for, refund and dispute events of a payment whose session ended %s', async (status) => {
    const { organizationId } = await pf.fx.organization({ paid: 5_000n });
    const { sessionId, paymentIntentId } = await endedUncredited[status]!(organizationId);
    expect(await pf.store.find(sessionId)).toMatchObject({ status });
    // The fake's drivers refund and dispute only a charge that succeeded: these events are written out.
    const charge = { id: stripeId('ch_'), object: 'charge', payment_intent: paymentIntentId };
    const dispute = { id: stripeId('dp_'), object: 'dispute', amount: 3_000, currency: 'usd', charge: charge.id, payment_intent: paymentIntentId };

    const flagged = { organizationId, paymentSessionId: sessionId, flag: 'payment_not_credited' };
    expect(await handlers['charge.refunded']!(stripeEvent('charge.refunded', charge))).toEqual(flagged);
    expect(await handlers['charge.dispute.created']!(stripeEvent('charge.dispute.created', { ...dispute, status: 'needs_response' }))).toEqual(flagged);
    expect(await handlers['charge.dispute.closed']!(stripeEvent('charge.dispute.closed', { ...dispute, status: 'lost' }))).toEqual(flagged);
    expect(await pf.money(organizationId)).toEqual({ paid: 5_000n, held: 0n });
    expect(await postingsOf(organizationId)).toEqual([]);
  });
});

describe('through the webhook worker', () => {
  const BASE_MS = 1_000;
  const clock = new ManualClock();
  let processor: StripeEventProcessor;
  let store: StripeEventsStore;

  beforeAll(() => {
    clock.set(Date.now());
    store = new StripeEventsStore();
    processor = new StripeEventProcessor(
      pf.fx.database.pool,
      store,
      handlers,
      { maxAttempts: 3, retryBaseMs: BASE_MS, subjectPrefix: pf.subjectPrefix },
      new PaymentMetrics(pf.fx.database.pool, store, clock),
      clock,
    );
  });

  const receive = async (event: StripeEventJson) => {
    expect(await processor.receive({ ...event }, `corr-${randomUUID()}`)).toEqual({ duplicate: false });
    clock.advance(1);
    return event.id;
  };

  /** Processes what is due now until nothing is; events left pending wait for a later attempt. */
  const processAll = async () => {
    const all = [];
    for (;;) {
      const results = await processor.processDue(50);
      all.push(...results.map(({ id, outcome }) => ({ id, outcome })));
      if (results.length === 0) return all;
    }
  };

  async function storedRow(id: string) {
    const { rows } = await pf.fx.admin.query(
      'SELECT status, attempts, last_error, flagged, organization_id, payment_session_id FROM stripe_events WHERE id = $1',
      [id],
    );
    return rows[0];
  }

  it('retries a dispute that came before its checkout completion with backoff, and holds it once the credit lands', async () => {
    const { organizationId } = await pf.fx.organization();
    const { sessionId, completed, paymentIntentId } = await paidAtStripe(organizationId, 5_000);
    const opened = await pf.stripe.openDispute(paymentIntentId, 2_000);

    const disputeEvent = await receive(opened);
    expect(await processAll()).toEqual([{ id: disputeEvent, outcome: 'retried' }]);
    const row = await storedRow(disputeEvent);
    expect(row).toMatchObject({ status: 'pending', attempts: 1 });
    expect(row.last_error).toMatch(/^BILLING_PAYMENT_SESSION_NOT_FOUND: .*not credited yet.*the event is retried/);

    // The completion comes while the dispute waits for its next attempt.
    const completion = await receive(completed);
    expect(await processAll()).toEqual([{ id: completion, outcome: 'processed' }]);
    clock.advance(BASE_MS);
    expect(await processAll()).toEqual([{ id: disputeEvent, outcome: 'processed' }]);

    expect(await storedRow(disputeEvent)).toMatchObject({
      status: 'processed',
      attempts: 2,
      last_error: null,
      flagged: false,
      organization_id: organizationId,
      payment_session_id: sessionId,
    });
    expect(await pf.money(organizationId)).toEqual({ paid: 3_000n, held: 2_000n });
    expect(await postingsOf(organizationId)).toEqual([`payment:${sessionId}`, `dispute-hold:${objectId(opened)}`]);
  });

  it("dead-letters a dispute whose payment never arrives; finance sees it, and its retry holds it once the payment is credited", async () => {
    const { organizationId } = await pf.fx.organization();
    const { sessionId, completed, paymentIntentId } = await paidAtStripe(organizationId, 5_000);
    const opened = await pf.stripe.openDispute(paymentIntentId, 1_000);

    const disputeEvent = await receive(opened);
    expect(await processAll()).toEqual([{ id: disputeEvent, outcome: 'retried' }]);
    clock.advance(BASE_MS);
    expect(await processAll()).toEqual([{ id: disputeEvent, outcome: 'retried' }]);
    clock.advance(2 * BASE_MS);
    expect(await processAll()).toEqual([{ id: disputeEvent, outcome: 'dead' }]);
    clock.advance(60 * 60_000);
    expect(await processAll()).toEqual([]);

    const admin = pf.access.caller(platformAdmin);
    const dead = await processor.list(admin.access, { status: ['dead'] }, {});
    expect(dead.edges.map((edge) => edge.node)).toContainEqual(
      expect.objectContaining({ id: disputeEvent, type: 'charge.dispute.created', attempts: 3, lastError: expect.stringMatching(NOT_CREDITED_YET) }),
    );
    expect(await postingsOf(organizationId)).toEqual([]);

    // The completion finally arrives; finance sends the dead event back.
    await receive(completed);
    await processAll();
    expect(await processor.retry(admin, disputeEvent)).toMatchObject({ status: 'pending' });
    expect(await processAll()).toEqual([{ id: disputeEvent, outcome: 'processed' }]);
    expect(await storedRow(disputeEvent)).toMatchObject({ status: 'processed', flagged: false, payment_session_id: sessionId });
    expect(await pf.money(organizationId)).toEqual({ paid: 4_000n, held: 1_000n });
    expect(await postingsOf(organizationId)).toEqual([`payment:${sessionId}`, `dispute-hold:${objectId(opened)}`]);
  });
});
