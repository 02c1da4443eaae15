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
});
export type BillingConfig = typeof billingConfigSchema._output;
