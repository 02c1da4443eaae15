import { AppError } from '@aifactory/errors';
import type { SubgraphHttpRoute } from '@aifactory/subgraph-kit';
import type { BillingServices } from '../services.js';
import { reservationRoutes } from './reservation-routes.js';
import { stripeWebhookRoute } from './stripe-webhook-route.js';
import { usageExportRoute } from './usage-export-route.js';

/** billing's REST routes beside /graphql. */
export function billingHttpRoutes(services: BillingServices, stripe: { webhookSecrets: () => readonly string[]; toleranceSeconds: number }): SubgraphHttpRoute[] {
  return [
    stripeWebhookRoute({ events: services.stripeEvents, secrets: stripe.webhookSecrets, toleranceSeconds: stripe.toleranceSeconds }),
    ...reservationRoutes(services.reservations),
    usageExportRoute(services.usageReads, (ctx) => {
      // The kit sets it with the verified call on every internal route.
      if (!ctx.access) throw new AppError('INTERNAL_AUTH_UNAUTHENTICATED', 'A valid internal token is required');
      return ctx.access();
    }),
  ];
}
