import pg from 'pg';
import { withDatabase } from '../layout.js';
import { migrationStatus } from '../migrations.js';
import { migrationTargets } from '../targets.js';
import { runCommand } from './run.js';

await runCommand('db:status', async (config) => {
  const layout = { adminUrl: config.DATABASE_ADMIN_URL, database: config.DATABASE_NAME, rolePrefix: config.DB_ROLE_PREFIX };
  const client = new pg.Client({ connectionString: withDatabase(config.DATABASE_ADMIN_URL, config.DATABASE_NAME) });
  await client.connect();
  try {
    const statuses = await migrationStatus(client, migrationTargets(layout));
    for (const status of statuses) {
      const state = status.problems.length > 0 ? 'REFUSED' : status.pending.length > 0 ? 'PENDING' : 'up to date';
      process.stdout.write(`${status.schema.padEnd(14)} ${state.padEnd(11)} applied ${status.applied.length}, pending ${status.pending.length}\n`);
      for (const name of status.pending) process.stdout.write(`  pending  ${name}\n`);
      for (const problem of status.problems) process.stdout.write(`  problem  ${problem}\n`);
    }
    return statuses.some((status) => status.problems.length > 0 || status.pending.length > 0) ? 1 : 0;
  } finally {
    await client.end();
  }
});
