import type { GraphQLResolverMap } from '@apollo/subgraph/dist/schema-helper/resolverMap.js';
import type { PriceInForce, PublishPriceBookInput } from '../domain/price-books.js';
import type { BillingContext, PageArgs } from './context.js';

type PriceInForceArgs = { currency: string; unit: string; resourceType?: string | null; resourceId?: string | null; at?: Date | null };

/** The usage-unit registry and price books. */
export const priceBookResolvers: GraphQLResolverMap<BillingContext> = {
  RatingCategory: { INTERVAL: 'interval', POINT: 'point' },
  UsageUnitLifecycle: { ACTIVE: 'active', DEPRECATED: 'deprecated', RETIRED: 'retired' },
  Query: {
    usageUnits: (_root, _args, ctx: BillingContext) => ctx.priceBooks.usageUnits(ctx.access),
    priceBooks: (_root, args: PageArgs & { currency: string }, ctx: BillingContext) => ctx.priceBooks.list(ctx.access, args.currency, args),
    priceBook: (_root, args: { id: string }, ctx: BillingContext) => ctx.priceBooks.get(ctx.access, args.id),
    priceInForce: (_root, args: PriceInForceArgs, ctx: BillingContext) => ctx.priceBooks.lookup(ctx.access, args),
  },
  Mutation: {
    publishPriceBook: (_root, args: { input: PublishPriceBookInput }, ctx: BillingContext) => ctx.priceBooks.publish(ctx, args.input),
  },
  PriceInForce: {
    priceBook: (found: PriceInForce, _args, ctx: BillingContext) => ctx.priceBooks.get(ctx.access, found.priceBookId),
  },
};
