import { readFile } from 'node:fs/promises';
import { ConfigError } from '@aifactory/config';
import type { BillingConfig } from '../config.js';

export interface StripeSecrets {
  apiKey: string;
  /** Every webhook signing secret that may verify (one while none rolls, two during the overlap). */
  webhookSecrets: string[];
}

type StripeSecretFiles = Pick<BillingConfig, 'STRIPE_API_KEY_FILE' | 'STRIPE_WEBHOOK_SECRET_FILE'>;

/**
 * Reads billing's Stripe secrets from the files config names (registry
 * purposes stripe-api-key and stripe-webhook-secret). A missing or empty file
 * stops the start with the variable's name, like any other bad config; the
 * error never carries a secret.
 */
export async function readStripeSecrets(config: StripeSecretFiles): Promise<StripeSecrets> {
  return { apiKey: await readApiKey(config), webhookSecrets: await readWebhookSecrets(config) };
}

export interface StripeSecretsReloadOptions {
  /** Told when a file could not be re-read or holds no secret (a ConfigError naming the variable, never a secret). */
  onError?: (error: unknown) => void;
  /** Told which file's secret changed, never the secret. */
  onChange?: (variable: 'STRIPE_API_KEY_FILE' | 'STRIPE_WEBHOOK_SECRET_FILE') => void;
}

export interface ReloadingStripeSecrets {
  /** The API key read last: the provider calls Stripe with it from the next call on. */
  apiKey(): string;
  /** The webhook secrets read last: the webhook route verifies against them. */
  webhookSecrets(): readonly string[];
  /** Reads both files again now; a file that cannot be read or holds no secret keeps what was read before. */
  reload(): Promise<void>;
  close(): void;
}

/**
 * The Stripe secrets, re-read every STRIPE_SECRETS_RELOAD_MS so that rolling
 * the API key or the webhook signing secret (add the new line, later remove
 * the old one) needs no restart, like the pepper and the internal-JWT keys.
 * The files are read whole each time rather than checked for a changed stamp:
 * they are a few bytes, and a same-size rewrite within the file system's
 * timestamp granularity would otherwise go unseen. Each file keeps its last
 * good value on its own, so a half-done edit of one never drops the other.
 */
export async function openStripeSecrets(
  config: StripeSecretFiles & Pick<BillingConfig, 'STRIPE_SECRETS_RELOAD_MS'>,
  options: StripeSecretsReloadOptions = {},
): Promise<ReloadingStripeSecrets> {
  let { apiKey, webhookSecrets } = await readStripeSecrets(config);
  let reloading: Promise<void> | undefined;
  const reload = (): Promise<void> =>
    (reloading ??= (async () => {
      try {
        const [key, secrets] = await Promise.allSettled([readApiKey(config), readWebhookSecrets(config)]);
        if (key.status === 'rejected') options.onError?.(key.reason);
        else if (key.value !== apiKey) {
          apiKey = key.value;
          options.onChange?.('STRIPE_API_KEY_FILE');
        }
        if (secrets.status === 'rejected') options.onError?.(secrets.reason);
        else if (secrets.value.join('\n') !== webhookSecrets.join('\n')) {
          webhookSecrets = secrets.value;
          options.onChange?.('STRIPE_WEBHOOK_SECRET_FILE');
        }
      } finally {
        reloading = undefined;
      }
    })());
  // Unref'd: the secrets never keep a process (or a test) alive. A tick during a slow read joins it.
  const timer = setInterval(() => void reload(), config.STRIPE_SECRETS_RELOAD_MS);
  timer.unref();
  return { apiKey: () => apiKey, webhookSecrets: () => webhookSecrets, reload, close: () => clearInterval(timer) };
}

async function readApiKey(config: StripeSecretFiles): Promise<string> {
  const apiKey = (await readSecretFile('STRIPE_API_KEY_FILE', config.STRIPE_API_KEY_FILE)).trim();
  if (apiKey === '') throw new ConfigError([`STRIPE_API_KEY_FILE: ${config.STRIPE_API_KEY_FILE} is empty`]);
  return apiKey;
}

async function readWebhookSecrets(config: StripeSecretFiles): Promise<string[]> {
  const webhookSecrets = (await readSecretFile('STRIPE_WEBHOOK_SECRET_FILE', config.STRIPE_WEBHOOK_SECRET_FILE))
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '');
  if (webhookSecrets.length === 0) throw new ConfigError([`STRIPE_WEBHOOK_SECRET_FILE: ${config.STRIPE_WEBHOOK_SECRET_FILE} holds no secret`]);
  return webhookSecrets;
}

async function readSecretFile(variable: string, file: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (error) {
    const reason = (error as NodeJS.ErrnoException).code ?? 'unreadable';
    throw new ConfigError([`${variable}: cannot read ${file} (${reason})`]);
  }
}
