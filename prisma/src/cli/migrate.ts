import { withDatabase } from '../layout.js';
import { migrate } from '../migrations.js';
import { migrationTargets } from '../targets.js';
import { runCommand } from './run.js';

await runCommand('db:migrate', async (config, logger) => {
  const layout = { adminUrl: config.DATABASE_ADMIN_URL, database: config.DATABASE_NAME, rolePrefix: config.DB_ROLE_PREFIX };
  const statuses = await migrate({
    databaseUrl: withDatabase(config.DATABASE_ADMIN_URL, config.DATABASE_NAME),
    targets: migrationTargets(layout),
    lockWaitMs: config.MIGRATION_LOCK_WAIT_MS,
    lockTimeoutMs: config.MIGRATION_LOCK_TIMEOUT_MS,
    logger,
  });
  for (const status of statuses) logger.info({ schema: status.schema, applied: status.applied.length }, 'schema up to date');
  return 0;
});
