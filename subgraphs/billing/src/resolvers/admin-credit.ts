import type { GraphQLResolverMap } from '@apollo/subgraph/dist/schema-helper/resolverMap.js';
import type { CreditBalanceInput } from '../domain/admin-credit.js';
import type { BillingContext } from './context.js';

/** A platform admin's credit to an organization's balance. */
export const adminCreditResolvers: GraphQLResolverMap<BillingContext> = {
  CreditKind: { PAID: 'paid', PROMOTIONAL: 'promotional' },
  Mutation: {
    creditBalance: (_root, args: { input: CreditBalanceInput }, ctx: BillingContext) => ctx.adminCredit.credit(ctx, args.input),
  },
};
