import { readFileSync } from 'node:fs';
import { parse } from 'graphql';
import type { Logger } from '@aifactory/logging';
import { serveSubgraphWithDatabase, type StartedService } from '@aifactory/subgraph-kit';
import type { EvidenceConfig } from './config.js';
import { openEvidenceDatabase } from './data/database.js';
import { AuditLogStore, listAuditEventsOldestFirst } from './data/audit-log.js';
import { AuditLogService } from './domain/audit-log.js';
import { auditExportRoute } from './http/audit-export-route.js';
import { resolvers, type EvidenceContext } from './resolvers/index.js';

export const SUBGRAPH_NAME = 'evidence';
export const typeDefsSource = readFileSync(new URL('../src/schema.graphql', import.meta.url), 'utf8');

export async function startEvidenceSubgraph(config: EvidenceConfig, logger: Logger): Promise<StartedService> {
  const database = openEvidenceDatabase(config);
  const auditLog = new AuditLogService(new AuditLogStore(database.prisma));
  return serveSubgraphWithDatabase<EvidenceContext>(
    {
      name: SUBGRAPH_NAME,
      typeDefs: parse(typeDefsSource),
      resolvers,
      extendContext: (base) => ({ ...base, auditLog }),
      httpRoutes: [auditExportRoute((after, limit) => listAuditEventsOldestFirst(database.prisma, after, limit))],
    },
    database,
    config,
    logger,
  );
}
