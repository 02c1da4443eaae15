import { subgraphConfigSchema } from '@aifactory/subgraph-kit';

export const tokenfactoryConfigSchema = subgraphConfigSchema;
export type TokenfactoryConfig = typeof tokenfactoryConfigSchema._output;
