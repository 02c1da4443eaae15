import type { GraphQLResolverMap } from '@apollo/subgraph/dist/schema-helper/resolverMap.js';
import type { SubgraphContext } from '@aifactory/subgraph-kit';
import type { DisputeRecord } from '../data/disputes-store.js';
import type { RefundRequestRecord } from '../data/refunds-store.js';
import type { Disputes } from '../domain/disputes.js';
import { formatAmount } from '../domain/money.js';
import type { RefundPaymentInput, Refunds } from '../domain/refunds.js';
import type { PageArgs } from './context.js';

/** What these resolvers use of billing's context. */
export interface RefundsContext extends SubgraphContext {
  refunds: Refunds;
  disputes: Disputes;
}

type Ref = { id: string };

/** Refunds of Stripe payments (refundPayment, an organization's refund requests) and its payment disputes. */
export const refundResolvers: GraphQLResolverMap<RefundsContext> = {
  RefundStatus: { REQUESTED: 'requested', SUBMITTED: 'submitted', REFUNDED: 'refunded', POSTED: 'posted', FAILED: 'failed' },
  RefundOrigin: { PLATFORM: 'platform', STRIPE: 'stripe' },
  DisputeStatus: { HELD: 'held', WON: 'won', LOST: 'lost' },
  Organization: {
    refundRequests: (org: Ref, args: PageArgs, ctx: RefundsContext) => ctx.refunds.requests(ctx.access, org.id, args),
    paymentDisputes: (org: Ref, args: PageArgs, ctx: RefundsContext) => ctx.disputes.disputes(ctx.access, org.id, args),
  },
  Mutation: {
    refundPayment: (_root, args: { input: RefundPaymentInput }, ctx: RefundsContext) => ctx.refunds.refundPayment(ctx, args.input),
  },
  RefundRequest: {
    amount: (request: RefundRequestRecord) => formatAmount(request.amount),
  },
  PaymentDispute: {
    amount: (dispute: DisputeRecord) => formatAmount(dispute.amount),
  },
};
