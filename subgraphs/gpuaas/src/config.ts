import { subgraphConfigSchema } from '@aifactory/subgraph-kit';

export const gpuaasConfigSchema = subgraphConfigSchema;
export type GpuaasConfig = typeof gpuaasConfigSchema._output;
