import { runSubgraphMain } from '@aifactory/subgraph-kit';
import { tokenfactoryConfigSchema } from './config.js';
import { SUBGRAPH_NAME, startTokenfactorySubgraph } from './server.js';

await runSubgraphMain(SUBGRAPH_NAME, tokenfactoryConfigSchema, startTokenfactorySubgraph);
