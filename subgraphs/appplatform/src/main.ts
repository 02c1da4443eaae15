import { runSubgraphMain } from '@aifactory/subgraph-kit';
import { appplatformConfigSchema } from './config.js';
import { SUBGRAPH_NAME, startAppplatformSubgraph } from './server.js';

await runSubgraphMain(SUBGRAPH_NAME, appplatformConfigSchema, startAppplatformSubgraph);
