/**
 * Issue 18, settlement (seed 004 P5): Stripe's checkout events move a
 * session along initiated -> checkout_completed -> credited |
 * failed_reconcile | payment_failed, or initiated -> expired. A paid
 * checkout credits once, in one transaction with its
 * platform.billing.balance.credited event; an amount Stripe reports that
 * does not match credits nothing; a final session never moves again. An
 * admin's reconcile asks Stripe and settles, audited; finance lists the
 * sessions that are stuck.
 */
import { randomUUID } from 'node:crypto';
import type { StripeEventJson } from '@aifactory/stripe-fake';
import type { PaymentSessionRecord } from '../src/data/payment-sessions-store.js';
import { orgAdmin, platformAdmin, projectMember } from './billing-access.js';
import { codeOf } from './billing-fixture.js';
import { startPaymentFixture, type PaymentFixture } from './payment-fixture.js';
import { eventually } from './rating-fixture.js';

let pay: PaymentFixture;

beforeAll(async () => {
  pay = await startPaymentFixture();
});

afterAll(async () => {
  await pay?.close();
});

async function checkedOut(amount = 2500n, currency = 'USD'): Promise<PaymentSessionRecord> {
  const { organizationId } = await pay.fx.organization({ currency });
  return pay.checkout.createCheckoutSession(pay.checkoutCaller(organizationId), { organizationId, amount: amount.toString() });
}

async function paidBalance(organizationId: string): Promise<bigint> {
  const { rows } = await pay.fx.admin.query<{ paid: string }>('SELECT paid FROM organization_funds WHERE organization_id = $1', [organizationId]);
  return BigInt(rows[0]!.paid);
}

async function paymentPostings(organizationId: string): Promise<{ id: string; kind: string }[]> {
  const { rows } = await pay.fx.admin.query("SELECT id, kind FROM postings WHERE organization_id = $1 AND kind = 'payment_credit'", [organizationId]);
  return rows;
}

async function creditedEvents(paymentSessionId: string): Promise<{ payload: Record<string, unknown>; subject: string; aggregate_type: string; aggregate_version: number }[]> {
  const { rows } = await pay.fx.admin.query(
    "SELECT payload, subject, aggregate_type, aggregate_version FROM outbox_events WHERE type = 'platform.billing.balance.credited' AND aggregate_id = $1",
    [paymentSessionId],
  );
  return rows;
}

async function reconcileAudits(paymentSessionId: string): Promise<Record<string, any>[]> {
  const { rows } = await pay.fx.admin.query<{ payload: Record<string, any> }>(
    "SELECT payload FROM outbox_events WHERE type = 'platform.audit.billing.payment.reconcile' AND payload->'details'->>'paymentSessionId' = $1 ORDER BY created_at",
    [paymentSessionId],
  );
  return rows.map((row) => row.payload);
}

/** An event Stripe might send that the fake's drivers do not make (late, duplicated or for a session we never recorded). */
function stripeEvent(type: string, object: Record<string, unknown>): StripeEventJson {
  return {
    id: `evt_${randomUUID().replaceAll('-', '')}`,
    object: 'event',
    api_version: '2025-01-01',
    created: Math.floor(Date.now() / 1000),
    type,
    data: { object },
    livemode: false,
    pending_webhooks: 0,
    request: { id: null, idempotency_key: null },
  };
}

const current = async (session: PaymentSessionRecord) => (await pay.store.find(session.id))!;
const asPlatformAdmin = () => pay.access.caller(platformAdmin);

describe('checkout.session.completed', () => {
  it('credits a paid checkout once, with one balance.credited event; the same event again changes nothing', async () => {
    const session = await checkedOut(2500n, 'EUR');
    const event = await pay.stripe.completeCheckout(session.stripeSessionId);

    const outcome = await pay.handle(event);

    expect(outcome).toEqual({ organizationId: session.organizationId, paymentSessionId: session.id });
    const credited = await current(session);
    expect(credited).toMatchObject({ status: 'credited', postingId: `payment:${session.id}`, paymentStatus: 'paid', amountReceived: 2_500n, currencyReceived: 'EUR' });
    expect(credited.stripePaymentIntentId).toMatch(/^pi_/);
    expect(credited.completedAt).toBeInstanceOf(Date);
    expect(credited.creditedAt).toBeInstanceOf(Date);
    expect(await paidBalance(session.organizationId)).toBe(2_500n);
    const { rows: transfers } = await pay.fx.admin.query(
      `SELECT d.kind AS debit, c.kind AS credit, t.amount FROM transfers t
         JOIN accounts d ON d.id = t.debit_account_id JOIN accounts c ON c.id = t.credit_account_id WHERE t.posting_id = $1`,
      [`payment:${session.id}`],
    );
    expect(transfers).toEqual([{ debit: 'payment_clearing', credit: 'customer_balance', amount: '2500' }]);
    const events = await creditedEvents(session.id);
    expect(events).toEqual([
      {
        subject: `${pay.subjectPrefix}.platform.billing.balance.credited`,
        aggregate_type: 'payment_session',
        aggregate_version: 1,
        payload: {
          organizationId: session.organizationId,
          paymentSessionId: session.id,
          postingId: `payment:${session.id}`,
          amount: '2500',
          currency: 'EUR',
          balance: { paid: '2500' },
        },
      },
    ]);

    expect(await pay.handle(event)).toEqual({ organizationId: session.organizationId, paymentSessionId: session.id });
    expect(await current(session)).toEqual(credited);
    expect(await paidBalance(session.organizationId)).toBe(2_500n);
    expect(await paymentPostings(session.organizationId)).toHaveLength(1);
    expect(await creditedEvents(session.id)).toHaveLength(1);
  });

  it('credits the same session once when its event is handled twice at the same time', async () => {
    const session = await checkedOut(1200n);
    const event = await pay.stripe.completeCheckout(session.stripeSessionId);

    await Promise.all([pay.handle(event), pay.handle(event), pay.handle(event)]);

    expect((await current(session)).status).toBe('credited');
    expect(await paidBalance(session.organizationId)).toBe(1_200n);
    expect(await creditedEvents(session.id)).toHaveLength(1);
  });

  it('marks an amount Stripe reports that does not match the session failed_reconcile, flagged, and credits nothing', async () => {
    const session = await checkedOut(2500n);
    const event = await pay.stripe.completeCheckout(session.stripeSessionId, { amountTotal: 2400 });

    const outcome = await pay.handle(event);

    expect(outcome).toEqual({ organizationId: session.organizationId, paymentSessionId: session.id, flag: 'amount_mismatch' });
    const failed = await current(session);
    expect(failed).toMatchObject({ status: 'failed_reconcile', amountReceived: 2_400n, postingId: null, creditedAt: null });
    expect(failed.failureReason).toContain('2400');
    expect(await paidBalance(session.organizationId)).toBe(0n);
    expect(await paymentPostings(session.organizationId)).toEqual([]);
    expect(await creditedEvents(session.id)).toEqual([]);
  });

  it('flags the mismatch again when its event is handled again (the worker died before recording the outcome)', async () => {
    const session = await checkedOut(2500n);
    const event = await pay.stripe.completeCheckout(session.stripeSessionId, { amountTotal: 2400 });
    await pay.handle(event);

    const again = await pay.handle(event);

    expect(again).toEqual({ organizationId: session.organizationId, paymentSessionId: session.id, flag: 'amount_mismatch' });
    expect((await current(session)).status).toBe('failed_reconcile');
    expect(await paidBalance(session.organizationId)).toBe(0n);
  });

  it('waits when the checkout completed unpaid: checkout_completed, nothing credited', async () => {
    const session = await checkedOut(2500n);

    await pay.handle(await pay.stripe.completeCheckout(session.stripeSessionId, { paid: false }));

    expect(await current(session)).toMatchObject({ status: 'checkout_completed', paymentStatus: 'unpaid', postingId: null });
    expect(await paidBalance(session.organizationId)).toBe(0n);
  });
});

describe('asynchronous payments', () => {
  it('credits only on checkout.session.async_payment_succeeded', async () => {
    const session = await checkedOut(3300n);
    await pay.handle(await pay.stripe.completeCheckout(session.stripeSessionId, { paid: false }));
    expect(await paidBalance(session.organizationId)).toBe(0n);

    const outcome = await pay.handle(await pay.stripe.asyncPaymentSucceeded(session.stripeSessionId));

    expect(outcome).toEqual({ organizationId: session.organizationId, paymentSessionId: session.id });
    expect(await current(session)).toMatchObject({ status: 'credited', paymentStatus: 'paid', postingId: `payment:${session.id}` });
    expect(await paidBalance(session.organizationId)).toBe(3_300n);
    expect(await creditedEvents(session.id)).toHaveLength(1);
  });

  it('marks the session payment_failed on checkout.session.async_payment_failed, and a late success does not move it', async () => {
    const session = await checkedOut(3300n);
    const completed = await pay.stripe.completeCheckout(session.stripeSessionId, { paid: false });
    await pay.handle(completed);

    await pay.handle(await pay.stripe.asyncPaymentFailed(session.stripeSessionId));

    const failed = await current(session);
    expect(failed).toMatchObject({ status: 'payment_failed', postingId: null });
    expect(failed.failureReason).toContain('async_payment_failed');
    await pay.handle(completed);
    expect(await current(session)).toEqual(failed);
    expect(await paidBalance(session.organizationId)).toBe(0n);
  });
});

describe('checkout.session.expired', () => {
  it('records an initiated session expired; a late completion does not move it', async () => {
    const session = await checkedOut();

    const outcome = await pay.handle(await pay.stripe.expireCheckout(session.stripeSessionId));

    expect(outcome).toEqual({ organizationId: session.organizationId, paymentSessionId: session.id });
    const expired = await current(session);
    expect(expired.status).toBe('expired');
    await pay.handle(stripeEvent('checkout.session.completed', { id: session.stripeSessionId, payment_status: 'paid', amount_total: 2500, currency: 'usd', metadata: {} }));
    expect(await current(session)).toEqual(expired);
    expect(await paidBalance(session.organizationId)).toBe(0n);
  });

  it('flags a paid completion of a session it expired: money Stripe reports taken that billing does not credit', async () => {
    const session = await checkedOut();
    await pay.handle(await pay.stripe.expireCheckout(session.stripeSessionId));

    const outcome = await pay.handle(
      stripeEvent('checkout.session.completed', { id: session.stripeSessionId, payment_status: 'paid', amount_total: 2500, currency: 'usd', metadata: {} }),
    );

    expect(outcome).toEqual({ organizationId: session.organizationId, paymentSessionId: session.id, flag: 'paid_not_credited' });
    expect((await current(session)).status).toBe('expired');
    expect(await paidBalance(session.organizationId)).toBe(0n);
  });

  it('leaves a credited session credited', async () => {
    const { organizationId } = await pay.fx.organization();
    const { session } = await pay.creditedPayment(organizationId, 1500n);

    await pay.handle(stripeEvent('checkout.session.expired', { id: session.stripeSessionId, payment_status: 'unpaid', amount_total: 1500, currency: 'usd', metadata: {} }));

    expect(await current(session)).toEqual(session);
  });
});

describe('an event for a session billing does not know', () => {
  it('is flagged, nothing else', async () => {
    const outcome = await pay.handle(stripeEvent('checkout.session.completed', { id: 'cs_test_unknown', payment_status: 'paid', amount_total: 2500, currency: 'usd', metadata: { paymentSessionId: randomUUID() } }));

    expect(outcome).toEqual({ flag: 'unknown_session', organizationId: null, paymentSessionId: null });
  });

  it('naming one of our sessions from another Stripe session is flagged and settles nothing', async () => {
    const session = await checkedOut();
    const outcome = await pay.handle(stripeEvent('checkout.session.expired', { id: 'cs_test_orphan', payment_status: 'unpaid', amount_total: 2500, currency: 'usd', metadata: { paymentSessionId: session.id } }));

    expect(outcome).toEqual({ flag: 'stripe_session_mismatch', organizationId: session.organizationId, paymentSessionId: session.id });
    expect((await current(session)).status).toBe('initiated');
  });
});

describe('lock order', () => {
  it('credits a session while a ledger writer holding the funds row records a dispute of it, without a deadlock', async () => {
    const session = await checkedOut(2500n);
    await pay.handle(await pay.stripe.completeCheckout(session.stripeSessionId, { paid: false }));
    const succeeded = await pay.stripe.asyncPaymentSucceeded(session.stripeSessionId);
    // As a dispute or a refund of Stripe's is recorded: the funds row first, then a row whose foreign key names the session.
    const writer = await pay.fx.db.admin();
    try {
      await writer.query('SET search_path TO billing');
      await writer.query('BEGIN');
      // Should the two wait on each other, this side is the one Postgres finds and refuses (its wait is the shorter).
      await writer.query("SET LOCAL deadlock_timeout = '10ms'");
      await writer.query('SELECT paid FROM organization_funds WHERE organization_id = $1 FOR UPDATE', [session.organizationId]);
      const { rows } = await writer.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
      const settling = pay.handle(succeeded);
      await eventually('the settlement to wait for the funds row', async () => {
        const { rowCount } = await pay.fx.admin.query('SELECT 1 FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid))', [rows[0]!.pid]);
        return rowCount === 0 ? undefined : true;
      });

      const recorded = await writer
        .query("INSERT INTO payment_disputes (id, organization_id, payment_session_id, amount, currency, hold_posting_id) VALUES ($1, $2, $3, 100, 'USD', $4)", [
          'dp_lock_order',
          session.organizationId,
          session.id,
          'dispute-hold:dp_lock_order',
        ])
        .then(
          () => 'recorded',
          (error: { code?: string }) => `refused ${error.code}`,
        );
      await writer.query('ROLLBACK');

      expect(recorded).toBe('recorded');
      await settling;
    } finally {
      await writer.end();
    }
    expect(await current(session)).toMatchObject({ status: 'credited' });
    expect(await paidBalance(session.organizationId)).toBe(2_500n);
  });
});

describe('reconcilePaymentSession', () => {
  const reason = 'Webhook never arrived (ticket FIN-12)';

  it('credits a session Stripe says is paid when its webhook was missed, once, audited', async () => {
    const session = await checkedOut(4200n);
    await pay.stripe.completeCheckout(session.stripeSessionId);

    const reconciled = await pay.settlement.reconcilePaymentSession(asPlatformAdmin(), session.id, { reason });
    const again = await pay.settlement.reconcilePaymentSession(asPlatformAdmin(), session.id, { reason });

    expect(reconciled).toMatchObject({ status: 'credited', postingId: `payment:${session.id}`, amountReceived: 4_200n });
    expect(again).toEqual(reconciled);
    expect(await paidBalance(session.organizationId)).toBe(4_200n);
    expect(await creditedEvents(session.id)).toHaveLength(1);
    const audits = await reconcileAudits(session.id);
    expect(audits).toHaveLength(2);
    expect(audits[0]).toMatchObject({
      action: 'billing.payment.reconcile',
      outcome: 'succeeded',
      principal: { type: 'user', id: 'platform-admin' },
      scope: 'platform:billing:admin',
      reason,
      details: { before: 'initiated', after: 'credited', amount: '4200', amountReceived: '4200', currency: 'USD', stripeStatus: 'complete', postingId: `payment:${session.id}` },
    });
    expect(audits[1]).toMatchObject({ details: { before: 'credited', after: 'credited' } });
  });

  it('keeps a mismatch failed_reconcile, and credits what Stripe received when told to accept it', async () => {
    const session = await checkedOut(2500n);
    await pay.handle(await pay.stripe.completeCheckout(session.stripeSessionId, { amountTotal: 2400 }));

    const kept = await pay.settlement.reconcilePaymentSession(asPlatformAdmin(), session.id, { reason });
    expect(kept.status).toBe('failed_reconcile');
    expect(await paidBalance(session.organizationId)).toBe(0n);

    const accepted = await pay.settlement.reconcilePaymentSession(asPlatformAdmin(), session.id, { reason: 'Customer paid 24.00, accepted', acceptReceivedAmount: true });

    expect(accepted).toMatchObject({ status: 'credited', amount: 2_500n, amountReceived: 2_400n, postingId: `payment:${session.id}` });
    expect(await paidBalance(session.organizationId)).toBe(2_400n);
    expect((await creditedEvents(session.id)).map((event) => event.payload['amount'])).toEqual(['2400']);
    const audits = await reconcileAudits(session.id);
    expect(audits.map((audit) => [audit['details'].before, audit['details'].after, audit['details'].acceptReceivedAmount])).toEqual([
      ['failed_reconcile', 'failed_reconcile', false],
      ['failed_reconcile', 'credited', true],
    ]);
  });

  it('marks a session Stripe expired expired, leaves an open one initiated, completes an unpaid one', async () => {
    const expiring = await checkedOut();
    const open = await checkedOut();
    const unpaid = await checkedOut();
    await pay.stripe.expireCheckout(expiring.stripeSessionId);
    await pay.stripe.completeCheckout(unpaid.stripeSessionId, { paid: false });

    expect((await pay.settlement.reconcilePaymentSession(asPlatformAdmin(), expiring.id, { reason })).status).toBe('expired');
    expect((await pay.settlement.reconcilePaymentSession(asPlatformAdmin(), open.id, { reason })).status).toBe('initiated');
    expect((await pay.settlement.reconcilePaymentSession(asPlatformAdmin(), unpaid.id, { reason })).status).toBe('checkout_completed');
    expect(await reconcileAudits(open.id)).toEqual([expect.objectContaining({ details: expect.objectContaining({ before: 'initiated', after: 'initiated' }) })]);
  });

  it('marks a checkout_completed session payment_failed when its async_payment_failed event was lost, audited', async () => {
    const session = await checkedOut(3300n);
    await pay.handle(await pay.stripe.completeCheckout(session.stripeSessionId, { paid: false }));
    // The fake has no webhook URL: the failure happens at Stripe and billing never hears of it.
    await pay.stripe.asyncPaymentFailed(session.stripeSessionId);
    const completed = await current(session);
    expect(completed.status).toBe('checkout_completed');

    const reconciled = await pay.settlement.reconcilePaymentSession(asPlatformAdmin(), session.id, { reason });
    const again = await pay.settlement.reconcilePaymentSession(asPlatformAdmin(), session.id, { reason });

    expect(reconciled).toMatchObject({ status: 'payment_failed', paymentStatus: 'unpaid', postingId: null, stripePaymentIntentId: completed.stripePaymentIntentId });
    expect(reconciled.failureReason).toContain(`${completed.stripePaymentIntentId} is requires_payment_method`);
    expect(again).toEqual(reconciled);
    expect(await paidBalance(session.organizationId)).toBe(0n);
    const audits = await reconcileAudits(session.id);
    expect(audits.map((audit) => audit['details'])).toEqual([
      expect.objectContaining({ before: 'checkout_completed', after: 'payment_failed', stripeStatus: 'complete', stripePaymentStatus: 'unpaid', stripePaymentIntentStatus: 'requires_payment_method' }),
      expect.objectContaining({ before: 'payment_failed', after: 'payment_failed' }),
    ]);
    expect(audits[0]).toMatchObject({ action: 'billing.payment.reconcile', outcome: 'succeeded', reason });
  });

  it('marks a session payment_failed when both its completion and its failure events were lost', async () => {
    const session = await checkedOut(3300n);
    await pay.stripe.completeCheckout(session.stripeSessionId, { paid: false });
    await pay.stripe.asyncPaymentFailed(session.stripeSessionId);

    const reconciled = await pay.settlement.reconcilePaymentSession(asPlatformAdmin(), session.id, { reason });

    expect(reconciled).toMatchObject({ status: 'payment_failed', paymentStatus: 'unpaid' });
    expect(reconciled.completedAt).toBeInstanceOf(Date);
    expect((await reconcileAudits(session.id))[0]).toMatchObject({ details: { before: 'initiated', after: 'payment_failed' } });
  });

  it('leaves a checkout_completed session whose delayed payment is still processing as it is, audited', async () => {
    const session = await checkedOut(3300n);
    await pay.handle(await pay.stripe.completeCheckout(session.stripeSessionId, { paid: false }));
    const completed = await current(session);

    const reconciled = await pay.settlement.reconcilePaymentSession(asPlatformAdmin(), session.id, { reason });

    expect(reconciled).toEqual(completed);
    expect(await current(session)).toEqual(completed);
    expect(await reconcileAudits(session.id)).toEqual([
      expect.objectContaining({ details: expect.objectContaining({ before: 'checkout_completed', after: 'checkout_completed', stripePaymentIntentStatus: 'processing' }) }),
    ]);
  });

  it('is for platform admins, and names a session that does not exist', async () => {
    const session = await checkedOut();

    expect(await codeOf(pay.settlement.reconcilePaymentSession(pay.access.caller(orgAdmin(session.organizationId)), session.id, { reason }))).toBe('AUTH_FORBIDDEN');
    expect(await codeOf(pay.settlement.reconcilePaymentSession(asPlatformAdmin(), randomUUID(), { reason }))).toBe('BILLING_PAYMENT_SESSION_NOT_FOUND');
    expect(await codeOf(pay.settlement.reconcilePaymentSession(asPlatformAdmin(), session.id, { reason: ' ' }))).toBe('BAD_REQUEST_INVALID_INPUT');
    expect(await reconcileAudits(session.id)).toEqual([]);
  });

  it('refuses while Stripe is unavailable, changing nothing', async () => {
    const session = await checkedOut();
    pay.stripe.setUnavailable(true);
    let code: string;
    try {
      code = await codeOf(pay.settlement.reconcilePaymentSession(asPlatformAdmin(), session.id, { reason }));
    } finally {
      pay.stripe.setUnavailable(false);
    }
    expect(code).toBe('PAYMENT_PROVIDER_UNAVAILABLE');
    expect(await current(session)).toEqual(session);
  });
});

describe('reading payment sessions', () => {
  it('lists an organization’s sessions oldest first, a page at a time, by status', async () => {
    const { organizationId } = await pay.fx.organization();
    const made: PaymentSessionRecord[] = [];
    for (const amount of ['1000', '1100', '1200']) made.push(await pay.checkout.createCheckoutSession(pay.checkoutCaller(organizationId), { organizationId, amount }));
    await pay.handle(await pay.stripe.completeCheckout(made[1]!.stripeSessionId));
    const reader = pay.access.caller(orgAdmin(organizationId)).access;

    const first = await pay.settlement.paymentSessions(reader, organizationId, null, { first: 2 });
    const rest = await pay.settlement.paymentSessions(reader, organizationId, null, { first: 2, after: first.pageInfo.endCursor });
    const credited = await pay.settlement.paymentSessions(reader, organizationId, { status: ['credited'] }, {});

    expect([...first.edges, ...rest.edges].map((edge) => edge.node.id)).toEqual(made.map((session) => session.id));
    expect(first.pageInfo.hasNextPage).toBe(true);
    expect(rest.pageInfo.hasNextPage).toBe(false);
    expect(credited.edges.map((edge) => edge.node.id)).toEqual([made[1]!.id]);
  });

  it('shows one session to whoever reads its organization’s billing, to nobody else (a project’s members included)', async () => {
    const session = await checkedOut();
    const other = await pay.fx.organization();
    const { departmentId, projectId } = await pay.fx.organization();

    expect((await pay.settlement.paymentSession(pay.access.caller(orgAdmin(session.organizationId)).access, session.id))?.id).toBe(session.id);
    expect(await pay.settlement.paymentSession(pay.access.caller(projectMember(session.organizationId, departmentId, projectId)).access, session.id)).toBeNull();
    expect(await pay.settlement.paymentSession(pay.access.caller(orgAdmin(other.organizationId)).access, session.id)).toBeNull();
    expect(await pay.settlement.paymentSession(pay.access.caller(platformAdmin).access, randomUUID())).toBeNull();
    expect(await pay.settlement.paymentSession(pay.access.caller(platformAdmin).access, 'not-a-uuid')).toBeNull();
    expect(await codeOf(pay.settlement.paymentSessions(pay.access.caller(orgAdmin(other.organizationId)).access, session.organizationId, null, {}))).toBe(
      'AUTH_FORBIDDEN',
    );
  });

  it('shows finance the sessions stuck in initiated, checkout_completed or failed_reconcile for long enough', async () => {
    const stuckInitiated = await checkedOut();
    const stuckCompleted = await checkedOut();
    const stuckMismatch = await checkedOut();
    const credited = await checkedOut();
    const recent = await checkedOut();
    await pay.handle(await pay.stripe.completeCheckout(stuckCompleted.stripeSessionId, { paid: false }));
    await pay.handle(await pay.stripe.completeCheckout(stuckMismatch.stripeSessionId, { amountTotal: 1 }));
    await pay.handle(await pay.stripe.completeCheckout(credited.stripeSessionId));
    const old = [stuckInitiated, stuckCompleted, stuckMismatch, credited].map((session) => session.id);
    await pay.fx.admin.query("UPDATE payment_sessions SET updated_at = now() - interval '2 hours' WHERE id = ANY($1)", [old]);

    const listed: string[] = [];
    let after: string | null = null;
    do {
      const page = await pay.settlement.stuckPaymentSessions(pay.access.caller(platformAdmin).access, 3600, { first: 50, after });
      listed.push(...page.edges.map((edge) => edge.node.id));
      after = page.pageInfo.hasNextPage ? page.pageInfo.endCursor : null;
    } while (after !== null);

    expect(listed).toEqual(expect.arrayContaining([stuckInitiated.id, stuckCompleted.id, stuckMismatch.id]));
    expect(listed).not.toContain(credited.id);
    expect(listed).not.toContain(recent.id);
    expect(await codeOf(pay.settlement.stuckPaymentSessions(pay.access.caller(orgAdmin(recent.organizationId)).access, 3600, {}))).toBe('AUTH_FORBIDDEN');
  });
});
