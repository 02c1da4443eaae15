import { openDatabase, type Database, type DatabaseConfig } from '@aifactory/subgraph-kit';
import { PrismaClient } from '../generated/prisma/client.js';

export type GpuaasPrisma = PrismaClient;
export type GpuaasDatabase = Database<PrismaClient>;

export function openGpuaasDatabase(config: DatabaseConfig): GpuaasDatabase {
  return openDatabase(
    { url: config.DATABASE_URL, schema: config.DATABASE_SCHEMA ?? 'gpuaas', max: config.DB_POOL_SIZE, applicationName: 'gpuaas' },
    (adapter) => new PrismaClient({ adapter }),
  );
}
