import { subgraphConfigSchema } from '@aifactory/subgraph-kit';

export const iamConfigSchema = subgraphConfigSchema;
export type IamConfig = typeof iamConfigSchema._output;
