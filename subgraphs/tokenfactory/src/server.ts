import { readFileSync } from 'node:fs';
import { parse } from 'graphql';
import type { Logger } from '@aifactory/logging';
import { serveSubgraphWithDatabase, type StartedService } from '@aifactory/subgraph-kit';
import type { TokenfactoryConfig } from './config.js';
import { openTokenfactoryDatabase } from './data/database.js';
import { ModelCatalogueStore } from './data/model-catalogue.js';
import { ModelCatalogueService } from './domain/model-catalogue.js';
import { resolvers, type TokenfactoryContext } from './resolvers/index.js';

export const SUBGRAPH_NAME = 'tokenfactory';
export const typeDefsSource = readFileSync(new URL('../src/schema.graphql', import.meta.url), 'utf8');

export async function startTokenfactorySubgraph(config: TokenfactoryConfig, logger: Logger): Promise<StartedService> {
  const database = openTokenfactoryDatabase(config);
  const modelCatalogue = new ModelCatalogueService(new ModelCatalogueStore(database.prisma));
  return serveSubgraphWithDatabase<TokenfactoryContext>(
    { name: SUBGRAPH_NAME, typeDefs: parse(typeDefsSource), resolvers, extendContext: (base) => ({ ...base, modelCatalogue }) },
    database,
    config,
    logger,
  );
}
