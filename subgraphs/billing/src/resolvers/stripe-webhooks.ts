import type { GraphQLResolverMap } from '@apollo/subgraph/dist/schema-helper/resolverMap.js';
import type { StripeEventView } from '../data/stripe-events-store.js';
import type { StripeWebhookEventFilter } from '../domain/stripe-event-processing.js';
import type { BillingContext, PageArgs } from './context.js';

/** Finance's view of Stripe's webhooks: stored events and dead letters, and sending a dead one back. */
export const stripeWebhookEventResolvers: GraphQLResolverMap<BillingContext> = {
  StripeWebhookEventStatus: { PENDING: 'pending', PROCESSED: 'processed', DEAD: 'dead' },
  Query: {
    stripeWebhookEvents: (_root, args: PageArgs & { filter?: StripeWebhookEventFilter | null }, ctx: BillingContext) =>
      ctx.stripeEvents.list(ctx.access, args.filter, args),
  },
  Mutation: {
    retryStripeWebhookEvent: (_root, args: { id: string }, ctx: BillingContext) => ctx.stripeEvents.retry(ctx, args.id),
  },
  StripeWebhookEvent: {
    // Only a pending event has a next attempt; a processed or dead one keeps the column's last value.
    nextAttemptAt: (event: StripeEventView) => (event.status === 'pending' ? event.nextAttemptAt : null),
  },
};
