import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import Stripe from 'stripe';
import { startFakeStripe, type FakeStripe } from './index.js';

/** The real `stripe` library, pointed at the fake like billing points it at STRIPE_API_URL. */
function clientOf(fake: FakeStripe, apiKey = fake.apiKey): Stripe {
  const url = new URL(fake.url);
  return new Stripe(apiKey, { host: url.hostname, port: Number(url.port), protocol: 'http', maxNetworkRetries: 0, telemetry: false });
}

interface Received {
  body: string;
  signature: string;
}

/** A webhook endpoint that keeps what it got and answers 200. */
async function startReceiver(): Promise<{ url: string; received: Received[]; close(): Promise<void> }> {
  const received: Received[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      received.push({ body: Buffer.concat(chunks).toString('utf8'), signature: String(req.headers['stripe-signature']) });
      res.writeHead(200).end('{}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/webhooks/stripe`,
    received,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

async function eventually(check: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

function checkoutParams(reference: string, amount = 2_500): Stripe.Checkout.SessionCreateParams {
  return {
    mode: 'payment',
    client_reference_id: reference,
    metadata: { paymentSessionId: reference },
    line_items: [{ quantity: 1, price_data: { currency: 'EUR', unit_amount: amount, product_data: { name: 'Balance top-up' } } }],
    success_url: 'http://localhost:3000/billing/checkout/success?session_id={CHECKOUT_SESSION_ID}',
    cancel_url: 'http://localhost:3000/billing/checkout/cancel',
  };
}

describe('the fake Stripe, through the stripe library', () => {
  let fake: FakeStripe;
  let stripe: Stripe;
  let receiver: Awaited<ReturnType<typeof startReceiver>>;

  beforeAll(async () => {
    receiver = await startReceiver();
    fake = await startFakeStripe({ webhookUrl: receiver.url });
    stripe = clientOf(fake);
  });
  afterAll(async () => {
    await fake.close();
    await receiver.close();
  });
  afterEach(() => {
    fake.setUnavailable(false);
    fake.onRequest(null);
  });

  it('creates a checkout session shaped like Stripe’s, payable on the fake’s own page', async () => {
    const customer = await stripe.customers.create({ metadata: { organizationId: 'org-1' } });
    const session = await stripe.checkout.sessions.create({ ...checkoutParams('ref-shape'), customer: customer.id });
    expect(session).toMatchObject({
      object: 'checkout.session',
      amount_total: 2_500,
      currency: 'eur',
      customer: customer.id,
      client_reference_id: 'ref-shape',
      metadata: { paymentSessionId: 'ref-shape' },
      payment_intent: null,
      payment_status: 'unpaid',
      status: 'open',
      url: `${fake.url}/checkout/${session.id}`,
    });
    expect(session.id).toMatch(/^cs_test_/);
    expect(session.expires_at).toBeGreaterThan(Date.now() / 1000);
    const page = await fetch(session.url!);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('Pay');
    expect((await stripe.checkout.sessions.retrieve(session.id)).id).toBe(session.id);
  });

  it('replays the first answer for the same idempotency key and parameters', async () => {
    const first = await stripe.checkout.sessions.create(checkoutParams('ref-replay'), { idempotencyKey: 'key-replay' });
    const again = await stripe.checkout.sessions.create(checkoutParams('ref-replay'), { idempotencyKey: 'key-replay' });
    expect(again.id).toBe(first.id);
    expect(again.lastResponse.headers['idempotent-replayed']).toBe('true');
    expect(fake.sessions().filter((session) => session.client_reference_id === 'ref-replay')).toHaveLength(1);
  });

  it('refuses the same idempotency key with other parameters', async () => {
    await stripe.checkout.sessions.create(checkoutParams('ref-reuse'), { idempotencyKey: 'key-reuse' });
    const refused = await stripe.checkout.sessions.create(checkoutParams('ref-reuse', 9_900), { idempotencyKey: 'key-reuse' }).catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(Stripe.errors.StripeIdempotencyError);
    expect(refused).toMatchObject({ statusCode: 400, rawType: 'idempotency_error' });
    expect(fake.sessions().filter((session) => session.client_reference_id === 'ref-reuse')).toHaveLength(1);
  });

  it('answers a refusal the way Stripe does, and keeps no answer for a key whose request failed validation', async () => {
    const missing = await stripe.checkout.sessions.create({ ...checkoutParams('ref-bad'), line_items: [] }, { idempotencyKey: 'key-bad' }).catch((error: unknown) => error);
    expect(missing).toBeInstanceOf(Stripe.errors.StripeInvalidRequestError);
    expect(missing).toMatchObject({ statusCode: 400, code: 'parameter_missing', param: 'line_items' });
    await expect(stripe.checkout.sessions.create(checkoutParams('ref-bad'), { idempotencyKey: 'key-bad' })).resolves.toMatchObject({ status: 'open' });
    await expect(stripe.customers.retrieve('cus_nope')).rejects.toMatchObject({ statusCode: 404, code: 'resource_missing' });
  });

  it('refuses a wrong API key with 401', async () => {
    const refused = await clientOf(fake, 'sk_test_wrong').customers.list({ limit: 1 }).catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(Stripe.errors.StripeAuthenticationError);
    expect(refused).toMatchObject({ statusCode: 401 });
  });

  it('answers 503 to every call while unavailable', async () => {
    fake.setUnavailable(true);
    const refused = await stripe.customers.list({ limit: 1 }).catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(Stripe.errors.StripeAPIError);
    expect(refused).toMatchObject({ statusCode: 503 });
    fake.setUnavailable(false);
    await expect(stripe.customers.list({ limit: 1 })).resolves.toMatchObject({ object: 'list' });
  });

  it('runs the onRequest hook after it acted and before it answers', async () => {
    const seen: Array<{ path: string; idempotencyKey: string | null; stored: boolean }> = [];
    fake.onRequest((call) => {
      seen.push({
        path: call.path,
        idempotencyKey: call.idempotencyKey,
        stored: fake.sessions().some((session) => session.client_reference_id === (call.params as { client_reference_id?: string }).client_reference_id),
      });
    });
    await stripe.checkout.sessions.create(checkoutParams('ref-hook'), { idempotencyKey: 'key-hook' });
    expect(seen).toEqual([{ path: '/v1/checkout/sessions', idempotencyKey: 'key-hook', stored: true }]);
  });

  it('signs its webhooks so that stripe.webhooks.constructEvent verifies them, and only untouched and recent ones', async () => {
    const session = await stripe.checkout.sessions.create(checkoutParams('ref-webhook'));
    const sent = await fake.completeCheckout(session.id);
    const delivered = receiver.received.find((item) => item.body.includes(sent.id))!;
    const event = stripe.webhooks.constructEvent(delivered.body, delivered.signature, fake.webhookSecret);
    expect(event).toMatchObject({ id: sent.id, type: 'checkout.session.completed', livemode: false, api_version: Stripe.API_VERSION });
    const completed = event.data.object as Stripe.Checkout.Session;
    expect(completed).toMatchObject({ id: session.id, status: 'complete', payment_status: 'paid', amount_total: 2_500 });
    expect(completed.payment_intent).toMatch(/^pi_/);
    expect(fake.charges().find((charge) => charge.payment_intent === completed.payment_intent)).toMatchObject({ amount: 2_500, amount_refunded: 0 });

    const tampered = delivered.body.replace('"amount_total": 2500', '"amount_total": 9999');
    expect(tampered).not.toBe(delivered.body);
    expect(() => stripe.webhooks.constructEvent(tampered, delivered.signature, fake.webhookSecret)).toThrow(Stripe.errors.StripeSignatureVerificationError);
    const old = fake.sign(delivered.body, { timestamp: Math.floor(Date.now() / 1000) - 600 });
    expect(() => stripe.webhooks.constructEvent(delivered.body, old, fake.webhookSecret, 300)).toThrow(/tolerance/);
  });

  it('completes an unpaid session, then the delayed payment succeeds or fails', async () => {
    const paidLater = await stripe.checkout.sessions.create(checkoutParams('ref-async-ok'));
    const completed = await fake.completeCheckout(paidLater.id, { paid: false });
    expect(completed.data.object).toMatchObject({ status: 'complete', payment_status: 'unpaid' });
    const succeeded = await fake.asyncPaymentSucceeded(paidLater.id);
    expect(succeeded).toMatchObject({ type: 'checkout.session.async_payment_succeeded', data: { object: { payment_status: 'paid' } } });

    const failing = await stripe.checkout.sessions.create(checkoutParams('ref-async-fail'));
    await fake.completeCheckout(failing.id, { paid: false });
    const failed = await fake.asyncPaymentFailed(failing.id);
    expect(failed).toMatchObject({ type: 'checkout.session.async_payment_failed', data: { object: { payment_status: 'unpaid' } } });
    await expect(fake.asyncPaymentSucceeded(failing.id)).rejects.toThrow(/no delayed payment processing/);
  });

  it('answers a payment intent with Stripe’s status as the payment goes: processing, then succeeded or requires_payment_method', async () => {
    const intentOf = async (sessionId: string) => stripe.paymentIntents.retrieve((await stripe.checkout.sessions.retrieve(sessionId)).payment_intent as string);

    const paidNow = await stripe.checkout.sessions.create(checkoutParams('ref-intent-paid'));
    await fake.completeCheckout(paidNow.id);
    expect(await intentOf(paidNow.id)).toMatchObject({ object: 'payment_intent', status: 'succeeded', amount: 2_500, amount_received: 2_500, currency: 'eur' });

    const paidLater = await stripe.checkout.sessions.create(checkoutParams('ref-intent-later'));
    await fake.completeCheckout(paidLater.id, { paid: false });
    expect(await intentOf(paidLater.id)).toMatchObject({ status: 'processing', amount_received: 0 });
    await fake.asyncPaymentSucceeded(paidLater.id);
    expect(await intentOf(paidLater.id)).toMatchObject({ status: 'succeeded', amount_received: 2_500 });

    const failing = await stripe.checkout.sessions.create(checkoutParams('ref-intent-fail'));
    await fake.completeCheckout(failing.id, { paid: false });
    await fake.asyncPaymentFailed(failing.id);
    expect(await intentOf(failing.id)).toMatchObject({ status: 'requires_payment_method', amount_received: 0 });

    await expect(stripe.paymentIntents.retrieve('pi_nope')).rejects.toMatchObject({ statusCode: 404, code: 'resource_missing' });
  });

  it('expires an open session through the API and sends checkout.session.expired after answering', async () => {
    const session = await stripe.checkout.sessions.create(checkoutParams('ref-expire'));
    const expired = await stripe.checkout.sessions.expire(session.id);
    expect(expired).toMatchObject({ status: 'expired', url: null });
    await eventually(() => receiver.received.some((item) => item.body.includes('checkout.session.expired') && item.body.includes(session.id)));
    await expect(stripe.checkout.sessions.expire(session.id)).rejects.toMatchObject({ statusCode: 400 });
  });

  it('refunds a payment once per idempotency key, within what is left, and sends charge.refunded', async () => {
    const session = await stripe.checkout.sessions.create(checkoutParams('ref-refund'));
    const completed = await fake.completeCheckout(session.id);
    const paymentIntent = (completed.data.object as { payment_intent: string }).payment_intent;
    const params = { payment_intent: paymentIntent, amount: 1_000, metadata: { refundRequestId: 'rr-1' } };
    const refund = await stripe.refunds.create(params, { idempotencyKey: 'refund-rr-1' });
    expect(refund).toMatchObject({ object: 'refund', amount: 1_000, currency: 'eur', status: 'succeeded', payment_intent: paymentIntent, metadata: { refundRequestId: 'rr-1' } });
    expect((await stripe.refunds.create(params, { idempotencyKey: 'refund-rr-1' })).id).toBe(refund.id);
    await eventually(() => receiver.received.some((item) => item.body.includes('charge.refunded') && item.body.includes(paymentIntent)));
    expect(fake.charges().find((charge) => charge.payment_intent === paymentIntent)).toMatchObject({ amount_refunded: 1_000, refunded: false });

    await expect(stripe.refunds.create({ payment_intent: paymentIntent, amount: 2_000 })).rejects.toMatchObject({ code: 'amount_too_large' });
    const outside = await fake.refundOutside(paymentIntent, 1_500);
    expect(outside.data.object).toMatchObject({ object: 'charge', amount_refunded: 2_500, refunded: true });
    const listed = await stripe.refunds.list({ charge: refund.charge as string });
    expect(listed.data.map((item) => item.amount)).toEqual([1_500, 1_000]);
  });

  it('opens a dispute on a charge and closes it won or lost', async () => {
    const session = await stripe.checkout.sessions.create(checkoutParams('ref-dispute'));
    const completed = await fake.completeCheckout(session.id);
    const paymentIntent = (completed.data.object as { payment_intent: string }).payment_intent;
    const opened = await fake.openDispute(paymentIntent, 2_000);
    expect(opened).toMatchObject({ type: 'charge.dispute.created', data: { object: { object: 'dispute', amount: 2_000, status: 'needs_response', payment_intent: paymentIntent } } });
    const disputeId = (opened.data.object as { id: string }).id;
    expect(disputeId).toMatch(/^dp_/);
    await expect(stripe.refunds.create({ payment_intent: paymentIntent })).rejects.toMatchObject({ code: 'charge_disputed' });
    const closed = await fake.closeDispute(disputeId, 'lost');
    expect(closed).toMatchObject({ type: 'charge.dispute.closed', data: { object: { id: disputeId, status: 'lost' } } });
  });

  it('lists and retrieves the events it made', async () => {
    const [latest] = (await stripe.events.list({ limit: 1 })).data;
    expect(latest).toBeDefined();
    expect((await stripe.events.retrieve(latest!.id)).id).toBe(latest!.id);
    const all = await stripe.events.list({ limit: 100, type: 'checkout.session.completed' });
    expect(all.data.length).toBeGreaterThan(0);
    expect(all.data.every((event) => event.type === 'checkout.session.completed')).toBe(true);
  });

  it('makes a portal session for a known customer', async () => {
    const customer = await stripe.customers.create({ metadata: { organizationId: 'org-portal' } });
    const portal = await stripe.billingPortal.sessions.create({ customer: customer.id, return_url: 'http://localhost:3000/billing' });
    expect(portal).toMatchObject({ object: 'billing_portal.session', customer: customer.id });
    expect((await fetch(portal.url)).status).toBe(200);
  });

  it('lets a person pay on the checkout page and sends them to the success URL', async () => {
    const session = await stripe.checkout.sessions.create(checkoutParams('ref-page'));
    const paid = await fetch(`${fake.url}/checkout/${session.id}/pay`, { method: 'POST', redirect: 'manual' });
    expect(paid.status).toBe(303);
    expect(paid.headers.get('location')).toBe(`http://localhost:3000/billing/checkout/success?session_id=${session.id}`);
    expect((await stripe.checkout.sessions.retrieve(session.id)).payment_status).toBe('paid');
  });
});
