import { env, z } from '@aifactory/config';
import { SUBJECT_PREFIX_PATTERN } from '@aifactory/contracts';

/**
 * What every subgraph process needs. A subgraph extends this with its own
 * variables; names are the environment variable names.
 */
export const subgraphConfigSchema = z.object({
  HOST: z.string().default('127.0.0.1'),
  PORT: env.port(),
  LOG_LEVEL: env.logLevel(),
  DATABASE_URL: env.url(),
  /** The Postgres schema this subgraph owns; defaults to the subgraph's name. */
  DATABASE_SCHEMA: env.identifier().optional(),
  DB_POOL_SIZE: env.positiveInt(5),
  /** Public key files (each may be a PEM bundle of several keys) the platform issuers' tokens are checked with. */
  INTERNAL_JWT_PUBLIC_KEY_FILES: env.list(),
  /** Issuers checked against those files; their names can never be service identities. */
  INTERNAL_JWT_ISSUERS: env.list().default(['gateway']),
  /** How often key files (public keys, the service credential) are checked for a rotation; an unknown kid also re-reads them, at most once a second. */
  INTERNAL_JWT_KEY_RELOAD_MS: env.positiveInt(5_000),
  /**
   * This service's own Ed25519 private key (PKCS#8 PEM), its service identity's
   * credential for calling other services (`ServiceClient`). Left out, the
   * service calls no one.
   */
  SERVICE_CREDENTIAL_FILE: env.nonEmpty().optional(),
  /** Base URLs of the services this one may call, as JSON {"billing": "http://127.0.0.1:4002"}. */
  SERVICE_URLS: env.json(z.record(z.string().regex(/^[a-z][a-z0-9-]*$/), z.url())).default({}),
  /** Lifetime of this service's own tokens (at most 60 s). */
  SERVICE_TOKEN_TTL_SECONDS: z.coerce.number().int().min(5).max(60).default(30),
  /** A call to another service that has not answered by then fails with UPSTREAM_TIMEOUT. */
  SERVICE_CALL_TIMEOUT_MS: env.positiveInt(10_000),
  SHUTDOWN_GRACE_MS: env.positiveInt(10_000),
  BODY_LIMIT_BYTES: env.positiveInt(2 * 1024 * 1024),
  REDIS_URL: env.url().default('redis://127.0.0.1:6379'),
  REDIS_COMMAND_TIMEOUT_MS: env.positiveInt(250),
  NATS_URL: env.list().default(['nats://127.0.0.1:4222']),
  NATS_USER: z.string().min(1).optional(),
  NATS_PASSWORD: z.string().min(1).optional(),
  /**
   * Empty in every real environment. Tests set one of their own: every subject
   * written to the outbox and every stream declared at start (its name too)
   * carries it, so a test run never publishes into another stack's streams.
   */
  EVENT_SUBJECT_PREFIX: z
    .union([z.literal(''), z.string().regex(SUBJECT_PREFIX_PATTERN, 'must be one lowercase token (a-z, 0-9, _), at most 32 characters')])
    .default(''),
  /** Published outbox events are deleted this long after publication (default a week); pending and failed ones never. */
  OUTBOX_RETENTION_HOURS: env.positiveInt(168),
  /** IAM's read model counts as stale when its last heartbeat is older than this (IAM beats every 2 s). */
  ACCESS_MODEL_MAX_AGE_MS: env.positiveInt(60_000),
  /** Each dependency probe of /readyz gives up after this long. */
  READINESS_TIMEOUT_MS: env.positiveInt(2_000),
  OTEL_TRACES_EXPORTER: z.enum(['none', 'otlp']).default('none'),
  OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: env.url().optional(),
});

export type SubgraphConfig = z.infer<typeof subgraphConfigSchema>;

/** Just what a one-shot command (a seed) needs to reach the subgraph's schema. */
export const databaseConfigSchema = subgraphConfigSchema.pick({
  LOG_LEVEL: true,
  DATABASE_URL: true,
  DATABASE_SCHEMA: true,
  DB_POOL_SIZE: true,
  // A seed's domain code writes outbox events too, under the same prefix as the services.
  EVENT_SUBJECT_PREFIX: true,
});

export type DatabaseConfig = z.infer<typeof databaseConfigSchema>;
