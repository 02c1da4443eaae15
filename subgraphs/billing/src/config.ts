import { env } from '@aifactory/config';
import { subgraphConfigSchema } from '@aifactory/subgraph-kit';

export const billingConfigSchema = subgraphConfigSchema.extend({
  /** How often the scheduled ledger check proves the balance read model against the transfers (one instance at a time). */
  BILLING_LEDGER_CHECK_INTERVAL_MS: env.positiveInt(600_000),
  /** How often promotional grants past their expiry are expired (a posting of what is left of each). */
  BILLING_PROMOTIONAL_EXPIRY_INTERVAL_MS: env.positiveInt(30_000),
});
export type BillingConfig = typeof billingConfigSchema._output;
