import { API_KEY_ENVIRONMENTS } from '@aifactory/service-auth';
import { env, z } from '@aifactory/config';
import { subgraphConfigSchema } from '@aifactory/subgraph-kit';

export const iamConfigSchema = subgraphConfigSchema.extend({
  /** ISO 4217: the billing currency of an organization created without one; fixed once the organization exists. */
  DEFAULT_BILLING_CURRENCY: z.string().regex(/^[A-Z]{3}$/, 'must be an ISO 4217 code such as USD').default('USD'),
  /** How often iam tells the access read model's readers it is alive; their freshness budget is a multiple of it. */
  ACCESS_HEARTBEAT_MS: env.positiveInt(2_000),
  /**
   * The versioned pepper API-key secrets are HMAC'd with (issue 15, Secrets
   * custody): a JSON file `{"current": n, "versions": {...}}`, never a
   * database row. Re-read before every key is made, so a rotation needs no restart.
   */
  API_KEY_PEPPER_FILE: env.nonEmpty(),
  /** The environment every new key names in its prefix (`aif_<env>_...`), so secret scanners can tell production keys apart. */
  API_KEY_ENVIRONMENT: z.enum(API_KEY_ENVIRONMENTS).default('dev'),
});
export type IamConfig = z.infer<typeof iamConfigSchema>;
