import { runSubgraphMain } from '@aifactory/subgraph-kit';
import { billingConfigSchema } from './config.js';
import { SUBGRAPH_NAME, startBillingSubgraph } from './server.js';

await runSubgraphMain(SUBGRAPH_NAME, billingConfigSchema, startBillingSubgraph);
