import { runSubgraphMain } from '@aifactory/subgraph-kit';
import { gpuaasConfigSchema } from './config.js';
import { SUBGRAPH_NAME, startGpuaasSubgraph } from './server.js';

await runSubgraphMain(SUBGRAPH_NAME, gpuaasConfigSchema, startGpuaasSubgraph);
