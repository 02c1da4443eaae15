import { readFileSync } from 'node:fs';
import { parse } from 'graphql';
import type { Logger } from '@aifactory/logging';
import { serveSubgraphWithDatabase, type StartedService } from '@aifactory/subgraph-kit';
import type { GpuaasConfig } from './config.js';
import { openGpuaasDatabase } from './data/database.js';
import { SkuCatalogueStore } from './data/sku-catalogue.js';
import { SkuCatalogueService } from './domain/sku-catalogue.js';
import { resolvers, type GpuaasContext } from './resolvers/index.js';

export const SUBGRAPH_NAME = 'gpuaas';
export const typeDefsSource = readFileSync(new URL('../src/schema.graphql', import.meta.url), 'utf8');

export async function startGpuaasSubgraph(config: GpuaasConfig, logger: Logger): Promise<StartedService> {
  const database = openGpuaasDatabase(config);
  const skuCatalogue = new SkuCatalogueService(new SkuCatalogueStore(database.prisma));
  return serveSubgraphWithDatabase<GpuaasContext>(
    { name: SUBGRAPH_NAME, typeDefs: parse(typeDefsSource), resolvers, extendContext: (base) => ({ ...base, skuCatalogue }) },
    database,
    config,
    logger,
  );
}
