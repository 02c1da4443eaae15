import { readFileSync } from 'node:fs';
import { parse } from 'graphql';
import type { Logger } from '@aifactory/logging';
import { serveSubgraphWithDatabase, type StartedService } from '@aifactory/subgraph-kit';
import type { BillingConfig } from './config.js';
import { openBillingDatabase } from './data/database.js';
import { AccountStore } from './data/accounts.js';
import { AccountService } from './domain/accounts.js';
import { resolvers, type BillingContext } from './resolvers/index.js';

export const SUBGRAPH_NAME = 'billing';
export const typeDefsSource = readFileSync(new URL('../src/schema.graphql', import.meta.url), 'utf8');

export async function startBillingSubgraph(config: BillingConfig, logger: Logger): Promise<StartedService> {
  const database = openBillingDatabase(config);
  const accounts = new AccountService(new AccountStore(database.prisma));
  return serveSubgraphWithDatabase<BillingContext>(
    { name: SUBGRAPH_NAME, typeDefs: parse(typeDefsSource), resolvers, extendContext: (base) => ({ ...base, accounts }) },
    database,
    config,
    logger,
  );
}
