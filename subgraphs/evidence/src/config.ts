import { subgraphConfigSchema } from '@aifactory/subgraph-kit';

export const evidenceConfigSchema = subgraphConfigSchema;
export type EvidenceConfig = typeof evidenceConfigSchema._output;
