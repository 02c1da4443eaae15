import { readFile } from 'node:fs/promises';
import { ConfigError } from '@aifactory/config';
import type { BillingConfig } from '../config.js';

export interface StripeSecrets {
  apiKey: string;
  /** Every webhook signing secret that may verify (one while none rolls, two during the overlap). */
  webhookSecrets: string[];
}

/**
 * Reads billing's Stripe secrets from the files config names (registry
 * purposes stripe-api-key and stripe-webhook-secret). A missing or empty file
 * stops the start with the variable's name, like any other bad config; the
 * error never carries a secret.
 */
export async function readStripeSecrets(config: Pick<BillingConfig, 'STRIPE_API_KEY_FILE' | 'STRIPE_WEBHOOK_SECRET_FILE'>): Promise<StripeSecrets> {
  const apiKey = (await readSecretFile('STRIPE_API_KEY_FILE', config.STRIPE_API_KEY_FILE)).trim();
  if (apiKey === '') throw new ConfigError([`STRIPE_API_KEY_FILE: ${config.STRIPE_API_KEY_FILE} is empty`]);
  const webhookSecrets = (await readSecretFile('STRIPE_WEBHOOK_SECRET_FILE', config.STRIPE_WEBHOOK_SECRET_FILE))
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '');
  if (webhookSecrets.length === 0) throw new ConfigError([`STRIPE_WEBHOOK_SECRET_FILE: ${config.STRIPE_WEBHOOK_SECRET_FILE} holds no secret`]);
  return { apiKey, webhookSecrets };
}

async function readSecretFile(variable: string, file: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (error) {
    const reason = (error as NodeJS.ErrnoException).code ?? 'unreadable';
    throw new ConfigError([`${variable}: cannot read ${file} (${reason})`]);
  }
}
