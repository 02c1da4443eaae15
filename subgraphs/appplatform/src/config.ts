import { subgraphConfigSchema } from '@aifactory/subgraph-kit';

export const appplatformConfigSchema = subgraphConfigSchema;
export type AppplatformConfig = typeof appplatformConfigSchema._output;
