import { openDatabase, type Database, type DatabaseConfig } from '@aifactory/subgraph-kit';
import { PrismaClient } from '../generated/prisma/client.js';

export type TokenfactoryPrisma = PrismaClient;
export type TokenfactoryDatabase = Database<PrismaClient>;

export function openTokenfactoryDatabase(config: DatabaseConfig): TokenfactoryDatabase {
  return openDatabase(
    {
      url: config.DATABASE_URL,
      schema: config.DATABASE_SCHEMA ?? 'tokenfactory',
      max: config.DB_POOL_SIZE,
      applicationName: 'tokenfactory',
    },
    (adapter) => new PrismaClient({ adapter }),
  );
}
