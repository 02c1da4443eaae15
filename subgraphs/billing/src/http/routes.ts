import type { SubgraphHttpRoute } from '@aifactory/subgraph-kit';
import type { BillingServices } from '../services.js';
import { reservationRoutes } from './reservation-routes.js';

/** billing's REST routes beside /graphql. */
export function billingHttpRoutes(services: BillingServices): SubgraphHttpRoute[] {
  return [...reservationRoutes(services.reservations)];
}
