import type { GraphQLResolverMap } from '@apollo/subgraph/dist/schema-helper/resolverMap.js';
import type { PaymentSessionRecord } from '../data/payment-sessions-store.js';
import type { CreateCheckoutSessionInput } from '../domain/checkout.js';
import { formatAmount } from '../domain/money.js';
import type { PaymentSessionFilter } from '../domain/payment-settlement.js';
import type { BillingContext, PageArgs } from './context.js';

type Ref = { id: string };

/** Stripe Checkout top-ups: starting one, the customer portal, reading and reconciling sessions. */
export const paymentResolvers: GraphQLResolverMap<BillingContext> = {
  PaymentSessionStatus: {
    INITIATED: 'initiated',
    CHECKOUT_COMPLETED: 'checkout_completed',
    CREDITED: 'credited',
    FAILED_RECONCILE: 'failed_reconcile',
    PAYMENT_FAILED: 'payment_failed',
    EXPIRED: 'expired',
  },
  Organization: {
    paymentSessions: (org: Ref, args: PageArgs & { filter?: PaymentSessionFilter | null }, ctx: BillingContext) =>
      ctx.paymentSettlement.paymentSessions(ctx.access, org.id, args.filter, args),
  },
  Query: {
    paymentSession: (_root, args: { id: string }, ctx: BillingContext) => ctx.paymentSettlement.paymentSession(ctx.access, args.id),
    stuckPaymentSessions: (_root, args: PageArgs & { olderThanSeconds: number }, ctx: BillingContext) =>
      ctx.paymentSettlement.stuckPaymentSessions(ctx.access, args.olderThanSeconds, args),
  },
  Mutation: {
    createCheckoutSession: (_root, args: { input: CreateCheckoutSessionInput }, ctx: BillingContext) => ctx.checkout.createCheckoutSession(ctx, args.input),
    createBillingPortalSession: (_root, args: { organizationId: string }, ctx: BillingContext) => ctx.checkout.createPortalSession(ctx, args.organizationId),
    reconcilePaymentSession: (_root, args: { id: string; acceptReceivedAmount?: boolean | null; reason: string }, ctx: BillingContext) =>
      ctx.paymentSettlement.reconcilePaymentSession(ctx, args.id, { acceptReceivedAmount: args.acceptReceivedAmount, reason: args.reason }),
  },
  PaymentSession: {
    amount: (session: PaymentSessionRecord) => formatAmount(session.amount),
    amountReceived: (session: PaymentSessionRecord) => (session.amountReceived === null ? null : formatAmount(session.amountReceived)),
  },
};
