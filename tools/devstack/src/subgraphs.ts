import type { Logger } from '@aifactory/logging';
import type { StartedService, SubgraphConfig } from '@aifactory/subgraph-kit';
import { startAppplatformSubgraph } from '@aifactory/appplatform/server';
import { startBillingSubgraph } from '@aifactory/billing/server';
import { startEvidenceSubgraph } from '@aifactory/evidence/server';
import { startGpuaasSubgraph } from '@aifactory/gpuaas/server';
import { startIamSubgraph } from '@aifactory/iam/server';
import { startTokenfactorySubgraph } from '@aifactory/tokenfactory/server';

export type StartSubgraph = (config: SubgraphConfig, logger: Logger) => Promise<StartedService>;

/** Every subgraph, in supergraph.yaml's order (which also gives dev ports). */
export const SUBGRAPH_STARTERS: ReadonlyArray<{ name: string; start: StartSubgraph; entry: string }> = [
  { name: 'iam', start: startIamSubgraph, entry: 'subgraphs/iam/dist/main.js' },
  { name: 'billing', start: startBillingSubgraph, entry: 'subgraphs/billing/dist/main.js' },
  { name: 'evidence', start: startEvidenceSubgraph, entry: 'subgraphs/evidence/dist/main.js' },
  { name: 'gpuaas', start: startGpuaasSubgraph, entry: 'subgraphs/gpuaas/dist/main.js' },
  { name: 'appplatform', start: startAppplatformSubgraph, entry: 'subgraphs/appplatform/dist/main.js' },
  { name: 'tokenfactory', start: startTokenfactorySubgraph, entry: 'subgraphs/tokenfactory/dist/main.js' },
];
