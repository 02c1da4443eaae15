import { openDatabase, type Database, type DatabaseConfig } from '@aifactory/subgraph-kit';
import { PrismaClient } from '../generated/prisma/client.js';

export type BillingPrisma = PrismaClient;
export type BillingDatabase = Database<PrismaClient>;

export function openBillingDatabase(config: Pick<DatabaseConfig, 'DATABASE_URL' | 'DATABASE_SCHEMA' | 'DB_POOL_SIZE'>): BillingDatabase {
  return openDatabase(
    { url: config.DATABASE_URL, schema: config.DATABASE_SCHEMA ?? 'billing', max: config.DB_POOL_SIZE, applicationName: 'billing' },
    (adapter) => new PrismaClient({ adapter }),
  );
}
