import { runSubgraphMain } from '@aifactory/subgraph-kit';
import { iamConfigSchema } from './config.js';
import { SUBGRAPH_NAME, startIamSubgraph } from './server.js';

await runSubgraphMain(SUBGRAPH_NAME, iamConfigSchema, startIamSubgraph);
