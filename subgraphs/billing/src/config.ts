import { env, z } from '@aifactory/config';
import { subgraphConfigSchema } from '@aifactory/subgraph-kit';
import { ratingQueueEnv } from './workers/rating-queue.js';

export const billingConfigSchema = subgraphConfigSchema.extend({
  /** How often the scheduled ledger check proves the balance read model against the transfers (one instance at a time). */
  BILLING_LEDGER_CHECK_INTERVAL_MS: env.positiveInt(600_000),
  /** How often promotional grants past their expiry are expired (a posting of what is left of each). */
  BILLING_PROMOTIONAL_EXPIRY_INTERVAL_MS: env.positiveInt(30_000),
  /** Usage messages ingested per Postgres transaction, at most. */
  BILLING_USAGE_BATCH_SIZE: env.positiveInt(1_000),
  /** How long usage for an organization or project billing does not know yet waits for IAM's event before it is rejected. */
  BILLING_USAGE_SCOPE_WAIT_MS: z.coerce
    .number()
    .int()
    .positive()
    // A waiting message uses a delivery per 30 s retry: a longer wait would run out of deliveries first.
    .max(8 * 60 * 60 * 1000, 'must be at most 8 hours (28800000)')
    .default(300_000),
  ...ratingQueueEnv,
  /** Whether the billing process rates usage itself; off when rating runs as separate worker processes. */
  BILLING_RATING_IN_PROCESS: z.stringbool().default(true),
  /** How often open intervals (GPU allocations, app instances) are billed for the windows that have ended. */
  BILLING_ACCRUAL_INTERVAL_MS: env.positiveInt(10_000),
  /** How often reconciliation counts windows again. */
  BILLING_RECONCILE_INTERVAL_MS: env.positiveInt(60_000),
  /** How long after a window ends reconciliation waits before judging it (usage still in flight). */
  BILLING_RECONCILE_GRACE_MS: env.positiveInt(300_000),
  /** File holding billing's Stripe secret key (trimmed); registry purpose `stripe-api-key`. */
  STRIPE_API_KEY_FILE: env.nonEmpty(),
  /** File of Stripe webhook signing secrets (`whsec_...`), one per line: any verifies, so old and new overlap while the endpoint secret rolls. */
  STRIPE_WEBHOOK_SECRET_FILE: env.nonEmpty(),
  /** How often both Stripe secret files are read again, so a rolled API key or webhook secret is used without a restart. */
  STRIPE_SECRETS_RELOAD_MS: env.positiveInt(5_000),
  /** Another Stripe API than api.stripe.com (the local fake in tests and on the dev stack): the library gets its host, port and protocol. */
  STRIPE_API_URL: env
    .url()
    .regex(/^https?:\/\/[^/?#]+\/?$/, 'must be http(s)://host[:port], without a path (the library adds /v1)')
    .optional(),
  /** How old a webhook's signed timestamp may be before it is refused (replay protection). */
  STRIPE_WEBHOOK_TOLERANCE_SECONDS: env.positiveInt(300),
  /** How long one call to Stripe may take before it counts as Stripe unavailable. */
  STRIPE_TIMEOUT_MS: env.positiveInt(10_000),
  /** Where Stripe sends the buyer after paying; Stripe replaces `{CHECKOUT_SESSION_ID}`. */
  BILLING_CHECKOUT_SUCCESS_URL: env.url().default('http://localhost:3000/billing/checkout/success?session_id={CHECKOUT_SESSION_ID}'),
  /** Where Stripe sends the buyer who leaves the checkout page. */
  BILLING_CHECKOUT_CANCEL_URL: env.url().default('http://localhost:3000/billing/checkout/cancel'),
  /** Where Stripe's customer portal links back to. */
  BILLING_PORTAL_RETURN_URL: env.url().default('http://localhost:3000/billing'),
  /** How often the webhook worker looks for stored Stripe events that are due. */
  BILLING_WEBHOOK_POLL_INTERVAL_MS: env.positiveInt(1_000),
  /** Attempts at processing one Stripe event before it is dead-lettered for finance. */
  BILLING_WEBHOOK_MAX_ATTEMPTS: env.positiveInt(12),
  /** Backoff between attempts: base * 2^(attempt - 1), at most 5 minutes. */
  BILLING_WEBHOOK_RETRY_BASE_MS: env.positiveInt(2_000),
});
export type BillingConfig = typeof billingConfigSchema._output;
