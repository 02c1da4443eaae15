import { readFileSync } from 'node:fs';
import { parse } from 'graphql';
import type { Logger } from '@aifactory/logging';
import { Outbox, serveSubgraphWithDatabase, type StartedService } from '@aifactory/subgraph-kit';
import type { IamConfig } from './config.js';
import { openIamDatabase } from './data/database.js';
import { HierarchyStore } from './data/hierarchy.js';
import { HierarchyService } from './domain/hierarchy.js';
import { resolvers, type IamContext } from './resolvers/index.js';

export const SUBGRAPH_NAME = 'iam';
export const typeDefsSource = readFileSync(new URL('../src/schema.graphql', import.meta.url), 'utf8');

export async function startIamSubgraph(config: IamConfig, logger: Logger): Promise<StartedService> {
  const database = openIamDatabase(config);
  const outbox = new Outbox({ schema: database.schema, subjectPrefix: config.EVENT_SUBJECT_PREFIX });
  const hierarchy = new HierarchyService(new HierarchyStore(database.prisma), outbox);
  return serveSubgraphWithDatabase<IamContext>(
    { name: SUBGRAPH_NAME, typeDefs: parse(typeDefsSource), resolvers, extendContext: (base) => ({ ...base, hierarchy }) },
    database,
    config,
    logger,
  );
}
