import { env, z } from '@aifactory/config';
import { subgraphConfigSchema } from '@aifactory/subgraph-kit';

export const iamConfigSchema = subgraphConfigSchema.extend({
  /** ISO 4217: the billing currency of an organization created without one; fixed once the organization exists. */
  DEFAULT_BILLING_CURRENCY: z.string().regex(/^[A-Z]{3}$/, 'must be an ISO 4217 code such as USD').default('USD'),
  /** How often iam tells the access read model's readers it is alive; their freshness budget is a multiple of it. */
  ACCESS_HEARTBEAT_MS: env.positiveInt(2_000),
});
export type IamConfig = z.infer<typeof iamConfigSchema>;
