import { AppError } from '@aifactory/errors';
import { startFakeStripe, type FakeStripe, type StripeEventJson } from '@aifactory/stripe-fake';
import { verifyStripeWebhook } from './webhook-signature.js';

function codeOf(work: () => unknown): string | undefined {
  try {
    work();
  } catch (error) {
    if (error instanceof AppError) return error.code;
    throw error;
  }
  return undefined;
}

describe('verifyStripeWebhook', () => {
  let fake: FakeStripe;
  let event: StripeEventJson;
  let body: string;

  beforeAll(async () => {
    fake = await startFakeStripe();
    const customer = await fetch(`${fake.url}/v1/customers`, { method: 'POST', headers: { authorization: `Bearer ${fake.apiKey}` } });
    expect(customer.status).toBe(200);
    const created = await fetch(`${fake.url}/v1/checkout/sessions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${fake.apiKey}`, 'content-type': 'application/x-www-form-urlencoded' },
      body: 'mode=payment&line_items[0][price_data][currency]=eur&line_items[0][price_data][unit_amount]=1500&line_items[0][price_data][product_data][name]=Top-up&line_items[0][quantity]=1',
    });
    const session = (await created.json()) as { id: string };
    event = await fake.completeCheckout(session.id);
    body = JSON.stringify(event, null, 2);
  });
  afterAll(() => fake.close());

  it('returns the event, every field as Stripe sent it, when the signature verifies', () => {
    const verified = verifyStripeWebhook(Buffer.from(body), fake.sign(body), [fake.webhookSecret], 300);
    expect(verified).toEqual(event);
    expect(verified.data.object).toMatchObject({ object: 'checkout.session', payment_status: 'paid' });
  });

  it('accepts any of the configured secrets, so a rotating secret overlaps', () => {
    const next = 'whsec_nextSecretDuringTheOverlap';
    expect(verifyStripeWebhook(Buffer.from(body), fake.sign(body, { secret: next }), [fake.webhookSecret, next], 300).id).toBe(event.id);
    expect(verifyStripeWebhook(Buffer.from(body), fake.sign(body), [next, fake.webhookSecret], 300).id).toBe(event.id);
  });

  it('refuses a mutated body, another secret, an old timestamp and a missing header alike', () => {
    const signature = fake.sign(body);
    const mutated = body.replace('"amount_total": 1500', '"amount_total": 1501');
    expect(mutated).not.toBe(body);
    expect(codeOf(() => verifyStripeWebhook(Buffer.from(mutated), signature, [fake.webhookSecret], 300))).toBe('WEBHOOK_SIGNATURE_INVALID');
    expect(codeOf(() => verifyStripeWebhook(Buffer.from(body), fake.sign(body, { secret: 'whsec_someoneElse' }), [fake.webhookSecret], 300))).toBe('WEBHOOK_SIGNATURE_INVALID');
    const old = fake.sign(body, { timestamp: Math.floor(Date.now() / 1000) - 301 });
    expect(codeOf(() => verifyStripeWebhook(Buffer.from(body), old, [fake.webhookSecret], 300))).toBe('WEBHOOK_SIGNATURE_INVALID');
    expect(codeOf(() => verifyStripeWebhook(Buffer.from(body), undefined, [fake.webhookSecret], 300))).toBe('WEBHOOK_SIGNATURE_INVALID');
    expect(codeOf(() => verifyStripeWebhook(Buffer.from(body), 'garbage', [fake.webhookSecret], 300))).toBe('WEBHOOK_SIGNATURE_INVALID');
  });

  it('says no more than that in its message', () => {
    try {
      verifyStripeWebhook(Buffer.from(`${body} `), fake.sign(body), [fake.webhookSecret], 300);
      throw new Error('verified a changed body');
    } catch (error) {
      expect(error).toBeInstanceOf(AppError);
      expect((error as AppError).message).not.toContain(fake.webhookSecret);
      expect((error as AppError).message).not.toContain(event.id);
      expect(String((error as AppError).cause)).not.toContain(fake.webhookSecret);
    }
  });

  it('refuses a signed body that is not a Stripe event', () => {
    const notAnEvent = JSON.stringify({ hello: 'world' });
    expect(codeOf(() => verifyStripeWebhook(Buffer.from(notAnEvent), fake.sign(notAnEvent), [fake.webhookSecret], 300))).toBe('BAD_REQUEST_INVALID_INPUT');
  });
});
