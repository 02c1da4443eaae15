import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { env, z } from '@aifactory/config';
import { PLATFORM_ROLES } from '@aifactory/service-auth';

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

export const gatewayConfigSchema = z.object({
  HOST: z.string().default('127.0.0.1'),
  PORT: env.port(4000),
  LOG_LEVEL: env.logLevel(),
  /** The composed supergraph (npm run compose). */
  SUPERGRAPH_FILE: z.string().default(path.join(REPO_ROOT, 'supergraph.graphql')),
  /** Overrides of the supergraph's routing URLs, as JSON {"iam": "http://..."}. */
  SUBGRAPH_URLS: env.json(z.record(z.string(), z.url())).default({}),
  POMERIUM_JWKS_URL: env.url(),
  POMERIUM_ISSUER: env.nonEmpty(),
  POMERIUM_AUDIENCE: env.list(),
  /** Only these algorithms are accepted; Pomerium signs with ES256. Symmetric ones are never allowed. */
  POMERIUM_JWT_ALGORITHMS: env
    .list()
    .pipe(z.array(z.enum(['ES256', 'ES384', 'ES512', 'RS256', 'RS384', 'RS512', 'PS256', 'EdDSA'])))
    .default(['ES256']),
  /** After a JWKS fetch, an unknown `kid` waits this long before the next fetch (jose's cooldown). */
  POMERIUM_JWKS_COOLDOWN_MS: env.positiveInt(30_000),
  POMERIUM_JWKS_TIMEOUT_MS: env.positiveInt(5_000),
  /** Until the key set has been fetched once, how long to wait between tries. */
  POMERIUM_JWKS_RETRY_MS: env.positiveInt(2_000),
  /** Platform roles from the assertion's `groups` claim, as JSON {"platform_admin": ["group", ...]}. */
  PLATFORM_ROLE_GROUPS: env.json(z.partialRecord(z.enum(PLATFORM_ROLES), z.array(z.string().min(1)))).default({}),
  INTERNAL_JWT_PRIVATE_KEY_FILE: env.nonEmpty(),
  INTERNAL_JWT_ISSUER: env.nonEmpty().default('gateway'),
  INTERNAL_JWT_TTL_SECONDS: z.coerce.number().int().min(5).max(60).default(30),
  BODY_LIMIT_BYTES: env.positiveInt(2 * 1024 * 1024),
  SHUTDOWN_GRACE_MS: env.positiveInt(10_000),
});

export type GatewayConfig = z.infer<typeof gatewayConfigSchema>;
