import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseConfig } from '@aifactory/config';
import { billingConfigSchema } from '@aifactory/billing/server';
import { ensureDevKeys } from '../src/dev-keys.js';
import { startDevStripe, startPlatformStripe } from '../src/dev-stripe.js';
import { subgraphEnvironment, type PlatformWiring } from '../src/wiring.js';

describe("billing's Stripe on the dev stack and in tests", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'aif-dev-stripe-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('makes the fake Stripe’s key and webhook secret once, owner-only', async () => {
    const keys = await ensureDevKeys(dir);
    const apiKey = await readFile(keys.stripeApiKeyFile, 'utf8');
    const webhookSecret = await readFile(keys.stripeWebhookSecretFile, 'utf8');
    expect(apiKey).toMatch(/^sk_test_[0-9a-f]{48}\n$/);
    expect(webhookSecret).toMatch(/^whsec_[0-9a-f]{48}\n$/);
    for (const file of [keys.stripeApiKeyFile, keys.stripeWebhookSecretFile]) expect((await stat(file)).mode & 0o777).toBe(0o600);
    const again = await ensureDevKeys(dir);
    expect(await readFile(again.stripeApiKeyFile, 'utf8')).toBe(apiKey);
    expect(await readFile(again.stripeWebhookSecretFile, 'utf8')).toBe(webhookSecret);
  });

  it('starts the dev fake with the kept keys, and it still knows its customers after a restart', async () => {
    const keys = await ensureDevKeys(dir);
    const files = { apiKeyFile: keys.stripeApiKeyFile, webhookSecretFile: keys.stripeWebhookSecretFile };
    const stateFile = path.join(dir, 'stripe-fake.json');
    const stripe = await startDevStripe(files, 0, 'http://127.0.0.1:4000/webhooks/stripe', stateFile);
    let customerId: string;
    try {
      expect(stripe.apiKey).toBe((await readFile(keys.stripeApiKeyFile, 'utf8')).trim());
      expect(stripe.webhookSecret).toBe((await readFile(keys.stripeWebhookSecretFile, 'utf8')).trim());
      const created = await fetch(`${stripe.url}/v1/customers`, {
        method: 'POST',
        headers: { authorization: `Bearer ${stripe.apiKey}`, 'content-type': 'application/x-www-form-urlencoded', 'idempotency-key': 'customer:demo' },
        body: 'metadata[organizationId]=demo',
      });
      expect(created.status).toBe(200);
      customerId = ((await created.json()) as { id: string }).id;
    } finally {
      await stripe.close();
    }
    // Billing's database keeps the customer id across `npm run up`s: the restarted fake must know it too.
    const restarted = await startDevStripe(files, 0, 'http://127.0.0.1:4000/webhooks/stripe', stateFile);
    try {
      const found = await fetch(`${restarted.url}/v1/customers/${customerId}`, { headers: { authorization: `Bearer ${restarted.apiKey}` } });
      expect(found.status).toBe(200);
      const replayed = await fetch(`${restarted.url}/v1/customers`, {
        method: 'POST',
        headers: { authorization: `Bearer ${restarted.apiKey}`, 'content-type': 'application/x-www-form-urlencoded', 'idempotency-key': 'customer:demo' },
        body: 'metadata[organizationId]=demo',
      });
      expect(((await replayed.json()) as { id: string }).id).toBe(customerId);
    } finally {
      await restarted.close();
    }
  });

  it('gives billing, and only billing, a Stripe config that parses', async () => {
    const platformStripe = await startPlatformStripe();
    try {
      const keys = await ensureDevKeys(dir);
      const wiring: PlatformWiring = {
        layout: { adminUrl: 'postgresql://postgres@127.0.0.1:5432/postgres', database: 'aifactory', rolePrefix: 'aif_' },
        poolSize: 1,
        internalPrivateKeyFile: keys.internalPrivateKeyFile,
        internalPublicKeyFiles: [keys.internalPublicKeyFile],
        apiKeyPepperFile: keys.apiKeyPepperFile,
        jwksUrl: 'http://127.0.0.1:4100/jwks',
        issuer: 'https://idp.test',
        audience: 'aud',
        roleGroups: {},
        logLevel: 'warn',
        stripe: platformStripe.wiring,
      };
      const billing = parseConfig(billingConfigSchema, subgraphEnvironment(wiring, 'billing', 4002));
      expect(billing).toMatchObject({
        STRIPE_API_KEY_FILE: platformStripe.wiring.apiKeyFile,
        STRIPE_WEBHOOK_SECRET_FILE: platformStripe.wiring.webhookSecretFile,
        STRIPE_API_URL: platformStripe.stripe.url,
        STRIPE_WEBHOOK_TOLERANCE_SECONDS: 300,
      });
      expect((await readFile(billing.STRIPE_API_KEY_FILE, 'utf8')).trim()).toBe(platformStripe.stripe.apiKey);
      expect((await readFile(billing.STRIPE_WEBHOOK_SECRET_FILE, 'utf8')).trim()).toBe(platformStripe.stripe.webhookSecret);
      expect(Object.keys(subgraphEnvironment(wiring, 'iam', 4001)).filter((name) => name.startsWith('STRIPE_'))).toEqual([]);
    } finally {
      await platformStripe.close();
    }
    expect(existsSync(platformStripe.wiring.apiKeyFile)).toBe(false);
  });
});
