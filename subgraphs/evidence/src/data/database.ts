import { openDatabase, type Database, type DatabaseConfig } from '@aifactory/subgraph-kit';
import { PrismaClient } from '../generated/prisma/client.js';

export type EvidencePrisma = PrismaClient;
export type EvidenceDatabase = Database<PrismaClient>;

export function openEvidenceDatabase(config: DatabaseConfig): EvidenceDatabase {
  return openDatabase(
    { url: config.DATABASE_URL, schema: config.DATABASE_SCHEMA ?? 'evidence', max: config.DB_POOL_SIZE, applicationName: 'evidence' },
    (adapter) => new PrismaClient({ adapter }),
  );
}
