/**
 * Issue 18, disputes: charge.dispute.created moves the disputed amount from
 * the organization's customer balance to its disputes-held account;
 * charge.dispute.closed returns it (won) or books the loss (lost). Each
 * event changes things once, and a close that overtakes its creation holds
 * and closes in order.
 */
import { Disputes, disputeEventHandlers } from '../src/domain/disputes.js';
import type { StripeEventHandlers } from '../src/domain/stripe-events.js';
import { orgAdmin, platformAdmin } from './billing-access.js';
import { codeOf } from './billing-fixture.js';
import { startPaymentFixture, storedEvent, type PaymentFixture } from './payment-fixture.js';

let pf: PaymentFixture;
let disputes: Disputes;
let handlers: StripeEventHandlers;

beforeAll(async () => {
  pf = await startPaymentFixture();
  disputes = new Disputes(pf.fx.database.pool, pf.fx.ledger);
  handlers = disputeEventHandlers(disputes);
});

afterAll(async () => {
  await pf?.close();
});

async function disputeRow(id: string): Promise<Record<string, unknown> | undefined> {
  const { rows } = await pf.fx.admin.query(
    'SELECT status, amount, currency, reason, hold_posting_id, close_posting_id, closed_at IS NOT NULL AS closed FROM payment_disputes WHERE id = $1',
    [id],
  );
  return rows[0];
}

async function transfersOf(postingId: string): Promise<[string, string, string][]> {
  const { rows } = await pf.fx.admin.query<{ debit: string; credit: string; amount: string }>(
    `SELECT d.kind AS debit, c.kind AS credit, t.amount FROM transfers t
     JOIN accounts d ON d.id = t.debit_account_id JOIN accounts c ON c.id = t.credit_account_id
     WHERE t.posting_id = $1 ORDER BY t.ordinal`,
    [postingId],
  );
  return rows.map((row) => [row.debit, row.credit, row.amount]);
}

const disputeIdOf = (event: { data: { object: Record<string, unknown> } }) => event.data.object['id'] as string;

describe('payment disputes', () => {
  it('holds the disputed amount, and a won dispute returns it; repeats change nothing', async () => {
    const { organizationId } = await pf.fx.organization();
    const { session, paymentIntentId } = await pf.creditedPayment(organizationId, 5_000n);
    const opened = await pf.stripe.openDispute(paymentIntentId, 2_000);
    const id = disputeIdOf(opened);

    expect(await pf.handle(opened, handlers)).toEqual({ organizationId, paymentSessionId: session.id });
    await pf.handle(opened, handlers);
    expect(await pf.money(organizationId)).toEqual({ paid: 3_000n, held: 2_000n });
    expect(await disputeRow(id)).toEqual({
      status: 'held',
      amount: '2000',
      currency: 'USD',
      reason: 'fraudulent',
      hold_posting_id: `dispute-hold:${id}`,
      close_posting_id: null,
      closed: false,
    });
    expect(await transfersOf(`dispute-hold:${id}`)).toEqual([['customer_balance', 'disputes_held', '2000']]);

    const closed = await pf.stripe.closeDispute(id, 'won');
    expect(await pf.handle(closed, handlers)).toEqual({ organizationId, paymentSessionId: session.id });
    await pf.handle(closed, handlers);
    await pf.handle(opened, handlers);
    expect(await pf.money(organizationId)).toEqual({ paid: 5_000n, held: 0n });
    expect(await disputeRow(id)).toMatchObject({ status: 'won', close_posting_id: `dispute-release:${id}`, closed: true });
    expect(await transfersOf(`dispute-release:${id}`)).toEqual([['disputes_held', 'customer_balance', '2000']]);
  });

  it('books a lost dispute to payment clearing: the held amount does not come back', async () => {
    const { organizationId } = await pf.fx.organization();
    const { paymentIntentId } = await pf.creditedPayment(organizationId, 5_000n);
    const opened = await pf.stripe.openDispute(paymentIntentId);
    const id = disputeIdOf(opened);
    await pf.handle(opened, handlers);
    expect(await pf.money(organizationId)).toEqual({ paid: 0n, held: 5_000n });

    await pf.handle(await pf.stripe.closeDispute(id, 'lost'), handlers);
    expect(await pf.money(organizationId)).toEqual({ paid: 0n, held: 0n });
    expect(await disputeRow(id)).toMatchObject({ status: 'lost', close_posting_id: `dispute-loss:${id}`, closed: true });
    expect(await transfersOf(`dispute-loss:${id}`)).toEqual([['disputes_held', 'payment_clearing', '5000']]);
  });

  it('holds and closes in order when the close arrives before the creation', async () => {
    const { organizationId } = await pf.fx.organization();
    const { paymentIntentId } = await pf.creditedPayment(organizationId, 4_000n);
    const opened = await pf.stripe.openDispute(paymentIntentId, 1_500);
    const id = disputeIdOf(opened);
    const closed = await pf.stripe.closeDispute(id, 'lost');

    await pf.handle(closed, handlers);
    await pf.handle(opened, handlers);
    expect(await disputeRow(id)).toMatchObject({ status: 'lost', hold_posting_id: `dispute-hold:${id}`, close_posting_id: `dispute-loss:${id}` });
    expect(await pf.money(organizationId)).toEqual({ paid: 2_500n, held: 0n });
    const postings = await pf.fx.admin.query('SELECT id FROM postings WHERE organization_id = $1 AND kind LIKE $2 ORDER BY seq', [organizationId, 'dispute%']);
    expect(postings.rows.map((row) => row.id)).toEqual([`dispute-hold:${id}`, `dispute-loss:${id}`]);
  });

  it('counts a warning_closed inquiry as won, and retries a dispute of a payment billing does not know yet', async () => {
    const { organizationId } = await pf.fx.organization();
    const { paymentIntentId } = await pf.creditedPayment(organizationId, 1_000n);
    const opened = await pf.stripe.openDispute(paymentIntentId, 600);
    await pf.handle(opened, handlers);
    const closed = storedEvent(await pf.stripe.closeDispute(disputeIdOf(opened), 'won'));
    closed.object = { ...closed.object, status: 'warning_closed' };
    await handlers['charge.dispute.closed']!(closed);
    expect(await pf.money(organizationId)).toEqual({ paid: 1_000n, held: 0n });

    const unknown = storedEvent(opened);
    unknown.object = { ...unknown.object, id: 'dp_unknown', payment_intent: 'pi_unknown' };
    expect(await codeOf(handlers['charge.dispute.created']!(unknown))).toBe('BILLING_PAYMENT_SESSION_NOT_FOUND');
    expect(await disputeRow('dp_unknown')).toBeUndefined();
    // A charge with no payment intent is no checkout's: nothing will credit it.
    unknown.object = { ...unknown.object, payment_intent: null };
    expect(await handlers['charge.dispute.created']!(unknown)).toEqual({ flag: 'unknown_payment' });
  });

  it('holds nothing for a dispute of a payment billing never credited (it failed to reconcile), and flags it and its close', async () => {
    const { organizationId } = await pf.fx.organization({ paid: 5_000n });
    const created = await pf.checkout.createCheckoutSession(pf.checkoutCaller(organizationId), { organizationId, amount: '3000' });
    await pf.handle(await pf.stripe.completeCheckout(created.stripeSessionId, { amountTotal: 2_900 }));
    const session = (await pf.store.find(created.id))!;
    expect(session.status).toBe('failed_reconcile');
    const opened = await pf.stripe.openDispute(session.stripePaymentIntentId!);
    const flagged = { organizationId, paymentSessionId: session.id, flag: 'payment_not_credited' };

    expect(await pf.handle(opened, handlers)).toEqual(flagged);
    expect(await pf.handle(await pf.stripe.closeDispute(disputeIdOf(opened), 'lost'), handlers)).toEqual(flagged);
    expect(await pf.money(organizationId)).toEqual({ paid: 5_000n, held: 0n });
    expect(await disputeRow(disputeIdOf(opened))).toBeUndefined();
  });

  it("lists an organization's disputes in the order they were held, to whoever reads its billing", async () => {
    const { organizationId } = await pf.fx.organization();
    const { paymentIntentId: first } = await pf.creditedPayment(organizationId, 1_000n);
    const { paymentIntentId: second } = await pf.creditedPayment(organizationId, 1_000n);
    const one = await pf.stripe.openDispute(first, 100);
    const two = await pf.stripe.openDispute(second, 200);
    await pf.handle(one, handlers);
    await pf.handle(two, handlers);

    const reader = pf.access.caller(orgAdmin(organizationId)).access;
    const page = await disputes.disputes(reader, organizationId, { first: 1 });
    expect(page.edges.map((edge) => [edge.node.id, edge.node.amount])).toEqual([[disputeIdOf(one), 100n]]);
    const rest = await disputes.disputes(reader, organizationId, { first: 5, after: page.pageInfo.endCursor });
    expect(rest.edges.map((edge) => [edge.node.id, edge.node.status])).toEqual([[disputeIdOf(two), 'held']]);
    expect(rest.pageInfo.hasNextPage).toBe(false);
    const other = await pf.fx.organization();
    expect(await codeOf(disputes.disputes(pf.access.caller(orgAdmin(other.organizationId)).access, organizationId, {}))).toBe('AUTH_FORBIDDEN');
    expect((await disputes.disputes(pf.access.caller(platformAdmin).access, organizationId, {})).edges).toHaveLength(2);
  });
});
