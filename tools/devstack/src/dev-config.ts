import { env, z } from '@aifactory/config';

/** The dev stack's settings; every one has a default that works on a fresh clone. */
export const devConfigSchema = z.object({
  DATABASE_ADMIN_URL: env.url().default('postgresql://postgres@127.0.0.1:5432/postgres'),
  DATABASE_NAME: env.identifier().default('aifactory'),
  DB_ROLE_PREFIX: z.string().regex(/^[a-z][a-z0-9_]{0,20}_$/).default('aif_'),
  /** Per subgraph; with its outbox relay's LISTEN connection that is 5 each (README: connection budget). */
  DB_POOL_SIZE: env.positiveInt(4),
  GATEWAY_PORT: env.port(4000),
  /** Subgraphs listen on consecutive ports from here, in supergraph.yaml's order. */
  SUBGRAPH_BASE_PORT: env.port(4001),
  /** The dev identity provider (Pomerium's stand-in) serves its JWKS here. */
  DEV_IDP_PORT: env.port(4100),
  DEV_IDP_ISSUER: env.nonEmpty().default('https://authenticate.aifactory.localhost'),
  DEV_IDP_AUDIENCE: env.nonEmpty().default('aifactory.localhost'),
  DEV_ADMIN_EMAIL: z.email().default('admin@aifactory.localhost'),
  PLATFORM_ROLE_GROUPS: env
    .json(z.record(z.string(), z.array(z.string())))
    .default({ platform_admin: ['aifactory-platform-admins'], internal_developer: ['aifactory-developers'] }),
  LOG_LEVEL: env.logLevel(),
  /** Per principal on the dev stack: high, so `npm run bench` against it measures the gateway, not the limiter. */
  DEV_RATE_LIMIT_PER_MINUTE: env.positiveInt(1_000_000),
  /**
   * On: the stack runs a nats-server of its own with deploy/nats/nats-server.conf
   * (one user per service) and each service connects as itself. Off: the shared NATS on 4222.
   */
  DEV_NATS_PERMISSIONS: z.stringbool().default(false),
  DEV_NATS_PORT: env.port(4223),
  /** The local fake Stripe billing calls (STRIPE_API_URL); its checkout pages are served here too. */
  DEV_STRIPE_PORT: env.port(12111),
});

export type DevConfig = z.infer<typeof devConfigSchema>;

export function layoutOf(config: DevConfig) {
  return { adminUrl: config.DATABASE_ADMIN_URL, database: config.DATABASE_NAME, rolePrefix: config.DB_ROLE_PREFIX };
}
