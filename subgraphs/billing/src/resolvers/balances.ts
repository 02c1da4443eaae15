import type { GraphQLResolverMap } from '@apollo/subgraph/dist/schema-helper/resolverMap.js';
import type { Balance, Spend } from '../domain/balances.js';
import { formatAmount } from '../domain/money.js';
import type { BillingContext, PageArgs } from './context.js';

type Ref = { id: string };
type PeriodArgs = { period?: string | null };

/** Balances and spend attribution (Organization.balance, spend, projectSpend; Project.spend). */
export const balanceResolvers: GraphQLResolverMap<BillingContext> = {
  Organization: {
    balance: (org: Ref, _args, ctx: BillingContext) => ctx.balances.balance(ctx.access, org.id),
    spend: (org: Ref, args: PeriodArgs, ctx: BillingContext) => ctx.balances.organizationSpend(ctx.access, org.id, args.period),
    projectSpend: (org: Ref, args: PeriodArgs & PageArgs, ctx: BillingContext) => ctx.balances.projectSpend(ctx.access, org.id, args.period, args),
  },
  Project: {
    // Billing knows projects only by id; iam resolves every other field.
    __resolveReference: (ref: Ref) => ({ id: ref.id }),
    spend: (project: Ref, args: PeriodArgs, ctx: BillingContext) => ctx.balances.spendOfProject(ctx.access, project.id, args.period),
  },
  Balance: {
    available: (balance: Balance) => formatAmount(balance.available),
    paid: (balance: Balance) => formatAmount(balance.paid),
    promotional: (balance: Balance) => formatAmount(balance.promotional),
    reserved: (balance: Balance) => formatAmount(balance.reserved),
  },
  Spend: {
    project: (spend: Spend) => (spend.projectId === null ? null : { __typename: 'Project', id: spend.projectId }),
    spent: (spend: Spend) => formatAmount(spend.spent),
    reserved: (spend: Spend) => formatAmount(spend.reserved),
  },
};
