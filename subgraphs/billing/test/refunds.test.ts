/**
 * Issue 18, refunds: a platform admin's refund of a credited Stripe payment
 * goes requested -> submitted -> refunded -> posted, within
 * billing.refund.window of the credit and up to the unspent paid balance
 * (promotional credit is never refunded), audited, idempotent by its key;
 * our refund and its charge.refunded webhook post once between them, and a
 * refund made at Stripe is recorded and posted once.
 */
import { randomUUID } from 'node:crypto';
import type { StripeEventJson } from '@aifactory/stripe-fake';
import type { PaymentProvider, ProviderRefund } from '../src/domain/payment-provider.js';
import { Refunds, refundEventHandlers, type RefundPaymentInput } from '../src/domain/refunds.js';
import { Reservations } from '../src/domain/reservations.js';
import type { StoredStripeEvent, StripeEventHandlers } from '../src/domain/stripe-events.js';
import { orgAdmin, platformAdmin, policySource } from './billing-access.js';
import { codeOf, testActor } from './billing-fixture.js';
import { startPaymentFixture, storedEvent, type PaymentFixture, type TestPolicySource } from './payment-fixture.js';
import { knownProject, policySnapshot, policySource as reservationPolicy } from './reservation-fixture.js';

let pf: PaymentFixture;
let refunds: Refunds;
let handlers: StripeEventHandlers;
const DAY_MS = 86_400_000;

beforeAll(async () => {
  pf = await startPaymentFixture();
  refunds = new Refunds(pf.fx.database.pool, pf.fx.ledger, pf.provider, { subjectPrefix: pf.subjectPrefix });
  handlers = refundEventHandlers(refunds);
});

afterAll(async () => {
  await pf?.close();
});

const asAdmin = (policy: TestPolicySource = policySource()) => ({
  ...pf.access.caller(platformAdmin),
  accessModel: policy,
});

const refundOf = (paymentSessionId: string, amount: bigint, idempotencyKey = randomUUID()): RefundPaymentInput => ({
  paymentSessionId,
  amount: amount.toString(),
  reason: 'Customer asked for their money back',
  idempotencyKey,
});

async function paidOf(organizationId: string): Promise<{ paid: bigint; promotional: bigint }> {
  const { rows } = await pf.fx.admin.query<{ paid: string; promotional: string }>('SELECT paid, promotional FROM organization_funds WHERE organization_id = $1', [
    organizationId,
  ]);
  return { paid: BigInt(rows[0]!.paid), promotional: BigInt(rows[0]!.promotional) };
}

/** A posting's transfers as (debit kind, credit kind, amount), and whether finance should look at it. */
async function postingOf(postingId: string): Promise<{ transfers: [string, string, string][]; flagged: boolean } | undefined> {
  const posting = await pf.fx.admin.query<{ flagged: boolean }>('SELECT flagged FROM postings WHERE id = $1', [postingId]);
  if (posting.rows.length === 0) return undefined;
  const { rows } = await pf.fx.admin.query<{ debit: string; credit: string; amount: string }>(
    `SELECT d.kind AS debit, c.kind AS credit, t.amount FROM transfers t
     JOIN accounts d ON d.id = t.debit_account_id JOIN accounts c ON c.id = t.credit_account_id
     WHERE t.posting_id = $1 ORDER BY t.ordinal`,
    [postingId],
  );
  return { transfers: rows.map((row) => [row.debit, row.credit, row.amount]), flagged: posting.rows[0]!.flagged };
}

async function anyPaymentIntent(): Promise<string> {
  const { organizationId } = await pf.fx.organization();
  return (await pf.creditedPayment(organizationId, 1_000n)).paymentIntentId;
}

async function requestsOf(paymentSessionId: string): Promise<{ status: string; origin: string; amount: string; stripe_refund_id: string | null }[]> {
  const { rows } = await pf.fx.admin.query(
    'SELECT status, origin, amount, stripe_refund_id FROM refund_requests WHERE payment_session_id = $1 ORDER BY created_at, id',
    [paymentSessionId],
  );
  return rows;
}

async function refundAudits(organizationId: string): Promise<Record<string, any>[]> {
  const { rows } = await pf.fx.admin.query<{ payload: Record<string, any> }>(
    "SELECT payload FROM outbox_events WHERE type = 'platform.audit.billing.payment.refund' AND organization_id = $1",
    [organizationId],
  );
  return rows.map((row) => row.payload);
}

/** The charge.refunded Stripe emitted after our call for a refund request (its idempotency key). */
function chargeRefundedFor(refundRequestId: string): StripeEventJson {
  const event = pf.stripe.events().find((e) => e.type === 'charge.refunded' && e.request?.idempotency_key === `refund:${refundRequestId}`);
  if (!event) throw new Error(`no charge.refunded for refund request ${refundRequestId}`);
  return event;
}

/** Money leaves the paid balance only (not promotional credit), as usage the promotional credit did not cover. */
async function spendPaid(organizationId: string, amount: bigint): Promise<void> {
  const accounts = await pf.fx.ledger.organizationAccounts(organizationId);
  const revenue = await pf.fx.ledger.accounts.platformAccount('revenue', accounts.currency);
  await pf.fx.ledger.post([
    {
      id: `test-spend:${randomUUID()}`,
      kind: 'usage',
      currency: accounts.currency,
      organizationId,
      transfers: [{ debitAccountId: accounts.customer_balance.id, creditAccountId: revenue.id, amount, code: 'spend' }],
      actor: testActor,
    },
  ]);
}

/**
 * The fixture's Stripe as billing would see it when Stripe reports refunds
 * pending (bank refunds, some cards): `statuses` says what Stripe reports of
 * each refund id (default pending); `forgetKeys` makes Stripe forget
 * idempotency keys, as it does after 24 hours.
 */
function slowRefunds() {
  const statuses = new Map<string, ProviderRefund['status']>();
  const keys: string[] = [];
  const control = { forgetKeys: false };
  const reported = (refund: ProviderRefund): ProviderRefund => ({ ...refund, status: statuses.get(refund.id) ?? 'pending' });
  const provider: PaymentProvider = Object.assign(Object.create(pf.provider) as PaymentProvider, {
    createRefund: async (input: Parameters<PaymentProvider['createRefund']>[0], key: string) => {
      keys.push(key);
      return reported(await pf.provider.createRefund(input, control.forgetKeys ? `${key}:${keys.length}` : key));
    },
    listRefunds: async (chargeId: string) => (await pf.provider.listRefunds(chargeId)).map(reported),
  });
  const slow = new Refunds(pf.fx.database.pool, pf.fx.ledger, provider, { subjectPrefix: pf.subjectPrefix });
  return { refunds: slow, handlers: refundEventHandlers(slow), statuses, keys, control };
}

/** Stripe's charge.refund.updated (or another event of `type` carrying the refund) for a refund at the fake. */
function refundUpdated(stripeRefundId: string, type = 'charge.refund.updated'): StoredStripeEvent {
  const refund = pf.stripe.refunds().find((candidate) => candidate.id === stripeRefundId)!;
  const id = `evt_${randomUUID().replaceAll('-', '')}`;
  return { id, type, object: { ...refund }, correlationId: `stripe-${id}` };
}

describe('refundPayment', () => {
  it('posts a refund inside the window once: paid balance down, refunds account up, audited; the key again returns it', async () => {
    const { organizationId } = await pf.fx.organization();
    const { session, paymentIntentId } = await pf.creditedPayment(organizationId, 5_000n);
    const input = refundOf(session.id, 2_000n);

    const refunded = await refunds.refundPayment(asAdmin(), input);
    expect(refunded).toMatchObject({ status: 'posted', origin: 'platform', amount: 2_000n, currency: 'USD', paymentSessionId: session.id, organizationId });
    expect(refunded.stripeRefundId).toMatch(/^re_/);
    expect(refunded.postingId).toBe(`refund:${refunded.stripeRefundId}`);
    expect(refunded.postedAt).toBeInstanceOf(Date);
    expect(await paidOf(organizationId)).toEqual({ paid: 3_000n, promotional: 0n });
    expect(await postingOf(refunded.postingId!)).toEqual({ transfers: [['customer_balance', 'refunds', '2000']], flagged: false });

    const audits = await refundAudits(organizationId);
    expect(audits).toHaveLength(1);
    expect(audits[0]).toMatchObject({
      action: 'billing.payment.refund',
      outcome: 'succeeded',
      principal: { type: 'user', id: 'platform-admin' },
      scope: 'platform:billing:admin',
      resource: `core42:aicloud:global:${organizationId}:-:payment_session:${session.id}`,
      reason: input.reason,
      details: { refundRequestId: refunded.id, paymentSessionId: session.id, amount: '2000', currency: 'USD', idempotencyKey: input.idempotencyKey },
    });

    const again = await refunds.refundPayment(asAdmin(), input);
    expect(again).toMatchObject({ id: refunded.id, status: 'posted', postingId: refunded.postingId });
    expect(await codeOf(refunds.refundPayment(asAdmin(), { ...input, amount: '2001' }))).toBe('IDEMPOTENCY_KEY_REUSED');
    expect(pf.stripe.refunds().filter((refund) => refund.payment_intent === paymentIntentId)).toHaveLength(1);
    expect(await paidOf(organizationId)).toEqual({ paid: 3_000n, promotional: 0n });
    expect(await refundAudits(organizationId)).toHaveLength(1);
  });

  it('posts our refund and its charge.refunded webhook once between them, whichever comes first', async () => {
    const { organizationId } = await pf.fx.organization();
    const { session } = await pf.creditedPayment(organizationId, 4_000n);

    // The webhook after our refund posted: it finds the request by its Stripe id and changes nothing.
    const first = await refunds.refundPayment(asAdmin(), refundOf(session.id, 1_000n));
    expect(await pf.handle(chargeRefundedFor(first.id), handlers)).toEqual({ organizationId, paymentSessionId: session.id });

    // The webhook overtaking our record of Stripe's answer: it posts the request Stripe's metadata names, ours then finds it posted.
    const overtakenKey = randomUUID();
    pf.stripe.onRequest(async (call) => {
      if (call.method !== 'POST' || call.path !== '/v1/refunds') return;
      pf.stripe.onRequest(null);
      const event = pf.stripe.events().findLast((e) => e.type === 'charge.refunded' && e.request?.idempotency_key === call.idempotencyKey)!;
      await pf.handle(event, handlers);
    });
    const second = await refunds.refundPayment(asAdmin(), refundOf(session.id, 1_500n, overtakenKey));
    expect(second).toMatchObject({ status: 'posted', origin: 'platform', postingId: `refund:${second.stripeRefundId}` });
    await pf.handle(chargeRefundedFor(second.id), handlers);

    expect(await paidOf(organizationId)).toEqual({ paid: 1_500n, promotional: 0n });
    expect(await requestsOf(session.id)).toEqual([
      { status: 'posted', origin: 'platform', amount: '1000', stripe_refund_id: first.stripeRefundId },
      { status: 'posted', origin: 'platform', amount: '1500', stripe_refund_id: second.stripeRefundId },
    ]);
    const postings = await pf.fx.admin.query("SELECT id FROM postings WHERE organization_id = $1 AND kind = 'refund' ORDER BY seq", [organizationId]);
    expect(postings.rows.map((row) => row.id)).toEqual([`refund:${first.stripeRefundId}`, `refund:${second.stripeRefundId}`]);
  });

  it('refuses a refund past billing.refund.window from the credit with BILLING_REFUND_WINDOW_EXCEEDED', async () => {
    const { organizationId } = await pf.fx.organization();
    const { session } = await pf.creditedPayment(organizationId, 3_000n);
    await pf.fx.admin.query('UPDATE payment_sessions SET credited_at = $2 WHERE id = $1', [session.id, new Date(Date.now() - 31 * DAY_MS)]);

    // The registry default, P30D.
    expect(await codeOf(refunds.refundPayment(asAdmin(), refundOf(session.id, 1_000n)))).toBe('BILLING_REFUND_WINDOW_EXCEEDED');
    expect(await requestsOf(session.id)).toEqual([]);
    expect(await refundAudits(organizationId)).toHaveLength(0);
    const stale = { ageMs: () => 6 * 60_000, policy: policySource().policy };
    expect(await codeOf(refunds.refundPayment(asAdmin(stale), refundOf(session.id, 1_000n)))).toBe('POLICY_SNAPSHOT_STALE');

    // The organization's policy allows 60 days: the same refund goes through.
    const sixtyDays = policySource({ 'billing.refund.window': 'P60D' });
    expect(await refunds.refundPayment(asAdmin(sixtyDays), refundOf(session.id, 1_000n))).toMatchObject({ status: 'posted' });
    expect(await paidOf(organizationId)).toEqual({ paid: 2_000n, promotional: 0n });
  });

  it('refuses more than the unspent paid balance, and more than is left of the payment', async () => {
    const { organizationId } = await pf.fx.organization();
    const { session } = await pf.creditedPayment(organizationId, 5_000n);
    await spendPaid(organizationId, 4_000n);

    const above = await refunds.refundPayment(asAdmin(), refundOf(session.id, 1_500n)).catch((error: unknown) => error);
    expect(above).toMatchObject({ code: 'BILLING_REFUND_EXCEEDS_BALANCE', details: { organizationId, unspentPaid: '1000' } });
    expect(await codeOf(refunds.refundPayment(asAdmin(), refundOf(session.id, 5_001n)))).toBe('BILLING_REFUND_EXCEEDS_PAYMENT');
    expect(await refunds.refundPayment(asAdmin(), refundOf(session.id, 1_000n))).toMatchObject({ status: 'posted' });
    expect(await codeOf(refunds.refundPayment(asAdmin(), refundOf(session.id, 1n)))).toBe('BILLING_REFUND_EXCEEDS_BALANCE');
    expect(await paidOf(organizationId)).toEqual({ paid: 0n, promotional: 0n });
    expect(await requestsOf(session.id)).toEqual([{ status: 'posted', origin: 'platform', amount: '1000', stripe_refund_id: expect.stringMatching(/^re_/) }]);
  });

  it('never refunds promotional credit: an organization rich in promotional credit refunds only its unspent paid balance', async () => {
    const { organizationId } = await pf.fx.organization({ promotional: 10_000n });
    const { session } = await pf.creditedPayment(organizationId, 3_000n);
    await spendPaid(organizationId, 2_500n);

    expect(await codeOf(refunds.refundPayment(asAdmin(), refundOf(session.id, 1_000n)))).toBe('BILLING_REFUND_EXCEEDS_BALANCE');
    expect(await refunds.refundPayment(asAdmin(), refundOf(session.id, 500n))).toMatchObject({ status: 'posted' });
    expect(await paidOf(organizationId)).toEqual({ paid: 0n, promotional: 10_000n });
  });

  it('keeps what reservations hold of the paid balance out of a refund: their charges take promotional credit first, then paid', async () => {
    const org = await pf.fx.organization({ promotional: 1_000n });
    const { organizationId } = org;
    const { session } = await pf.creditedPayment(organizationId, 3_000n);
    await knownProject(pf.fx, org);
    // Usage under way holds 3 000: 1 000 of it will be charged to promotional credit, 2 000 to the paid balance.
    const reservations = new Reservations(pf.fx.database.pool, pf.fx.ledger);
    await reservations.reserve(
      {
        caller: 'gpuaas',
        organizationId,
        projectId: org.projectId,
        amount: 3_000n,
        ttlSeconds: 600,
        idempotencyKey: randomUUID(),
        actor: testActor,
        correlationId: `corr-${randomUUID()}`,
      },
      reservationPolicy([policySnapshot(organizationId)]),
    );

    const above = await refunds.refundPayment(asAdmin(), refundOf(session.id, 1_001n)).catch((error: unknown) => error);
    expect(above).toMatchObject({ code: 'BILLING_REFUND_EXCEEDS_BALANCE', details: { organizationId, unspentPaid: '1000' } });
    expect(await refunds.refundPayment(asAdmin(), refundOf(session.id, 1_000n))).toMatchObject({ status: 'posted' });
    expect(await paidOf(organizationId)).toEqual({ paid: 2_000n, promotional: 1_000n });
  });

  it('lets concurrent refunds take no more than the unspent paid balance between them', async () => {
    const { organizationId } = await pf.fx.organization();
    const { session: one } = await pf.creditedPayment(organizationId, 3_000n);
    const { session: two } = await pf.creditedPayment(organizationId, 3_000n);
    await spendPaid(organizationId, 2_000n);

    const attempts = [one, one, two, two].map((session) => codeOf(refunds.refundPayment(asAdmin(), refundOf(session.id, 1_500n))));
    const codes = (await Promise.all(attempts)).sort();
    expect(codes).toEqual(['BILLING_REFUND_EXCEEDS_BALANCE', 'BILLING_REFUND_EXCEEDS_BALANCE', 'accepted', 'accepted']);
    expect(await paidOf(organizationId)).toEqual({ paid: 1_000n, promotional: 0n });
  });

  it('keeps the request requested while Stripe is down; a retry with its key posts it once', async () => {
    const { organizationId } = await pf.fx.organization();
    const { session, paymentIntentId } = await pf.creditedPayment(organizationId, 3_000n);
    const { session: other } = await pf.creditedPayment(organizationId, 3_000n);
    await spendPaid(organizationId, 2_500n);
    const input = refundOf(session.id, 2_000n);

    pf.stripe.setUnavailable(true);
    try {
      expect(await codeOf(refunds.refundPayment(asAdmin(), input))).toBe('PAYMENT_PROVIDER_UNAVAILABLE');
      expect(await codeOf(refunds.refundPayment(asAdmin(), input))).toBe('PAYMENT_PROVIDER_UNAVAILABLE');
    } finally {
      pf.stripe.setUnavailable(false);
    }
    expect(await requestsOf(session.id)).toEqual([{ status: 'requested', origin: 'platform', amount: '2000', stripe_refund_id: null }]);
    expect(await paidOf(organizationId)).toEqual({ paid: 3_500n, promotional: 0n });
    // The request on its way out counts against the paid balance already: 3500 paid, 1500 of it unspent.
    expect(await codeOf(refunds.refundPayment(asAdmin(), refundOf(other.id, 1_600n)))).toBe('BILLING_REFUND_EXCEEDS_BALANCE');

    const retried = await refunds.refundPayment(asAdmin(), input);
    expect(retried).toMatchObject({ status: 'posted', amount: 2_000n });
    expect(await refunds.refundPayment(asAdmin(), input)).toMatchObject({ id: retried.id, status: 'posted' });
    expect(pf.stripe.refunds().filter((refund) => refund.payment_intent === paymentIntentId)).toHaveLength(1);
    expect(await paidOf(organizationId)).toEqual({ paid: 1_500n, promotional: 0n });
    expect(await refundAudits(organizationId)).toHaveLength(1);
  });

  it('posts a refund Stripe reported pending once charge.refund.updated says it succeeded', async () => {
    const { organizationId } = await pf.fx.organization();
    const { session } = await pf.creditedPayment(organizationId, 3_000n);
    const slow = slowRefunds();

    const submitted = await slow.refunds.refundPayment(asAdmin(), refundOf(session.id, 1_000n));
    expect(submitted).toMatchObject({ status: 'submitted', stripeRefundId: expect.stringMatching(/^re_/) });
    // charge.refunded came while the refund was pending: nothing to post yet.
    await pf.handle(chargeRefundedFor(submitted.id), slow.handlers);
    expect(await paidOf(organizationId)).toEqual({ paid: 3_000n, promotional: 0n });

    slow.statuses.set(submitted.stripeRefundId!, 'succeeded');
    const event = refundUpdated(submitted.stripeRefundId!);
    expect(await slow.handlers['charge.refund.updated']?.(event)).toEqual({ organizationId, paymentSessionId: session.id });
    expect(await slow.handlers['charge.refund.updated']?.(event)).toEqual({ organizationId, paymentSessionId: session.id });
    expect(await requestsOf(session.id)).toEqual([{ status: 'posted', origin: 'platform', amount: '1000', stripe_refund_id: submitted.stripeRefundId }]);
    expect(await paidOf(organizationId)).toEqual({ paid: 2_000n, promotional: 0n });
  });

  it('fails a refund Stripe reported pending once it fails there, and lets go of the paid balance it held', async () => {
    const { organizationId } = await pf.fx.organization();
    const { session } = await pf.creditedPayment(organizationId, 3_000n);
    const { session: other } = await pf.creditedPayment(organizationId, 3_000n);
    await spendPaid(organizationId, 3_000n);
    const slow = slowRefunds();
    const submitted = await slow.refunds.refundPayment(asAdmin(), refundOf(session.id, 3_000n));
    expect(submitted.status).toBe('submitted');
    expect(await codeOf(refunds.refundPayment(asAdmin(), refundOf(other.id, 1_000n)))).toBe('BILLING_REFUND_EXCEEDS_BALANCE');

    slow.statuses.set(submitted.stripeRefundId!, 'failed');
    expect(await slow.handlers['refund.failed']?.(refundUpdated(submitted.stripeRefundId!, 'refund.failed'))).toEqual({
      organizationId,
      paymentSessionId: session.id,
    });

    expect(await requestsOf(session.id)).toEqual([{ status: 'failed', origin: 'platform', amount: '3000', stripe_refund_id: submitted.stripeRefundId }]);
    expect(await paidOf(organizationId)).toEqual({ paid: 3_000n, promotional: 0n });
    // Nothing is on its way out any more: the paid balance refunds again.
    expect(await refunds.refundPayment(asAdmin(), refundOf(other.id, 1_000n))).toMatchObject({ status: 'posted' });
  });

  it('never asks Stripe again for a submitted refund: Stripe forgets the key after a day and would refund twice', async () => {
    const { organizationId } = await pf.fx.organization();
    const { session, paymentIntentId } = await pf.creditedPayment(organizationId, 3_000n);
    const slow = slowRefunds();
    const input = refundOf(session.id, 1_000n);
    const submitted = await slow.refunds.refundPayment(asAdmin(), input);
    expect(submitted.status).toBe('submitted');

    slow.control.forgetKeys = true;
    expect(await slow.refunds.refundPayment(asAdmin(), input)).toMatchObject({ id: submitted.id, status: 'submitted', stripeRefundId: submitted.stripeRefundId });

    expect(slow.keys).toEqual([`refund:${submitted.id}`]);
    expect(pf.stripe.refunds().filter((refund) => refund.payment_intent === paymentIntentId)).toHaveLength(1);
  });

  it('marks the request failed with its reason when Stripe refuses the refund', async () => {
    const { organizationId } = await pf.fx.organization();
    const { session, paymentIntentId } = await pf.creditedPayment(organizationId, 3_000n);
    // Refunded at Stripe before billing heard of it: Stripe holds less than billing thinks.
    await pf.stripe.refundOutside(paymentIntentId, 2_500);

    const refused = await refunds.refundPayment(asAdmin(), refundOf(session.id, 1_000n));
    expect(refused.status).toBe('failed');
    // Stripe's code first, so finance sees why without opening Stripe.
    expect(refused.failureReason).toBe('amount_too_large: The payment provider refused the request: invalid_request_error');
    expect(refused.stripeRefundId).toBeNull();
    expect(await paidOf(organizationId)).toEqual({ paid: 3_000n, promotional: 0n });
  });

  it('refuses a payment that is not credited, an unknown one, and an organization admin', async () => {
    const { organizationId } = await pf.fx.organization();
    const open = await pf.checkout.createCheckoutSession(pf.checkoutCaller(organizationId), { organizationId, amount: '1000' });
    expect(await codeOf(refunds.refundPayment(asAdmin(), refundOf(open.id, 100n)))).toBe('BILLING_PAYMENT_NOT_REFUNDABLE');
    expect(await codeOf(refunds.refundPayment(asAdmin(), refundOf(randomUUID(), 100n)))).toBe('BILLING_PAYMENT_SESSION_NOT_FOUND');
    const { session } = await pf.creditedPayment(organizationId, 1_000n);
    const ownAdmin = { ...pf.access.caller(orgAdmin(organizationId)), accessModel: policySource() };
    expect(await codeOf(refunds.refundPayment(ownAdmin, refundOf(session.id, 100n)))).toBe('AUTH_FORBIDDEN');
    expect(await codeOf(refunds.refundPayment(asAdmin(), refundOf(session.id, 0n)))).toBe('BILLING_AMOUNT_INVALID');
    expect(await requestsOf(session.id)).toEqual([]);
  });
});

describe('charge.refunded', () => {
  it('records and posts a refund made at Stripe once', async () => {
    const { organizationId } = await pf.fx.organization();
    const { session, paymentIntentId } = await pf.creditedPayment(organizationId, 3_000n);
    const event = await pf.stripe.refundOutside(paymentIntentId, 1_200);

    expect(await pf.handle(event, handlers)).toEqual({ organizationId, paymentSessionId: session.id });
    expect(await pf.handle(event, handlers)).toEqual({ organizationId, paymentSessionId: session.id });
    const [recorded] = await requestsOf(session.id);
    expect(await requestsOf(session.id)).toEqual([{ status: 'posted', origin: 'stripe', amount: '1200', stripe_refund_id: expect.stringMatching(/^re_/) }]);
    expect(await postingOf(`refund:${recorded!.stripe_refund_id}`)).toEqual({ transfers: [['customer_balance', 'refunds', '1200']], flagged: false });
    expect(await paidOf(organizationId)).toEqual({ paid: 1_800n, promotional: 0n });
  });

  it('posts a refund made at Stripe below a zero paid balance, flagged for finance', async () => {
    const { organizationId } = await pf.fx.organization();
    const { session, paymentIntentId } = await pf.creditedPayment(organizationId, 3_000n);
    await spendPaid(organizationId, 2_500n);
    const event = await pf.stripe.refundOutside(paymentIntentId, 1_200);

    expect(await pf.handle(event, handlers)).toEqual({ organizationId, paymentSessionId: session.id, flag: 'refund_exceeds_balance' });
    const [recorded] = await requestsOf(session.id);
    expect(await postingOf(`refund:${recorded!.stripe_refund_id}`)).toMatchObject({ flagged: true });
    expect(await paidOf(organizationId)).toEqual({ paid: -700n, promotional: 0n });
    // Posted already: the event again neither posts nor flags.
    expect(await pf.handle(event, handlers)).toEqual({ organizationId, paymentSessionId: session.id });
  });

  it('posts nothing for a refund made at Stripe of a payment billing never credited (it failed to reconcile), and flags it', async () => {
    const { organizationId } = await pf.fx.organization({ paid: 5_000n });
    const created = await pf.checkout.createCheckoutSession(pf.checkoutCaller(organizationId), { organizationId, amount: '3000' });
    await pf.handle(await pf.stripe.completeCheckout(created.stripeSessionId, { amountTotal: 2_900 }));
    const session = (await pf.store.find(created.id))!;
    expect(session.status).toBe('failed_reconcile');

    const event = await pf.stripe.refundOutside(session.stripePaymentIntentId!, 2_900);

    expect(await pf.handle(event, handlers)).toEqual({ organizationId, paymentSessionId: session.id, flag: 'payment_not_credited' });
    expect(await paidOf(organizationId)).toEqual({ paid: 5_000n, promotional: 0n });
    expect(await requestsOf(session.id)).toEqual([]);
  });

  it('retries a refund of a payment billing does not know yet, and flags one of a charge no checkout made', async () => {
    const event = storedEvent(await pf.stripe.refundOutside(await anyPaymentIntent(), 100));
    event.object = { id: 'ch_unknown', object: 'charge', payment_intent: 'pi_unknown' };
    const error = await handlers['charge.refunded']!(event).catch((thrown: unknown) => thrown);
    expect(error).toMatchObject({ code: 'BILLING_PAYMENT_SESSION_NOT_FOUND', message: expect.stringMatching(/not credited yet.*retried/) });

    event.object = { id: 'ch_unknown', object: 'charge', payment_intent: null };
    expect(await handlers['charge.refunded']!(event)).toEqual({ flag: 'unknown_payment' });
  });
});

describe('refundRequests', () => {
  it("lists an organization's refunds oldest first to platform admins only", async () => {
    const { organizationId } = await pf.fx.organization();
    const { session, paymentIntentId } = await pf.creditedPayment(organizationId, 3_000n);
    const ours = await refunds.refundPayment(asAdmin(), refundOf(session.id, 500n));
    await pf.handle(await pf.stripe.refundOutside(paymentIntentId, 700), handlers);

    const admin = pf.access.caller(platformAdmin).access;
    const first = await refunds.requests(admin, organizationId, { first: 1 });
    expect(first.edges.map((edge) => [edge.node.id, edge.node.origin])).toEqual([[ours.id, 'platform']]);
    expect(first.pageInfo.hasNextPage).toBe(true);
    const rest = await refunds.requests(admin, organizationId, { first: 5, after: first.pageInfo.endCursor });
    expect(rest.edges.map((edge) => [edge.node.origin, edge.node.amount])).toEqual([['stripe', 700n]]);
    expect(rest.pageInfo.hasNextPage).toBe(false);
    expect(await codeOf(refunds.requests(pf.access.caller(orgAdmin(organizationId)).access, organizationId, {}))).toBe('AUTH_FORBIDDEN');
  });
});
