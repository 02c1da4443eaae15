import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startFakeStripe, type FakeStripe } from '@aifactory/stripe-fake';

/**
 * Billing's Stripe on the dev stack and in tests: the local fake Stripe
 * (@aifactory/stripe-fake), whose key and webhook secret billing reads from
 * files like it reads the real ones, and which sends its webhooks to the
 * gateway's /webhooks/stripe (the gateway forwards them to billing).
 */
export interface StripeWiring {
  /** STRIPE_API_KEY_FILE */
  apiKeyFile: string;
  /** STRIPE_WEBHOOK_SECRET_FILE */
  webhookSecretFile: string;
  /** STRIPE_API_URL: the fake's address. */
  apiUrl: string;
}

export function stripeWebhookUrl(gatewayUrl: string): string {
  return `${gatewayUrl}/webhooks/stripe`;
}

/**
 * The fake Stripe for the dev stack's kept keys (`.dev/keys`), on a fixed
 * port so its checkout links stay valid across restarts of billing, keeping
 * its objects in `stateFile`: billing's database keeps the Stripe customers
 * and sessions it recorded across `npm run up`s, and Stripe must still know them.
 */
export async function startDevStripe(
  files: { apiKeyFile: string; webhookSecretFile: string },
  port: number,
  webhookUrl: string,
  stateFile: string,
): Promise<FakeStripe> {
  const [apiKey, webhookSecrets] = await Promise.all([readFile(files.apiKeyFile, 'utf8'), readFile(files.webhookSecretFile, 'utf8')]);
  // While secrets overlap billing accepts every line; the newest (the last) signs.
  const webhookSecret = webhookSecrets.trim().split('\n').at(-1)!.trim();
  return startFakeStripe({ apiKey: apiKey.trim(), webhookSecret, webhookUrl, port, stateFile });
}

/** A fake Stripe of one in-process platform, with random keys in a temporary folder of its own; close() removes both. */
export async function startPlatformStripe(): Promise<{ stripe: FakeStripe; wiring: StripeWiring; close(): Promise<void> }> {
  const dir = await mkdtemp(path.join(tmpdir(), 'aif-stripe-'));
  let stripe: FakeStripe | undefined;
  try {
    stripe = await startFakeStripe();
    const files = { apiKeyFile: path.join(dir, 'stripe-api-key'), webhookSecretFile: path.join(dir, 'stripe-webhook-secret') };
    await writeFile(files.apiKeyFile, `${stripe.apiKey}\n`, { mode: 0o600 });
    await writeFile(files.webhookSecretFile, `${stripe.webhookSecret}\n`, { mode: 0o600 });
    const started = stripe;
    return {
      stripe,
      wiring: { ...files, apiUrl: stripe.url },
      close: async () => {
        await started.close();
        await rm(dir, { recursive: true, force: true });
      },
    };
  } catch (error) {
    await stripe?.close();
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
}
