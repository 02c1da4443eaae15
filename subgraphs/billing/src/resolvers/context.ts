import type { SubgraphContext } from '@aifactory/subgraph-kit';
import type { BillingServices } from '../services.js';

/** One request's context: the kit's verified caller with its authorization, and billing's services. */
export interface BillingContext extends SubgraphContext, BillingServices {}

/** `first`/`after` of every list field. */
export interface PageArgs {
  first?: number | null;
  after?: string | null;
}
