import { openDatabase, type Database, type DatabaseConfig } from '@aifactory/subgraph-kit';
import { PrismaClient } from '../generated/prisma/client.js';

export type AppplatformPrisma = PrismaClient;
export type AppplatformDatabase = Database<PrismaClient>;

export function openAppplatformDatabase(config: DatabaseConfig): AppplatformDatabase {
  return openDatabase(
    {
      url: config.DATABASE_URL,
      schema: config.DATABASE_SCHEMA ?? 'appplatform',
      max: config.DB_POOL_SIZE,
      applicationName: 'appplatform',
    },
    (adapter) => new PrismaClient({ adapter }),
  );
}
