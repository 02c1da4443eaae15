import type { GraphQLResolverMap } from '@apollo/subgraph/dist/schema-helper/resolverMap.js';
import type { PostingView, TransferView } from '../data/ledger-history.js';
import type { ReservationRecord } from '../data/reservation-store.js';
import type { PostingFilter, ReservationFilter, TransferFilter } from '../domain/ledger-history.js';
import { formatAmount } from '../domain/money.js';
import type { BillingContext, PageArgs } from './context.js';

type Ref = { id: string };
const projectRef = (projectId: string | null) => (projectId === null ? null : { __typename: 'Project', id: projectId });

/** An organization's transfers, postings and reservations (keyset lists on the ledger's sequence). */
export const ledgerHistoryResolvers: GraphQLResolverMap<BillingContext> = {
  ReservationStatus: { PENDING: 'pending', POSTED: 'posted', VOIDED: 'voided', EXPIRED: 'expired' },
  Organization: {
    transfers: (org: Ref, args: PageArgs & { filter?: TransferFilter | null }, ctx: BillingContext) =>
      ctx.ledgerHistory.transfers(ctx.access, org.id, args.filter, args),
    postings: (org: Ref, args: PageArgs & { filter?: PostingFilter | null }, ctx: BillingContext) =>
      ctx.ledgerHistory.postings(ctx.access, org.id, args.filter, args),
    reservations: (org: Ref, args: PageArgs & { filter?: ReservationFilter | null }, ctx: BillingContext) =>
      ctx.ledgerHistory.reservations(ctx.access, org.id, args.filter, args),
  },
  Transfer: {
    amount: (transfer: TransferView) => formatAmount(transfer.amount),
    project: (transfer: TransferView) => projectRef(transfer.projectId),
  },
  Posting: {
    project: (posting: PostingView) => projectRef(posting.projectId),
  },
  Reservation: {
    project: (reservation: ReservationRecord) => projectRef(reservation.projectId),
    amount: (reservation: ReservationRecord) => formatAmount(reservation.amount),
    postedAmount: (reservation: ReservationRecord) => (reservation.postedAmount === null ? null : formatAmount(reservation.postedAmount)),
    period: (reservation: ReservationRecord) => reservation.period.slice(0, 7),
  },
};
