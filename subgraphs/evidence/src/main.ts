import { runSubgraphMain } from '@aifactory/subgraph-kit';
import { evidenceConfigSchema } from './config.js';
import { SUBGRAPH_NAME, startEvidenceSubgraph } from './server.js';

await runSubgraphMain(SUBGRAPH_NAME, evidenceConfigSchema, startEvidenceSubgraph);
