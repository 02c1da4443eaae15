import { env, z } from '@aifactory/config';

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
  INTERNAL_JWT_PUBLIC_KEY_FILES: env.list(),
  INTERNAL_JWT_ISSUERS: env.list().default(['gateway']),
  SHUTDOWN_GRACE_MS: env.positiveInt(10_000),
  BODY_LIMIT_BYTES: env.positiveInt(2 * 1024 * 1024),
});

export type SubgraphConfig = z.infer<typeof subgraphConfigSchema>;

/** Just what a one-shot command (a seed) needs to reach the subgraph's schema. */
export const databaseConfigSchema = subgraphConfigSchema.pick({
  LOG_LEVEL: true,
  DATABASE_URL: true,
  DATABASE_SCHEMA: true,
  DB_POOL_SIZE: true,
});

export type DatabaseConfig = z.infer<typeof databaseConfigSchema>;
