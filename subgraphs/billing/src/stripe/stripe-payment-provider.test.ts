import { createServer as createHttpServer } from 'node:http';
import { createServer } from 'node:net';
import { AppError } from '@aifactory/errors';
import { startFakeStripe, type FakeStripe } from '@aifactory/stripe-fake';
import { StripePaymentProvider, stripeApiAddress } from './stripe-payment-provider.js';

const URLS = { successUrl: 'http://localhost:3000/billing/checkout/success', cancelUrl: 'http://localhost:3000/billing/checkout/cancel' };

async function failureOf(work: Promise<unknown>): Promise<AppError> {
  const error = await work.then(
    () => undefined,
    (caught: unknown) => caught,
  );
  if (!(error instanceof AppError)) throw new Error(`expected an AppError, got ${String(error)}`);
  return error;
}

/** A port nothing listens on. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe('StripePaymentProvider against the fake Stripe', () => {
  let fake: FakeStripe;
  let provider: StripePaymentProvider;
  const reachability: boolean[] = [];

  beforeAll(async () => {
    fake = await startFakeStripe();
    provider = new StripePaymentProvider({ apiKey: fake.apiKey, apiUrl: fake.url, timeoutMs: 2_000, onReachability: (reachable) => reachability.push(reachable) });
  });
  afterAll(() => fake.close());
  afterEach(() => {
    fake.setUnavailable(false);
    fake.onRequest(null);
    reachability.length = 0;
  });

  function checkoutRequest(customerId: string, paymentSessionId: string, amount = 2_500n) {
    return { customerId, paymentSessionId, organizationId: 'org-1', amount, currency: 'EUR', ...URLS };
  }

  it('creates a checkout session in billing’s terms: upper-case currency, bigint amount, references', async () => {
    const customer = await provider.createCustomer({ organizationId: 'org-1' }, 'customer:org-1');
    expect(customer.id).toMatch(/^cus_/);
    const session = await provider.createCheckoutSession(checkoutRequest(customer.id, 'ps-shape'), 'checkout:ps-shape');
    expect(session).toMatchObject({
      status: 'open',
      paymentStatus: 'unpaid',
      amountTotal: 2_500n,
      currency: 'EUR',
      customerId: customer.id,
      paymentIntentId: null,
      clientReferenceId: 'ps-shape',
      metadata: { paymentSessionId: 'ps-shape', organizationId: 'org-1' },
    });
    expect(session.url).toBe(`${fake.url}/checkout/${session.id}`);
    expect(session.expiresAt!.getTime()).toBeGreaterThan(Date.now());
    expect(fake.sessions().find((stored) => stored.id === session.id)).toMatchObject({ amount_total: 2_500, currency: 'eur', success_url: URLS.successUrl });
    expect(reachability).toEqual([true, true]);
  });

  it('finds the session the first call made when the same idempotency key is sent again', async () => {
    const customer = await provider.createCustomer({ organizationId: 'org-1' }, 'customer:org-1');
    const first = await provider.createCheckoutSession(checkoutRequest(customer.id, 'ps-retry'), 'checkout:ps-retry');
    const again = await provider.createCheckoutSession(checkoutRequest(customer.id, 'ps-retry'), 'checkout:ps-retry');
    expect(again.id).toBe(first.id);
    expect(fake.sessions().filter((session) => session.client_reference_id === 'ps-retry')).toHaveLength(1);
  });

  it('reads a completed session with its payment intent, and refunds it', async () => {
    const customer = await provider.createCustomer({ organizationId: 'org-1' }, 'customer:org-1');
    const created = await provider.createCheckoutSession(checkoutRequest(customer.id, 'ps-paid'), 'checkout:ps-paid');
    await fake.completeCheckout(created.id);
    const paid = await provider.retrieveCheckoutSession(created.id);
    expect(paid).toMatchObject({ status: 'complete', paymentStatus: 'paid', url: null });
    expect(paid.paymentIntentId).toMatch(/^pi_/);

    const refund = await provider.createRefund({ paymentIntentId: paid.paymentIntentId!, amount: 1_000n, refundRequestId: 'rr-1', organizationId: 'org-1' }, 'refund:rr-1');
    expect(refund).toMatchObject({ amount: 1_000n, currency: 'EUR', status: 'succeeded', paymentIntentId: paid.paymentIntentId, metadata: { refundRequestId: 'rr-1', organizationId: 'org-1' } });
    await fake.refundOutside(paid.paymentIntentId!, 500);
    const refunds = await provider.listRefunds(refund.chargeId!);
    // Newest first, as Stripe lists.
    expect(refunds.map((item) => item.amount)).toEqual([500n, 1_000n]);
  });

  it('reads a session’s payment intent in billing’s terms: processing while the delayed payment is pending, then failed', async () => {
    const customer = await provider.createCustomer({ organizationId: 'org-1' }, 'customer:org-1');
    const created = await provider.createCheckoutSession(checkoutRequest(customer.id, 'ps-intent'), 'checkout:ps-intent');
    await fake.completeCheckout(created.id, { paid: false });
    const { paymentIntentId } = await provider.retrieveCheckoutSession(created.id);

    await expect(provider.retrievePaymentIntent(paymentIntentId!)).resolves.toEqual({ id: paymentIntentId, status: 'processing', amount: 2_500n, currency: 'EUR' });
    await fake.asyncPaymentFailed(created.id);
    await expect(provider.retrievePaymentIntent(paymentIntentId!)).resolves.toMatchObject({ status: 'requires_payment_method' });
    const unknown = await failureOf(provider.retrievePaymentIntent('pi_nope'));
    expect(unknown.code).toBe('PAYMENT_PROVIDER_REFUSED');
    expect(unknown.details).toEqual({ stripeCode: 'resource_missing', stripeType: 'invalid_request_error' });

    reachability.length = 0;
    fake.setUnavailable(true);
    expect((await failureOf(provider.retrievePaymentIntent(paymentIntentId!))).code).toBe('PAYMENT_PROVIDER_UNAVAILABLE');
    expect(reachability).toEqual([false]);
  });

  it('makes a portal session', async () => {
    const customer = await provider.createCustomer({ organizationId: 'org-1' }, 'customer:org-1');
    const portal = await provider.createPortalSession({ customerId: customer.id, returnUrl: 'http://localhost:3000/billing' });
    expect(portal.url).toMatch(new RegExp(`^${fake.url}/portal/bps_`));
    await expect(provider.probe()).resolves.toBeUndefined();
  });

  it('is PAYMENT_PROVIDER_UNAVAILABLE when Stripe answers 5xx, and Stripe counts as unreachable', async () => {
    fake.setUnavailable(true);
    const failure = await failureOf(provider.probe());
    expect(failure.code).toBe('PAYMENT_PROVIDER_UNAVAILABLE');
    expect(reachability).toEqual([false]);
  });

  it('is PAYMENT_PROVIDER_UNAVAILABLE when Stripe cannot be reached or does not answer in time', async () => {
    const nowhere = new StripePaymentProvider({ apiKey: fake.apiKey, apiUrl: `http://127.0.0.1:${await closedPort()}`, timeoutMs: 2_000, onReachability: (reachable) => reachability.push(reachable) });
    expect((await failureOf(nowhere.probe())).code).toBe('PAYMENT_PROVIDER_UNAVAILABLE');
    const impatient = new StripePaymentProvider({ apiKey: fake.apiKey, apiUrl: fake.url, timeoutMs: 200, onReachability: (reachable) => reachability.push(reachable) });
    fake.onRequest(() => new Promise((resolve) => setTimeout(resolve, 1_000)));
    expect((await failureOf(impatient.probe())).code).toBe('PAYMENT_PROVIDER_UNAVAILABLE');
    expect(reachability).toEqual([false, false]);
  });

  it('is PAYMENT_PROVIDER_REFUSED with Stripe’s code and type when Stripe refuses, and Stripe counts as reachable', async () => {
    const customer = await provider.createCustomer({ organizationId: 'org-1' }, 'customer:org-1');
    await provider.createCheckoutSession(checkoutRequest(customer.id, 'ps-reuse'), 'checkout:ps-reuse');
    reachability.length = 0;
    const reused = await failureOf(provider.createCheckoutSession(checkoutRequest(customer.id, 'ps-reuse', 9_900n), 'checkout:ps-reuse'));
    expect(reused.code).toBe('PAYMENT_PROVIDER_REFUSED');
    expect(reused.details).toEqual({ stripeCode: null, stripeType: 'idempotency_error' });
    const unknown = await failureOf(provider.retrieveCheckoutSession('cs_test_nope'));
    expect(unknown.details).toEqual({ stripeCode: 'resource_missing', stripeType: 'invalid_request_error' });
    expect(reachability).toEqual([true, true]);
  });

  it('is PAYMENT_PROVIDER_UNAVAILABLE, not refused, when Stripe answers a conflict or says to retry', async () => {
    // Stripe answers 409 while another request with the same idempotency key is in progress (a refund retried while the first runs).
    const answers = [
      { status: 409, headers: {}, error: { type: 'idempotency_error', message: 'There is currently another in-progress request using this Idempotent Key' } },
      { status: 400, headers: { 'stripe-should-retry': 'true' }, error: { type: 'invalid_request_error', message: 'Try again later', code: 'lock_timeout' } },
    ];
    const busy = createHttpServer((req, res) => {
      req.resume();
      const answer = answers.shift()!;
      res.writeHead(answer.status, { 'content-type': 'application/json', ...answer.headers });
      res.end(JSON.stringify({ error: answer.error }));
    });
    await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = busy.address() as { port: number };
      const conflicted = new StripePaymentProvider({ apiKey: fake.apiKey, apiUrl: `http://127.0.0.1:${port}`, timeoutMs: 2_000, onReachability: (reachable) => reachability.push(reachable) });
      const refund = { paymentIntentId: 'pi_busy', amount: 500n, refundRequestId: 'rr-busy', organizationId: 'org-1' };
      expect((await failureOf(conflicted.createRefund(refund, 'refund:rr-busy'))).code).toBe('PAYMENT_PROVIDER_UNAVAILABLE');
      expect((await failureOf(conflicted.createRefund(refund, 'refund:rr-busy'))).code).toBe('PAYMENT_PROVIDER_UNAVAILABLE');
      expect(reachability).toEqual([true, true]);
    } finally {
      await new Promise<void>((resolve) => busy.close(() => resolve()));
    }
  });

  it('never puts the API key in an error', async () => {
    const secretKey = 'sk_test_thisKeyMustNeverLeak0123456789';
    const wrongKey = new StripePaymentProvider({ apiKey: secretKey, apiUrl: fake.url, timeoutMs: 2_000 });
    const failure = await failureOf(wrongKey.probe());
    expect(failure.code).toBe('PAYMENT_PROVIDER_REFUSED');
    const everything = JSON.stringify({ message: failure.message, details: failure.details, cause: String(failure.cause), stack: failure.stack });
    expect(everything).not.toContain('thisKeyMustNeverLeak');
  });

  it('gives the library the host, port and protocol of STRIPE_API_URL', () => {
    expect(stripeApiAddress('http://127.0.0.1:12111')).toEqual({ host: '127.0.0.1', port: 12111, protocol: 'http' });
    expect(stripeApiAddress('https://stripe.example/')).toEqual({ host: 'stripe.example', port: 443, protocol: 'https' });
  });
});
