import { bootstrapDatabase } from '../bootstrap.js';
import { SUBGRAPHS } from '../layout.js';
import { runCommand } from './run.js';

await runCommand('db:bootstrap', async (config, logger) => {
  await bootstrapDatabase({
    adminUrl: config.DATABASE_ADMIN_URL,
    database: config.DATABASE_NAME,
    rolePrefix: config.DB_ROLE_PREFIX,
    subgraphs: SUBGRAPHS,
  });
  logger.info({ database: config.DATABASE_NAME, schemas: SUBGRAPHS }, 'database bootstrapped');
  return 0;
});
