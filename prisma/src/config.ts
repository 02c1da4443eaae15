import { env, z } from '@aifactory/config';

export const dbToolsConfigSchema = z.object({
  /** A role that may create databases and roles (the migrator). Its database part is ignored. */
  DATABASE_ADMIN_URL: env.url().default('postgresql://postgres@127.0.0.1:5432/postgres'),
  DATABASE_NAME: env.identifier().default('aifactory'),
  DB_ROLE_PREFIX: z.string().regex(/^[a-z][a-z0-9_]{0,20}_$/, 'must be lowercase letters, digits and _ ending in _').default('aif_'),
  /** How long a migration run waits for another run's advisory lock. */
  MIGRATION_LOCK_WAIT_MS: env.positiveInt(60_000),
  /** lock_timeout for each migration's statements, so DDL never queues behind live traffic for long. */
  MIGRATION_LOCK_TIMEOUT_MS: env.positiveInt(10_000),
  LOG_LEVEL: env.logLevel(),
});

export type DbToolsConfig = z.infer<typeof dbToolsConfigSchema>;
