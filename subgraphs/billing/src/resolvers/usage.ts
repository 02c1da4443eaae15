import type { GraphQLResolverMap } from '@apollo/subgraph/dist/schema-helper/resolverMap.js';
import type { RejectedUsageView, UsageEventView, UsageLineView, UsagePostingView, UsageRollupView } from '../data/usage-reads-store.js';
import type { UsageCompactionRecord } from '../data/usage-compaction-store.js';
import type { StoredWindow } from '../data/usage-reconciliation-store.js';
import type { RatedUsageFilter, ReconciliationArgs, RejectedUsageFilter, RollupArgs, UsageFilter } from '../domain/usage-reads.js';
import { formatAmount } from '../domain/money.js';
import { formatExact } from '../domain/rating-amounts.js';
import type { BillingContext, PageArgs } from './context.js';

type Ref = { id: string };
const projectRef = (projectId: string | null) => (projectId === null ? null : { __typename: 'Project', id: projectId });
const month = (period: string) => period.slice(0, 7);

/** An organization's usage (raw, rated, refused, reconciled, rolled up) and the admin's raw-usage compaction. */
export const usageResolvers: GraphQLResolverMap<BillingContext> = {
  UsageProduct: { GPUAAS: 'gpuaas', APPPLATFORM: 'appplatform', TOKENFACTORY: 'tokenfactory' },
  UsageEventKind: { RECORDED: 'recorded', OPENED: 'opened', CLOSED: 'closed' },
  UsageEventStatus: { ACCEPTED: 'accepted', REJECTED: 'rejected' },
  UsageLineKind: { POINT: 'point', WINDOW: 'window', CLOSE_ADJUSTMENT: 'close_adjustment' },
  RejectedUsageSource: { REJECTED: 'rejected', CONFLICT: 'conflict' },
  UsageDriftReason: { REPORTED_NE_INGESTED: 'reported_ne_ingested', UNRATED: 'unrated', RATED_NE_POSTED: 'rated_ne_posted' },
  UsageRollupDimension: {
    PROJECT: 'project',
    DEPARTMENT: 'department',
    API_KEY: 'api_key',
    PRODUCT: 'product',
    RESOURCE_TYPE: 'resource_type',
    RESOURCE: 'resource',
    UNIT: 'unit',
    UNIT_VERSION: 'unit_version',
    PRICE_BOOK_VERSION: 'price_book_version',
  },
  UsageRollupGranularity: { HOUR: 'hour', DAY: 'day', MONTH: 'month' },
  Organization: {
    usage: (org: Ref, args: PageArgs & { filter?: UsageFilter | null }, ctx: BillingContext) => ctx.usageReads.usage(ctx.access, org.id, args.filter, args),
    ratedUsage: (org: Ref, args: PageArgs & { filter?: RatedUsageFilter | null }, ctx: BillingContext) =>
      ctx.usageReads.ratedUsage(ctx.access, org.id, args.filter, args),
    rejectedUsage: (org: Ref, args: PageArgs & { filter?: RejectedUsageFilter | null }, ctx: BillingContext) =>
      ctx.usageReads.rejectedUsage(ctx.access, org.id, args.filter, args),
    usageReconciliation: (org: Ref, args: PageArgs & ReconciliationArgs, ctx: BillingContext) => ctx.usageReads.reconciliation(ctx.access, org.id, args),
    usageRollups: (org: Ref, args: PageArgs & RollupArgs, ctx: BillingContext) => ctx.usageReads.rollups(ctx.access, org.id, args),
  },
  Query: {
    usageCompaction: (_root, args: { period: string }, ctx: BillingContext) => ctx.usageCompaction.state(ctx.access, args.period),
  },
  Mutation: {
    recordUsageAuditReview: (_root, args: { period: string; note?: string | null }, ctx: BillingContext) =>
      ctx.usageCompaction.recordAuditReview(ctx, args.period, args.note),
    compactUsage: (_root, args: { period: string }, ctx: BillingContext) => ctx.usageCompaction.compact(ctx, args.period),
  },
  UsageEvent: {
    id: (event: UsageEventView) => event.eventId,
    type: (event: UsageEventView) => event.eventType,
    project: (event: UsageEventView) => projectRef(event.projectId),
    actor: (event: UsageEventView) => (event.actorType === null || event.actorId === null ? null : { type: event.actorType, id: event.actorId }),
    unit: (event: UsageEventView) => event.unitId,
    quantity: (event: UsageEventView) => event.quantity?.toString() ?? null,
  },
  UsageLine: {
    id: (line: UsageLineView) => line.id.toString(),
    project: (line: UsageLineView) => projectRef(line.projectId),
    unit: (line: UsageLineView) => line.unitId,
    quantity: (line: UsageLineView) => line.quantity.toString(),
    amount: (line: UsageLineView) => formatExact(line.exactUnits),
    period: (line: UsageLineView) => month(line.period),
  },
  UsagePosting: {
    period: (posting: UsagePostingView) => month(posting.period),
    exactTotal: (posting: UsagePostingView) => formatExact(posting.exactUnits),
    posted: (posting: UsagePostingView) => formatAmount(posting.posted),
    delta: (posting: UsagePostingView) => formatAmount(posting.delta),
  },
  RejectedUsage: {
    envelope: (rejected: RejectedUsageView) => (rejected.envelope === null ? null : JSON.stringify(rejected.envelope)),
  },
  UsageReconciliationWindow: {
    unit: (window: StoredWindow) => window.unitId,
    reportedQuantity: (window: StoredWindow) => window.reportedQuantity?.toString() ?? null,
    ingestedQuantity: (window: StoredWindow) => window.ingestedQuantity.toString(),
  },
  UsageRollup: {
    project: (rollup: UsageRollupView) => projectRef(rollup.projectId ?? null),
    unit: (rollup: UsageRollupView) => rollup.unitId ?? null,
    lines: (rollup: UsageRollupView) => rollup.lines.toString(),
    quantity: (rollup: UsageRollupView) => rollup.quantity.toString(),
    amount: (rollup: UsageRollupView) => formatExact(rollup.exactUnits),
  },
  UsageCompaction: {
    period: (compaction: UsageCompactionRecord) => month(compaction.period),
    eventsRemoved: (compaction: UsageCompactionRecord) => compaction.eventsRemoved.toString(),
  },
};
