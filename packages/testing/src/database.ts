import { randomBytes } from 'node:crypto';
import pg from 'pg';
import {
  appDatabaseUrl,
  bootstrapDatabase,
  dropDatabase,
  migrate,
  migrationTargets,
  SUBGRAPHS,
  withDatabase,
  type DatabaseLayout,
} from '@aifactory/db-tools';
import { createLogger } from '@aifactory/logging';

export const TEST_ADMIN_URL = process.env.TEST_DATABASE_ADMIN_URL ?? 'postgresql://postgres@127.0.0.1:5432/postgres';

export interface TestDatabase {
  layout: DatabaseLayout;
  /** Admin connection string to this database (the migrator's). */
  adminUrl: string;
  appUrl(subgraph: string): string;
  /** A connected admin client for assertions; closed by drop(). */
  admin(): Promise<pg.Client>;
  drop(): Promise<void>;
}

/** A database name and role prefix no other run can have, dev stack included. */
export function uniqueLayout(): DatabaseLayout {
  const id = randomBytes(5).toString('hex');
  return { adminUrl: TEST_ADMIN_URL, database: `aif_test_${id}`, rolePrefix: `t${id}_` };
}

/** Bootstraps (and by default migrates) a private database for one test file. */
export async function createTestDatabase(options: { migrate?: boolean; subgraphs?: readonly string[] } = {}): Promise<TestDatabase> {
  const layout = uniqueLayout();
  const subgraphs = options.subgraphs ?? SUBGRAPHS;
  const bootstrap = { ...layout, subgraphs };
  await bootstrapDatabase(bootstrap);
  const adminUrl = withDatabase(layout.adminUrl, layout.database);
  if (options.migrate !== false) {
    await migrate({
      databaseUrl: adminUrl,
      targets: migrationTargets(layout, subgraphs),
      lockWaitMs: 30_000,
      lockTimeoutMs: 10_000,
      logger: createLogger({ service: 'test-migrate', level: 'warn' }),
    });
  }
  const clients: pg.Client[] = [];
  return {
    layout,
    adminUrl,
    appUrl: (subgraph) => appDatabaseUrl(layout, subgraph),
    admin: async () => {
      const client = new pg.Client({ connectionString: adminUrl });
      await client.connect();
      clients.push(client);
      return client;
    },
    drop: async () => {
      await Promise.all(clients.map((client) => client.end().catch(() => undefined)));
      await dropDatabase(bootstrap);
    },
  };
}
