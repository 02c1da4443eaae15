import { readFileSync } from 'node:fs';
import { parse } from 'graphql';
import type { Logger } from '@aifactory/logging';
import { startSubgraph, type StartedService } from '@aifactory/subgraph-kit';
import type { EvidenceConfig } from './config.js';
import { openEvidenceDatabase } from './data/database.js';
import { AuditLogStore } from './data/audit-log.js';
import { AuditLogService } from './domain/audit-log.js';
import { resolvers, type EvidenceContext } from './resolvers/index.js';

export const SUBGRAPH_NAME = 'evidence';
export const typeDefsSource = readFileSync(new URL('../src/schema.graphql', import.meta.url), 'utf8');

export async function startEvidenceSubgraph(config: EvidenceConfig, logger: Logger): Promise<StartedService> {
  const database = openEvidenceDatabase(config);
  const auditLog = new AuditLogService(new AuditLogStore(database.prisma));
  try {
    const server = await startSubgraph<EvidenceContext>(
      {
        name: SUBGRAPH_NAME,
        typeDefs: parse(typeDefsSource),
        resolvers,
        extendContext: (base) => ({ ...base, auditLog }),
        ready: database.ping,
      },
      config,
      logger,
    );
    return {
      url: server.url,
      close: async () => {
        await server.close();
        await database.close();
      },
    };
  } catch (error) {
    await database.close();
    throw error;
  }
}
