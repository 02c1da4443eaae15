import { openDatabase, type Database, type DatabaseConfig } from '@aifactory/subgraph-kit';
import { PrismaClient } from '../generated/prisma/client.js';

export type IamPrisma = PrismaClient;
export type IamDatabase = Database<PrismaClient>;

export function openIamDatabase(config: DatabaseConfig): IamDatabase {
  return openDatabase(
    { url: config.DATABASE_URL, schema: config.DATABASE_SCHEMA ?? 'iam', max: config.DB_POOL_SIZE, applicationName: 'iam' },
    (adapter) => new PrismaClient({ adapter }),
  );
}
