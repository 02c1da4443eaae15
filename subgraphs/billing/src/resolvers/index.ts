import { DateTimeScalar, type SubgraphContext } from '@aifactory/subgraph-kit';
import type { GraphQLResolverMap } from '@apollo/subgraph/dist/schema-helper/resolverMap.js';
import type { Account } from '../data/accounts.js';
import type { BillingServices } from '../services.js';

export interface BillingContext extends SubgraphContext, BillingServices {}

type Ref = { id: string };

export const resolvers: GraphQLResolverMap<BillingContext> = {
  DateTime: DateTimeScalar,
  AccountKind: { CUSTOMER_BALANCE: 'customer_balance', PROMOTIONAL_CREDIT: 'promotional_credit', DISPUTES_HELD: 'disputes_held' },
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
