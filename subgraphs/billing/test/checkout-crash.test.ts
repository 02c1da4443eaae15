/**
 * Issue 18: the process killed after Stripe created a checkout session and
 * before billing recorded it, then the call retried, leaves exactly one
 * payable session. The checkout runs through the built Checkout service in a
 * process of its own (test/checkout-crash-process.mjs, from dist/: build
 * billing first); the fake Stripe kills it with SIGKILL once it has created
 * the session and before it answers. The retry derives the same Stripe
 * idempotency key from (organization, Idempotency-Key) and gets that session.
 */
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { FakeStripeCall } from '@aifactory/stripe-fake';
import { checkoutIdentity } from '../src/domain/checkout.js';
import { CHECKOUT_URLS, startPaymentFixture, type PaymentFixture } from './payment-fixture.js';

const CHECKOUT_PROCESS = fileURLToPath(new URL('./checkout-crash-process.mjs', import.meta.url));
const BUILT_CHECKOUT = fileURLToPath(new URL('../dist/domain/checkout.js', import.meta.url));

let pay: PaymentFixture;

beforeAll(async () => {
  if (!existsSync(BUILT_CHECKOUT)) throw new Error(`${BUILT_CHECKOUT} is missing: build billing first (npm run build -w @aifactory/billing)`);
  pay = await startPaymentFixture();
});

afterAll(async () => {
  await pay?.close();
});

describe('a checkout whose process dies between Stripe’s answer and the insert', () => {
  it('killed after Stripe created the session, then retried: one payable session, one row, credited once', async () => {
    const { organizationId } = await pay.fx.organization();
    const idempotencyKey = randomUUID();
    const killedAt: FakeStripeCall[] = [];
    let output = '';
    const child = spawn(process.execPath, [CHECKOUT_PROCESS], {
      env: {
        ...process.env,
        NODE_OPTIONS: '',
        DATABASE_URL: pay.fx.db.appUrl('billing'),
        STRIPE_API_URL: pay.stripe.url,
        STRIPE_API_KEY: pay.stripe.apiKey,
        ORGANIZATION_ID: organizationId,
        IDEMPOTENCY_KEY: idempotencyKey,
        AMOUNT: '2500',
        CHECKOUT_URLS: JSON.stringify(CHECKOUT_URLS),
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
    child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
    pay.stripe.onRequest(async (call) => {
      if (call.method !== 'POST' || call.path !== '/v1/checkout/sessions' || killedAt.length > 0) return;
      killedAt.push(call);
      child.kill('SIGKILL');
      // The answer goes out only after the process is gone: it never reads it.
      await exited;
    });

    try {
      expect({ exit: await exited, output }).toEqual({ exit: { code: null, signal: 'SIGKILL' }, output: '' });
    } finally {
      pay.stripe.onRequest(null);
    }
    const { stripeIdempotencyKey } = checkoutIdentity(organizationId, idempotencyKey);
    expect(killedAt).toMatchObject([{ status: 200, idempotencyKey: stripeIdempotencyKey }]);
    const atStripe = () => pay.stripe.sessions().filter((session) => session.metadata['organizationId'] === organizationId);
    expect(atStripe()).toHaveLength(1);
    const rows = async () => (await pay.fx.admin.query('SELECT id, stripe_session_id, status FROM payment_sessions WHERE organization_id = $1', [organizationId])).rows;
    expect(await rows()).toEqual([]);

    const retried = await pay.checkout.createCheckoutSession(pay.checkoutCaller(organizationId, { idempotencyKey }), { organizationId, amount: '2500' });

    const [payable, ...others] = atStripe();
    expect(others).toEqual([]);
    expect(retried).toMatchObject({ stripeSessionId: payable!.id, url: payable!.url, status: 'initiated' });
    expect(await rows()).toEqual([{ id: retried.id, stripe_session_id: payable!.id, status: 'initiated' }]);

    const paid = await pay.stripe.completeCheckout(payable!.id);
    await pay.handle(paid);
    await pay.handle(paid);
    const { rows: funds } = await pay.fx.admin.query('SELECT paid FROM organization_funds WHERE organization_id = $1', [organizationId]);
    expect(funds).toEqual([{ paid: '2500' }]);
    expect((await pay.store.find(retried.id))?.status).toBe('credited');
  });
});
