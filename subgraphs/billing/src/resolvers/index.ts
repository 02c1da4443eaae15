import { DateTimeScalar, mergeResolvers } from '@aifactory/subgraph-kit';
import type { GraphQLResolverMap } from '@apollo/subgraph/dist/schema-helper/resolverMap.js';
import type { Account } from '../data/accounts.js';
import { adminCreditResolvers } from './admin-credit.js';
import { balanceResolvers } from './balances.js';
import type { BillingContext } from './context.js';
import { ledgerHistoryResolvers } from './ledger-history.js';
import { priceBookResolvers } from './price-books.js';
import { usageResolvers } from './usage.js';
import { paymentResolvers } from './payments.js';
import { refundResolvers } from './refunds.js';
import { stripeWebhookEventResolvers } from './stripe-webhooks.js';

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

export const resolvers: GraphQLResolverMap<BillingContext> = mergeResolvers(
  { DateTime: DateTimeScalar } as GraphQLResolverMap<BillingContext>,
  accountResolvers,
  balanceResolvers,
  ledgerHistoryResolvers,
  priceBookResolvers,
  adminCreditResolvers,
  usageResolvers,
  paymentResolvers,
  refundResolvers,
  stripeWebhookEventResolvers,
);
