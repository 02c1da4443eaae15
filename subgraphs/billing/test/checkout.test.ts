/**
 * Issue 18, checkout: a top-up within the policy bounds is created at Stripe
 * and recorded `initiated`; the request's Idempotency-Key makes it
 * idempotent; payment initiation fails closed (seed 002) when policy is
 * stale or Stripe is down, and then nothing is recorded. Billing admins also
 * get a customer portal session.
 */
import { randomUUID } from 'node:crypto';
import { checkoutIdentity } from '../src/domain/checkout.js';
import { orgAdmin, platformAdmin, policySource, projectMember } from './billing-access.js';
import { codeOf } from './billing-fixture.js';
import { CHECKOUT_URLS, startPaymentFixture, type PaymentFixture } from './payment-fixture.js';

let pay: PaymentFixture;

beforeAll(async () => {
  pay = await startPaymentFixture();
});

afterAll(async () => {
  await pay?.close();
});

async function sessionRows(organizationId: string): Promise<{ id: string; status: string; amount: string }[]> {
  const { rows } = await pay.fx.admin.query('SELECT id, status, amount FROM payment_sessions WHERE organization_id = $1', [organizationId]);
  return rows;
}

const stripeSessionsOf = (organizationId: string) => pay.stripe.sessions().filter((session) => session.metadata['organizationId'] === organizationId);

async function refusal(work: Promise<unknown>): Promise<{ code: string; details: Record<string, unknown> | undefined }> {
  try {
    await work;
  } catch (error) {
    const { code, details } = error as { code: string; details?: Record<string, unknown> };
    return { code, details };
  }
  return { code: 'accepted', details: undefined };
}

describe('createCheckoutSession', () => {
  it('creates a Stripe checkout for the amount in the organization’s currency and records it initiated', async () => {
    const { organizationId } = await pay.fx.organization({ currency: 'EUR' });
    const caller = pay.checkoutCaller(organizationId);

    const session = await pay.checkout.createCheckoutSession(caller, { organizationId, amount: '2500' });

    const { paymentSessionId, stripeIdempotencyKey } = checkoutIdentity(organizationId, caller.idempotencyKey!);
    expect(stripeIdempotencyKey).toMatch(/^checkout:[0-9a-f]{64}$/);
    expect(session).toMatchObject({ id: paymentSessionId, organizationId, amount: 2_500n, currency: 'EUR', status: 'initiated', idempotencyKey: caller.idempotencyKey });
    expect(session.createdBy).toEqual({ type: 'user', id: `org-admin-${organizationId}` });
    const [atStripe, ...others] = stripeSessionsOf(organizationId);
    expect(others).toEqual([]);
    expect(atStripe).toMatchObject({
      id: session.stripeSessionId,
      amount_total: 2500,
      currency: 'eur',
      status: 'open',
      client_reference_id: paymentSessionId,
      customer: session.stripeCustomerId,
      success_url: CHECKOUT_URLS.successUrl,
    });
    expect(session.url).toBe(atStripe!.url);
  });

  it('refuses an amount outside billing.checkout.min_amount and max_amount, naming both', async () => {
    const { organizationId } = await pay.fx.organization();
    const below = await refusal(pay.checkout.createCheckoutSession(pay.checkoutCaller(organizationId), { organizationId, amount: '499' }));
    const above = await refusal(pay.checkout.createCheckoutSession(pay.checkoutCaller(organizationId), { organizationId, amount: '1000001' }));

    expect(below).toEqual({ code: 'BILLING_CHECKOUT_AMOUNT_OUT_OF_BOUNDS', details: { field: 'amount', amount: '499', min: '500', max: '1000000' } });
    expect(above).toMatchObject({ code: 'BILLING_CHECKOUT_AMOUNT_OUT_OF_BOUNDS', details: { min: '500', max: '1000000' } });
    await expect(pay.checkout.createCheckoutSession(pay.checkoutCaller(organizationId), { organizationId, amount: '500' })).resolves.toMatchObject({ amount: 500n });
    expect(await sessionRows(organizationId)).toHaveLength(1);
  });

  it('takes the bounds from the organization’s own policy', async () => {
    const { organizationId } = await pay.fx.organization();
    const policy = policySource({ 'billing.checkout.min_amount': '5000', 'billing.checkout.max_amount': '7000' });

    const tooLow = await refusal(pay.checkout.createCheckoutSession(pay.checkoutCaller(organizationId, { policy }), { organizationId, amount: '4999' }));

    expect(tooLow).toMatchObject({ code: 'BILLING_CHECKOUT_AMOUNT_OUT_OF_BOUNDS', details: { min: '5000', max: '7000' } });
    await expect(pay.checkout.createCheckoutSession(pay.checkoutCaller(organizationId, { policy }), { organizationId, amount: '7000' })).resolves.toMatchObject({
      status: 'initiated',
    });
  });

  it('returns the same session for the same Idempotency-Key, one at Stripe', async () => {
    const { organizationId } = await pay.fx.organization();
    const caller = pay.checkoutCaller(organizationId);

    const first = await pay.checkout.createCheckoutSession(caller, { organizationId, amount: '3000' });
    const again = await pay.checkout.createCheckoutSession({ ...caller, correlationId: 'retry' }, { organizationId, amount: '3000' });

    expect(again).toEqual(first);
    expect(stripeSessionsOf(organizationId)).toHaveLength(1);
    expect(await sessionRows(organizationId)).toHaveLength(1);
  });

  it('refuses the same Idempotency-Key for another amount with IDEMPOTENCY_KEY_REUSED', async () => {
    const { organizationId } = await pay.fx.organization();
    const caller = pay.checkoutCaller(organizationId);
    await pay.checkout.createCheckoutSession(caller, { organizationId, amount: '3000' });

    expect(await codeOf(pay.checkout.createCheckoutSession(caller, { organizationId, amount: '3001' }))).toBe('IDEMPOTENCY_KEY_REUSED');
    expect(await sessionRows(organizationId)).toEqual([expect.objectContaining({ amount: '3000' })]);
  });

  it('refuses another amount under a key whose first checkout exists only at Stripe (its process died before the insert)', async () => {
    const { organizationId } = await pay.fx.organization();
    const caller = pay.checkoutCaller(organizationId);
    const { paymentSessionId, stripeIdempotencyKey } = checkoutIdentity(organizationId, caller.idempotencyKey!);
    const customer = await pay.provider.createCustomer({ organizationId }, `customer:${organizationId}`);
    await pay.store.saveCustomer(organizationId, customer.id);
    await pay.provider.createCheckoutSession({ customerId: customer.id, paymentSessionId, organizationId, amount: 3000n, currency: 'USD', ...CHECKOUT_URLS }, stripeIdempotencyKey);

    expect(await codeOf(pay.checkout.createCheckoutSession(caller, { organizationId, amount: '3100' }))).toBe('IDEMPOTENCY_KEY_REUSED');
    expect(await sessionRows(organizationId)).toEqual([]);
    await expect(pay.checkout.createCheckoutSession(caller, { organizationId, amount: '3000' })).resolves.toMatchObject({ id: paymentSessionId, status: 'initiated' });
    expect(stripeSessionsOf(organizationId)).toHaveLength(1);
  });

  it('requires an Idempotency-Key', async () => {
    const { organizationId } = await pay.fx.organization();
    const caller = pay.checkoutCaller(organizationId, { idempotencyKey: undefined });

    expect(await codeOf(pay.checkout.createCheckoutSession(caller, { organizationId, amount: '2500' }))).toBe('IDEMPOTENCY_KEY_REQUIRED');
    expect(await codeOf(pay.checkout.createCheckoutSession({ ...caller, idempotencyKey: 'k'.repeat(256) }, { organizationId, amount: '2500' }))).toBe(
      'IDEMPOTENCY_KEY_INVALID',
    );
  });

  it('is for the organization’s billing admins only', async () => {
    const { organizationId, departmentId, projectId } = await pay.fx.organization();
    const other = await pay.fx.organization();
    const asMember = { ...pay.checkoutCaller(organizationId), ...pay.access.caller(projectMember(organizationId, departmentId, projectId)) };
    const asOtherAdmin = { ...pay.checkoutCaller(organizationId), ...pay.access.caller(orgAdmin(other.organizationId)) };

    expect(await codeOf(pay.checkout.createCheckoutSession(asMember, { organizationId, amount: '2500' }))).toBe('AUTH_FORBIDDEN');
    expect(await codeOf(pay.checkout.createCheckoutSession(asOtherAdmin, { organizationId, amount: '2500' }))).toBe('AUTH_FORBIDDEN');
    expect(stripeSessionsOf(organizationId)).toEqual([]);
  });

  it('fails closed on a stale policy snapshot: refused, nothing at Stripe, nothing recorded', async () => {
    const { organizationId } = await pay.fx.organization();
    const fresh = policySource();
    const stale = { ageMs: () => 6 * 60_000, policy: fresh.policy };
    const missing = { ageMs: () => 1_000, policy: () => undefined };

    expect(await codeOf(pay.checkout.createCheckoutSession(pay.checkoutCaller(organizationId, { policy: stale }), { organizationId, amount: '2500' }))).toBe(
      'POLICY_SNAPSHOT_STALE',
    );
    expect(await codeOf(pay.checkout.createCheckoutSession(pay.checkoutCaller(organizationId, { policy: missing }), { organizationId, amount: '2500' }))).toBe(
      'POLICY_SNAPSHOT_STALE',
    );
    expect(stripeSessionsOf(organizationId)).toEqual([]);
    expect(await sessionRows(organizationId)).toEqual([]);
  });

  it('fails closed while Stripe is unavailable, and the same key works once it is back', async () => {
    const { organizationId } = await pay.fx.organization();
    const caller = pay.checkoutCaller(organizationId);
    pay.stripe.setUnavailable(true);
    let code: string;
    try {
      code = await codeOf(pay.checkout.createCheckoutSession(caller, { organizationId, amount: '2500' }));
    } finally {
      pay.stripe.setUnavailable(false);
    }

    expect(code).toBe('PAYMENT_PROVIDER_UNAVAILABLE');
    expect(await sessionRows(organizationId)).toEqual([]);
    const { rows: customers } = await pay.fx.admin.query('SELECT 1 FROM payment_customers WHERE organization_id = $1', [organizationId]);
    expect(customers).toEqual([]);

    await expect(pay.checkout.createCheckoutSession(caller, { organizationId, amount: '2500' })).resolves.toMatchObject({ status: 'initiated' });
    expect(stripeSessionsOf(organizationId)).toHaveLength(1);
  });

  it('refuses an organization billing has no accounts for', async () => {
    const organizationId = randomUUID();
    expect(await codeOf(pay.checkout.createCheckoutSession(pay.checkoutCaller(organizationId), { organizationId, amount: '2500' }))).toBe(
      'BILLING_ORGANIZATION_UNKNOWN',
    );
  });

  it('creates one Stripe customer per organization', async () => {
    const { organizationId } = await pay.fx.organization();

    const first = await pay.checkout.createCheckoutSession(pay.checkoutCaller(organizationId), { organizationId, amount: '2500' });
    const second = await pay.checkout.createCheckoutSession(pay.checkoutCaller(organizationId), { organizationId, amount: '2600' });

    expect(second.id).not.toBe(first.id);
    expect(second.stripeCustomerId).toBe(first.stripeCustomerId);
    expect(pay.stripe.customers().filter((customer) => customer.metadata['organizationId'] === organizationId)).toHaveLength(1);
  });
});

describe('createPortalSession', () => {
  it('gives the organization’s billing admins a portal session of its Stripe customer', async () => {
    const { organizationId } = await pay.fx.organization();

    const portal = await pay.checkout.createPortalSession(pay.access.caller(orgAdmin(organizationId)), organizationId);

    expect(portal.url).toMatch(/^http/);
    const [customer] = pay.stripe.customers().filter((c) => c.metadata['organizationId'] === organizationId);
    expect(customer).toBeDefined();
    expect(await pay.checkout.createPortalSession(pay.access.caller(platformAdmin), organizationId)).toEqual({ url: expect.any(String) });
    expect(pay.stripe.customers().filter((c) => c.metadata['organizationId'] === organizationId)).toHaveLength(1);
  });

  it('refuses anyone else', async () => {
    const { organizationId, departmentId, projectId } = await pay.fx.organization();
    expect(await codeOf(pay.checkout.createPortalSession(pay.access.caller(projectMember(organizationId, departmentId, projectId)), organizationId))).toBe(
      'AUTH_FORBIDDEN',
    );
  });
});
