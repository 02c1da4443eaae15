import { subgraphConfigSchema } from '@aifactory/subgraph-kit';

export const billingConfigSchema = subgraphConfigSchema;
export type BillingConfig = typeof billingConfigSchema._output;
