import type { SubgraphHttpRoute } from '@aifactory/subgraph-kit';
import type { BillingServices } from '../services.js';

/** billing's REST routes beside /graphql. */
export function billingHttpRoutes(services: BillingServices): SubgraphHttpRoute[] {
  void services;
  return [];
}
