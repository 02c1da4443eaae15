import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { env, z } from '@aifactory/config';
import { PLATFORM_ROLES } from '@aifactory/service-auth';

const rateLimitRule = z.object({ limit: z.number().int().positive(), windowSeconds: z.number().int().positive() });

/**
 * Seed 004: per principal and per operation or route. `default` applies to
 * every GraphQL request and REST call of a principal until IAM's global policy
 * snapshot exists (then `platform.gateway.requests_per_minute` decides); `operations` add a rule
 * for one operation name, `routes` for one `/api/<subgraph>` prefix; webhooks
 * are limited per provider and source address.
 */
const rateLimitsSchema = z.object({
  default: rateLimitRule,
  operations: z.record(z.string(), rateLimitRule).default({}),
  routes: z.record(z.string(), rateLimitRule).default({}),
  webhooks: rateLimitRule,
});
export type RateLimitsConfig = z.infer<typeof rateLimitsSchema>;

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
  /** How often the signing key file is checked for a rotation (secrets:rotate swaps it in place). */
  INTERNAL_JWT_KEY_RELOAD_MS: env.positiveInt(5_000),
  BODY_LIMIT_BYTES: env.positiveInt(2 * 1024 * 1024),
  /** Operation limits, checked before planning; defaults after Apollo Router's. */
  GRAPHQL_MAX_DEPTH: env.positiveInt(20),
  GRAPHQL_MAX_HEIGHT: env.positiveInt(200),
  GRAPHQL_MAX_ALIASES: env.positiveInt(30),
  GRAPHQL_MAX_ROOT_FIELDS: env.positiveInt(20),
  GRAPHQL_MAX_TOKENS: env.positiveInt(15_000),
  REDIS_URL: env.url().default('redis://127.0.0.1:6379'),
  /** Every key the gateway writes starts with it, so stacks and tests sharing one Redis never meet. */
  REDIS_KEY_PREFIX: env.nonEmpty().default('aif:gateway:'),
  /** A Redis slower than this counts as failed: the rate limiter opens, keyed mutations are refused. */
  REDIS_COMMAND_TIMEOUT_MS: env.positiveInt(250),
  /**
   * How old IAM's access read model may be (since iam's last heartbeat, every
   * 2 s) before every authenticated request is refused with
   * AUTH_READ_MODEL_STALE; within it the gateway keeps authorizing while iam is down.
   */
  ACCESS_MODEL_MAX_AGE_MS: env.positiveInt(60_000),
  /**
   * The versioned pepper API-key hashes are made with (issue 15, Secrets
   * custody): a file, never a database row or read model. Re-read on a pepper
   * version the gateway does not hold yet, and when the file changed (checked
   * every API_KEY_PEPPER_RELOAD_MS; `secrets:rotate` waits longer than the
   * default before it prunes an old version).
   */
  API_KEY_PEPPER_FILE: env.nonEmpty(),
  API_KEY_PEPPER_RELOAD_MS: env.positiveInt(5_000),
  /**
   * Key requests fail closed with AUTH_READ_MODEL_STALE once iam's last
   * heartbeat is older than this (and always past ACCESS_MODEL_MAX_AGE_MS):
   * a revoked key must not keep working on an old copy.
   */
  API_KEY_MODEL_MAX_AGE_MS: env.positiveInt(15_000),
  /** Failed key authentications per client address; past it, AUTH_TOO_MANY_FAILURES before any lookup. */
  API_KEY_FAILURE_LIMIT: env.json(rateLimitRule).default({ limit: 20, windowSeconds: 60 }),
  /** A refused key is answered from memory for this long (no HMAC, no lookup), unless its entry changes. */
  API_KEY_NEGATIVE_CACHE_MS: env.positiveInt(5_000),
  /** Key last-use reports (at most one per key a minute) are sent to iam in batches this often. */
  API_KEY_USAGE_FLUSH_MS: env.positiveInt(5_000),
  API_KEY_USAGE_TIMEOUT_MS: env.positiveInt(5_000),
  /**
   * Proxies in front of the gateway that append to X-Forwarded-For; the
   * client address (failure limits) is the entry this many hops from the
   * right. 0: the socket's peer address, X-Forwarded-For ignored.
   */
  TRUSTED_PROXY_HOPS: z.coerce.number().int().min(0).max(10).default(0),
  /** The one call to iam that signs a user in on first sight gives up after this long (IAM_UNAVAILABLE). */
  IAM_SIGN_IN_TIMEOUT_MS: env.positiveInt(3_000),
  NATS_URL: env.list().default(['nats://127.0.0.1:4222']),
  NATS_USER: z.string().min(1).optional(),
  NATS_PASSWORD: z.string().min(1).optional(),
  RATE_LIMITS: env.json(rateLimitsSchema).default({
    default: { limit: 1200, windowSeconds: 60 },
    operations: {},
    routes: {},
    webhooks: { limit: 600, windowSeconds: 60 },
  }),
  IDEMPOTENCY_TTL_SECONDS: env.positiveInt(24 * 60 * 60),
  /** How long a key stays "in flight" if the gateway dies mid-request; longer than any request may run. */
  IDEMPOTENCY_IN_FLIGHT_SECONDS: env.positiveInt(120),
  /** Root fields whose answer reveals a secret once (new API keys): never stored for replay. */
  IDEMPOTENCY_SECRET_FIELDS: env.list().default(['Mutation.createApiKey', 'Mutation.rotateApiKey']),
  /** Browser origins allowed to call the gateway besides its own. */
  CORS_ALLOWED_ORIGINS: env.list().pipe(z.array(z.url())).default([]),
  /** `/webhooks/<provider>` -> the subgraph that owns and verifies it, as JSON {"stripe": "billing"}. */
  WEBHOOK_ROUTES: env.json(z.record(z.string().regex(/^[a-z0-9-]+$/), z.string().min(1))).default({ stripe: 'billing' }),
  WEBHOOK_BODY_LIMIT_BYTES: env.positiveInt(1024 * 1024),
  /** A subgraph call (GraphQL or REST) that has not answered by then fails with UPSTREAM_TIMEOUT. */
  UPSTREAM_TIMEOUT_MS: env.positiveInt(30_000),
  /** Each dependency probe of /status gives up after this long. */
  STATUS_TIMEOUT_MS: env.positiveInt(2_000),
  /** Prefixes every event subject and stream name, so a test's events never meet a stack's. */
  EVENT_SUBJECT_PREFIX: z.string().regex(/^[a-z0-9_]+$/).optional(),
  /** Events waiting for one subscriber before it is disconnected as too slow. */
  SUBSCRIPTION_MAX_PENDING_EVENTS: env.positiveInt(100),
  /** Unsent bytes on one subscriber's socket before it is disconnected as too slow. */
  SUBSCRIPTION_MAX_BUFFERED_BYTES: env.positiveInt(1024 * 1024),
  OTEL_TRACES_EXPORTER: z.enum(['none', 'otlp']).default('none'),
  OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: env.url().optional(),
  SHUTDOWN_GRACE_MS: env.positiveInt(10_000),
}).refine((config) => config.OTEL_TRACES_EXPORTER !== 'otlp' || config.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT !== undefined, {
  path: ['OTEL_EXPORTER_OTLP_TRACES_ENDPOINT'],
  message: 'is required when OTEL_TRACES_EXPORTER is otlp',
});

export type GatewayConfig = z.infer<typeof gatewayConfigSchema>;
