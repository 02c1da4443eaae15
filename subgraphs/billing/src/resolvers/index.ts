import { DateTimeScalar } from '@aifactory/subgraph-kit';
import type { GraphQLResolverMap } from '@apollo/subgraph/dist/schema-helper/resolverMap.js';
import type { Account } from '../data/accounts.js';
import { adminCreditResolvers } from './admin-credit.js';
import { balanceResolvers } from './balances.js';
import type { BillingContext } from './context.js';
import { ledgerHistoryResolvers } from './ledger-history.js';
import { priceBookResolvers } from './price-books.js';

export type { BillingContext } from './context.js';

type Ref = { id: string };

const accountResolvers: GraphQLResolverMap<BillingContext> = {
  AccountKind: {
    CUSTOMER_BALANCE: 'customer_balance',
    PROMOTIONAL_CREDIT: 'promotional_credit',
    DISPUTES_HELD: 'disputes_held',
    REVENUE: 'revenue',
    PAYMENT_CLEARING: 'payment_clearing',
    REFUNDS: 'refunds',
    PROMOTIONS: 'promotions',
  },
  Account: {
    __resolveReference: (ref: Ref, ctx: BillingContext) => ctx.accounts.account(ctx.access, ref.id),
    organization: (account: Account) => ({ __typename: 'Organization', id: account.organizationId }),
  },
  Organization: {
    // Billing knows organizations only by id; iam resolves every other field.
    __resolveReference: (ref: Ref) => ({ id: ref.id }),
    account: (org: Ref, _args, ctx: BillingContext) => ctx.accounts.balanceAccountOf(ctx.access, org.id),
  },
};

/** Each area's resolver map, merged type by type; two areas resolving the same field is a defect caught at start. */
function mergeResolvers(...maps: GraphQLResolverMap<BillingContext>[]): GraphQLResolverMap<BillingContext> {
  const merged: Record<string, Record<string, unknown>> = {};
  for (const map of maps) {
    for (const [typeName, fields] of Object.entries(map)) {
      if (!isFieldMap(fields)) {
        merged[typeName] = fields as never;
        continue;
      }
      const target = (merged[typeName] ??= {});
      for (const [field, resolver] of Object.entries(fields)) {
        if (field in target) throw new Error(`Two resolvers for ${typeName}.${field}`);
        target[field] = resolver;
      }
    }
  }
  return merged as GraphQLResolverMap<BillingContext>;
}

/** A plain object of field resolvers (or enum values), not a scalar's class instance. */
function isFieldMap(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && value.constructor === Object;
}

export const resolvers: GraphQLResolverMap<BillingContext> = mergeResolvers(
  { DateTime: DateTimeScalar } as GraphQLResolverMap<BillingContext>,
  accountResolvers,
  balanceResolvers,
  ledgerHistoryResolvers,
  priceBookResolvers,
  adminCreditResolvers,
);
