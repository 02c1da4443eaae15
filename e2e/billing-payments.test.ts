/**
 * Issue 18 end to end: an organization's billing admin starts a Stripe
 * Checkout top-up through the gateway (Idempotency-Key), the fake Stripe
 * completes it and signs its webhook to the gateway's /webhooks/stripe, which
 * forwards the raw body to billing; billing verifies, stores and processes it
 * and the balance is credited once. A platform admin refunds part of it;
 * finance sees stuck sessions and the webhook events; /metrics carries the
 * webhook lag, Stripe reachability and dead letters.
 */
import { randomUUID } from 'node:crypto';
import type pg from 'pg';
import { eventually } from './support/eventually.js';
import { startTestPlatform, type TestPlatform } from './support/test-platform.js';

const CHECKOUT = `mutation C($input: CreateCheckoutSessionInput!) {
  createCheckoutSession(input: $input) { id status amount currency url stripeSessionId }
}`;
const SESSION = 'query S($id: ID!) { paymentSession(id: $id) { id status postingId creditedAt amountReceived } }';
const BALANCE = 'query B($id: ID!) { organization(id: $id) { balance { paid available } } }';
const REFUND = `mutation R($input: RefundPaymentInput!) {
  refundPayment(input: $input) { id status amount postingId origin }
}`;
const EVENTS = `query E($filter: StripeWebhookEventFilter) {
  stripeWebhookEvents(filter: $filter, first: 50) { edges { node { id type status flagged flagReason paymentSessionId } } }
}`;

describe('payments with Stripe through the running platform', () => {
  let t: TestPlatform;
  let admin: string;
  let orgAdmin: string;
  let orgId: string;
  let db: pg.Client;

  const call = async (assertion: string, query: string, variables: Record<string, unknown> = {}, headers: Record<string, string> = {}) => {
    const { status, body } = await t.graphql({ query, variables, assertion, headers });
    expect(status).toBe(200);
    return body as { data?: any; errors?: { message: string; extensions?: { code?: string } }[] };
  };
  const ok = async (assertion: string, query: string, variables: Record<string, unknown> = {}, headers: Record<string, string> = {}) => {
    const body = await call(assertion, query, variables, headers);
    if (body.errors) throw new Error(JSON.stringify(body.errors));
    return body.data;
  };

  beforeAll(async () => {
    t = await startTestPlatform();
    db = await t.db.admin();
    admin = await t.adminAssertion();
    orgId = (await ok(admin, 'mutation { createOrganization(input: { slug: "topup", name: "Top-up Co", billingCurrency: "USD" }) { id } }')).createOrganization.id;
    orgAdmin = await t.assertion({ subject: 'topup-owner', email: 'owner@topup.example' });
    const ownerId = (await ok(orgAdmin, '{ me { id } }')).me.id;
    await ok(admin, 'mutation G($u: ID!, $o: ID!) { grantRole(userId: $u, level: ORGANIZATION, nodeId: $o, role: "org_admin") { id } }', { u: ownerId, o: orgId });
    await eventually(async () => expect((await ok(orgAdmin, BALANCE, { id: orgId })).organization.balance.paid).toBe('0'), 20_000);
  }, 120_000);

  afterAll(async () => {
    await db?.end();
    await t?.close();
  });

  it('tops up through Checkout and its webhook through the gateway, crediting once', async () => {
    const key = randomUUID();
    const input = { organizationId: orgId, amount: '5000' };
    const missing = await call(orgAdmin, CHECKOUT, { input });
    expect(missing.errors?.[0]?.extensions?.code).toBe('IDEMPOTENCY_KEY_REQUIRED');

    const session = (await ok(orgAdmin, CHECKOUT, { input }, { 'idempotency-key': key })).createCheckoutSession;
    expect(session).toMatchObject({ status: 'INITIATED', amount: '5000', currency: 'USD' });
    expect(session.url).toContain(session.stripeSessionId);
    const tooSmall = await call(orgAdmin, CHECKOUT, { input: { ...input, amount: '1' } }, { 'idempotency-key': randomUUID() });
    expect(tooSmall.errors?.[0]?.extensions?.code).toBe('BILLING_CHECKOUT_AMOUNT_OUT_OF_BOUNDS');

    // The fake signs checkout.session.completed and posts it to the gateway's /webhooks/stripe.
    const completed = await t.stripe.completeCheckout(session.stripeSessionId);
    await eventually(async () => expect((await ok(orgAdmin, SESSION, { id: session.id })).paymentSession).toMatchObject({ status: 'CREDITED', postingId: `payment:${session.id}` }), 20_000);
    expect((await ok(orgAdmin, BALANCE, { id: orgId })).organization.balance.paid).toBe('5000');

    // Stripe delivering the same event again: 200, nothing else happens.
    const again = await t.stripe.deliver(completed);
    expect(again.status).toBe(200);
    const tampered = await t.stripe.deliver(completed, {
      mutate: (body) => {
        const raised = body.replace(/("amount_total":\s*)5000\b/, '$150000');
        expect(raised).not.toBe(body);
        return raised;
      },
    });
    expect(tampered.status).toBe(400);
    const credited = await db.query<{ count: number }>(
      "SELECT count(*)::int AS count FROM billing.outbox_events WHERE type = 'platform.billing.balance.credited' AND organization_id = $1",
      [orgId],
    );
    expect(credited.rows[0]!.count).toBe(1);
    expect((await ok(orgAdmin, BALANCE, { id: orgId })).organization.balance.paid).toBe('5000');

    // A platform admin refunds part of it; its charge.refunded webhook posts nothing more.
    const refundKey = randomUUID();
    const refund = (await ok(admin, REFUND, { input: { paymentSessionId: session.id, amount: '1500', reason: 'Customer asked', idempotencyKey: refundKey } })).refundPayment;
    expect(refund).toMatchObject({ status: 'POSTED', amount: '1500', origin: 'PLATFORM' });
    await eventually(async () => {
      const events = (await ok(admin, EVENTS, { filter: { status: ['PROCESSED'] } })).stripeWebhookEvents.edges.map((edge: any) => edge.node.type);
      expect(events).toEqual(expect.arrayContaining(['checkout.session.completed', 'charge.refunded']));
    }, 20_000);
    expect((await ok(orgAdmin, BALANCE, { id: orgId })).organization.balance.paid).toBe('3500');
    const refusedForOwner = await call(orgAdmin, REFUND, { input: { paymentSessionId: session.id, amount: '1', reason: 'x', idempotencyKey: randomUUID() } });
    expect(refusedForOwner.errors?.[0]?.extensions?.code).toBe('AUTH_FORBIDDEN');
  });

  it('flags a webhook for a session billing does not know, and shows the metrics', async () => {
    const stray = await t.stripe.deliver({
      id: `evt_${randomUUID().replaceAll('-', '')}`,
      object: 'event',
      type: 'checkout.session.completed',
      created: Math.floor(Date.now() / 1000),
      livemode: false,
      api_version: '2025-01-27.acacia',
      data: { object: { id: `cs_unknown_${randomUUID().slice(0, 8)}`, object: 'checkout.session', amount_total: 100, currency: 'usd', payment_status: 'paid', status: 'complete', metadata: {} } },
    });
    expect(stray.status).toBe(200);
    await eventually(async () => {
      const flagged = (await ok(admin, EVENTS, { filter: { flagged: true } })).stripeWebhookEvents.edges.map((edge: any) => edge.node);
      expect(flagged).toEqual(expect.arrayContaining([expect.objectContaining({ flagged: true, flagReason: 'unknown_session', status: 'PROCESSED' })]));
    }, 20_000);

    const metrics = await (await fetch(`${t.platform.subgraphUrls.billing!.replace(/\/graphql$/, '')}/metrics`)).text();
    expect(metrics).toMatch(/^aif_billing_webhook_lag_seconds_count\{[^}]*\} [1-9]/m);
    expect(metrics).toMatch(/^aif_billing_stripe_reachable\{[^}]*\} 1$/m);
    expect(metrics).toMatch(/^aif_billing_webhook_dead_letters\{[^}]*\} 0$/m);
  });
});
