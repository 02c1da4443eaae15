import { readFileSync } from 'node:fs';
import { parse } from 'graphql';
import type { Logger } from '@aifactory/logging';
import { serveSubgraphWithDatabase, type StartedService } from '@aifactory/subgraph-kit';
import type { AppplatformConfig } from './config.js';
import { openAppplatformDatabase } from './data/database.js';
import { AppStore } from './data/apps.js';
import { AppService } from './domain/apps.js';
import { resolvers, type AppplatformContext } from './resolvers/index.js';

export const SUBGRAPH_NAME = 'appplatform';
export const typeDefsSource = readFileSync(new URL('../src/schema.graphql', import.meta.url), 'utf8');

export async function startAppplatformSubgraph(config: AppplatformConfig, logger: Logger): Promise<StartedService> {
  const database = openAppplatformDatabase(config);
  const apps = new AppService(new AppStore(database.prisma));
  return serveSubgraphWithDatabase<AppplatformContext>(
    { name: SUBGRAPH_NAME, typeDefs: parse(typeDefsSource), resolvers, extendContext: (base) => ({ ...base, apps }) },
    database,
    config,
    logger,
  );
}
