import type { Logger } from '@aifactory/logging';
import { parseConfig, type z } from '@aifactory/config';
import { subgraphConfigSchema, type StartedService } from '@aifactory/subgraph-kit';
import { startAppplatformSubgraph } from '@aifactory/appplatform/server';
import { billingConfigSchema, startBillingSubgraph } from '@aifactory/billing/server';
import { startEvidenceSubgraph } from '@aifactory/evidence/server';
import { startGpuaasSubgraph } from '@aifactory/gpuaas/server';
import { iamConfigSchema, startIamSubgraph } from '@aifactory/iam/server';
import { startTokenfactorySubgraph } from '@aifactory/tokenfactory/server';

/** Parses the subgraph's own environment (its schema extends the common one) and starts it. */
export type StartSubgraph = (environment: Record<string, string>, logger: Logger) => Promise<StartedService>;

function starter<S extends z.ZodType>(schema: S, start: (config: z.infer<S>, logger: Logger) => Promise<StartedService>): StartSubgraph {
  return (environment, logger) => start(parseConfig(schema, environment), logger);
}

/** Every subgraph, in supergraph.yaml's order (which also gives dev ports). */
export const SUBGRAPH_STARTERS: ReadonlyArray<{ name: string; start: StartSubgraph; entry: string }> = [
  { name: 'iam', start: starter(iamConfigSchema, startIamSubgraph), entry: 'subgraphs/iam/dist/main.js' },
  { name: 'billing', start: starter(billingConfigSchema, startBillingSubgraph), entry: 'subgraphs/billing/dist/main.js' },
  { name: 'evidence', start: starter(subgraphConfigSchema, startEvidenceSubgraph), entry: 'subgraphs/evidence/dist/main.js' },
  { name: 'gpuaas', start: starter(subgraphConfigSchema, startGpuaasSubgraph), entry: 'subgraphs/gpuaas/dist/main.js' },
  { name: 'appplatform', start: starter(subgraphConfigSchema, startAppplatformSubgraph), entry: 'subgraphs/appplatform/dist/main.js' },
  { name: 'tokenfactory', start: starter(subgraphConfigSchema, startTokenfactorySubgraph), entry: 'subgraphs/tokenfactory/dist/main.js' },
];
