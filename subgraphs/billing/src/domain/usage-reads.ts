import type pg from 'pg';
import { z } from 'zod';
import type { Access, AuthzResource } from '@aifactory/authz';
import { USAGE_PRODUCTS } from '@aifactory/contracts';
import { AppError, parseInput } from '@aifactory/errors';
import { emptyConnection, keysetConnection, pageSize, type Connection } from '@aifactory/subgraph-kit';
import type { HierarchyStore } from '../data/hierarchy.js';
import {
  ROLLUP_DIMENSIONS,
  rollupColumns,
  type RejectedUsageView,
  type RollupDimension,
  type RollupGranularity,
  type UsageEventView,
  type UsageLineView,
  type UsageReadsStore,
  type UsageRollupView,
} from '../data/usage-reads-store.js';
import type { StoredWindow } from '../data/usage-reconciliation-store.js';
import { BILLING_READ } from './balances.js';
import { connectionOf, pageRequest } from './pagination.js';

const uuid = z.uuid();
const product = z.enum(USAGE_PRODUCTS);
const unit = z.string().regex(/^[a-z][a-z0-9_]{0,62}$/, 'is a usage unit id such as gpu_hour');
const range = { projectId: uuid.nullish(), from: z.date().nullish(), to: z.date().nullish() };

const usageFilter = z.object({ ...range, product: product.nullish(), unit: unit.nullish(), status: z.enum(['accepted', 'rejected']).nullish() });
const ratedUsageFilter = z.object({ ...range, product: product.nullish(), unit: unit.nullish() });
const rejectedUsageFilter = z.object({
  ...range,
  product: product.nullish(),
  reason: z.string().regex(/^[a-z][a-z_]{0,62}$/, 'is a reason such as unknown_unit or conflict').nullish(),
});
const reconciliationArgs = z.object({ from: z.date().nullish(), to: z.date().nullish(), driftOnly: z.boolean().nullish() });
const rollupArgs = z.object({
  filter: z.object({ ...range, product: product.nullish() }).nullish(),
  groupBy: z.array(z.enum(Object.keys(ROLLUP_DIMENSIONS) as [RollupDimension, ...RollupDimension[]])).max(10).nullish(),
  granularity: z.enum(['hour', 'day', 'month']).nullish(),
});

export type UsageFilter = z.input<typeof usageFilter>;
export type RatedUsageFilter = z.input<typeof ratedUsageFilter>;
export type RejectedUsageFilter = z.input<typeof rejectedUsageFilter>;
export type ReconciliationArgs = z.input<typeof reconciliationArgs>;
export type RollupArgs = z.input<typeof rollupArgs>;
type PageArgs = { first?: number | null; after?: string | null };

/** Rated lines per read of an export: memory stays flat however long the range. */
export const EXPORT_PAGE_SIZE = 500;

/**
 * Keyset cursors of the usage lists whose position is more than one value:
 * base64url of a JSON array `[list, ...position]`, checked on the way back
 * so a cursor of another list (or a made-up one) is refused, not misread.
 */
const CURSORS = {
  usage: z.tuple([z.literal('usage'), z.iso.datetime(), uuid]),
  rejected: z.tuple([z.literal('rejected'), z.iso.datetime(), uuid, z.string().min(1).max(200)]),
  window: z.tuple([z.literal('window'), z.iso.datetime(), product, unit]),
  rollup: z.tuple([z.literal('rollup')]).rest(z.string().max(200)),
};

/** What a rollup cursor's value must look like to be cast back to its column's type. */
const POSITION = {
  timestamptz: z.iso.datetime(),
  uuid,
  int: z.string().regex(/^-?[0-9]{1,9}$/),
  text: z.string(),
} as const;

function encodeCursor(parts: readonly string[]): string {
  return Buffer.from(JSON.stringify(parts), 'utf8').toString('base64url');
}

function decodeCursor<S extends z.ZodType>(schema: S, text: string): z.infer<S> {
  let parts: unknown;
  try {
    parts = JSON.parse(Buffer.from(text, 'base64url').toString('utf8'));
  } catch {
    parts = undefined;
  }
  const parsed = schema.safeParse(parts);
  if (!parsed.success) throw new AppError('BAD_REQUEST_INVALID_INPUT', 'The cursor is not one this list returned', { details: { field: 'after' } });
  return parsed.data;
}

function checkRange(from: Date | null | undefined, to: Date | null | undefined, field: string): void {
  if (from && to && from >= to) throw new AppError('BAD_REQUEST_INVALID_INPUT', `${field}from must be before ${field}to`, { details: { field: `${field}from` } });
}

/**
 * An organization's usage as billing holds it (issue 17): raw usage events
 * (accepted and rejected) until compaction, rated usage lines with the
 * remainder-chain step each went into, refusals and id conflicts with their
 * reasons, reconciliation windows, and rollups for analytics (which read
 * usage_rollups only). Read with `platform:billing:read` on the
 * organization; a list narrowed to one of its projects is also open to whoever
 * reads that project's billing.
 */
export class UsageReads {
  constructor(
    private readonly store: UsageReadsStore,
    private readonly hierarchy: HierarchyStore,
    private readonly pool: pg.Pool,
  ) {}

  async usage(access: Access, organizationId: string, filter: UsageFilter | null | undefined, args: PageArgs): Promise<Connection<UsageEventView>> {
    const valid = parseInput(usageFilter, filter ?? {});
    checkRange(valid.from, valid.to, 'filter.');
    const first = pageSize(args.first);
    const after = args.after ? decodeCursor(CURSORS.usage, args.after) : null;
    if (!(await this.readable(access, organizationId, valid.projectId))) return emptyConnection();
    const rows = await this.store.events({
      organizationId,
      projectId: valid.projectId,
      from: valid.from,
      to: valid.to,
      product: valid.product,
      unitId: valid.unit,
      status: valid.status,
      after: after === null ? null : { occurredAt: new Date(after[1]), eventId: after[2] },
      limit: first + 1,
    });
    return keysetConnection(rows, first, (row) => encodeCursor(['usage', row.occurredAt!.toISOString(), row.eventId]));
  }

  async ratedUsage(access: Access, organizationId: string, filter: RatedUsageFilter | null | undefined, args: PageArgs): Promise<Connection<UsageLineView>> {
    const valid = parseInput(ratedUsageFilter, filter ?? {});
    checkRange(valid.from, valid.to, 'filter.');
    const page = pageRequest('seq', args);
    if (!(await this.readable(access, organizationId, valid.projectId))) return emptyConnection();
    const rows = await this.store.lines({
      organizationId,
      projectId: valid.projectId,
      from: valid.from,
      to: valid.to,
      product: valid.product,
      unitId: valid.unit,
      afterId: page.after === null ? null : BigInt(page.after),
      limit: page.first + 1,
    });
    return connectionOf('seq', rows, page, (row) => row.id.toString());
  }

  async rejectedUsage(
    access: Access,
    organizationId: string,
    filter: RejectedUsageFilter | null | undefined,
    args: PageArgs,
  ): Promise<Connection<RejectedUsageView>> {
    const valid = parseInput(rejectedUsageFilter, filter ?? {});
    checkRange(valid.from, valid.to, 'filter.');
    const first = pageSize(args.first);
    const after = args.after ? decodeCursor(CURSORS.rejected, args.after) : null;
    if (!(await this.readable(access, organizationId, valid.projectId))) return emptyConnection();
    const rows = await this.store.rejected({
      organizationId,
      projectId: valid.projectId?.toLowerCase(),
      from: valid.from,
      to: valid.to,
      product: valid.product,
      reason: valid.reason,
      after: after === null ? null : { receivedAt: new Date(after[1]), eventId: after[2], fingerprint: after[3] },
      limit: first + 1,
    });
    return keysetConnection(rows, first, (row) => encodeCursor(['rejected', row.receivedAt.toISOString(), row.eventId, row.fingerprint]));
  }

  /** The organization's reconciliation windows starting in [from, to), all or only those that drift. */
  async reconciliation(access: Access, organizationId: string, args: ReconciliationArgs & PageArgs): Promise<Connection<StoredWindow>> {
    const valid = parseInput(reconciliationArgs, { from: args.from, to: args.to, driftOnly: args.driftOnly });
    checkRange(valid.from, valid.to, '');
    const first = pageSize(args.first);
    const after = args.after ? decodeCursor(CURSORS.window, args.after) : null;
    if (!(await this.readable(access, organizationId, null))) return emptyConnection();
    const rows = await this.store.reconciliation({
      organizationId,
      from: valid.from,
      to: valid.to,
      driftOnly: valid.driftOnly === true,
      after: after === null ? null : { windowStart: new Date(after[1]), product: after[2], unitId: after[3] },
      limit: first + 1,
    });
    return keysetConnection(rows, first, (row) => encodeCursor(['window', row.windowStart.toISOString(), row.product, row.unitId]));
  }

  /** Rollup sums grouped by the bucket of `granularity` (the whole range when left out), the dimensions asked for, and currency. */
  async rollups(access: Access, organizationId: string, args: RollupArgs & PageArgs): Promise<Connection<UsageRollupView>> {
    const valid = parseInput(rollupArgs, { filter: args.filter, groupBy: args.groupBy, granularity: args.granularity });
    const filter = valid.filter ?? {};
    checkRange(filter.from, filter.to, 'filter.');
    const first = pageSize(args.first);
    const granularity: RollupGranularity | null = valid.granularity ?? null;
    const dimensions = [...new Set(valid.groupBy ?? [])];
    const after = args.after ? decodeCursor(CURSORS.rollup, args.after).slice(1) : null;
    if (!(await this.readable(access, organizationId, filter.projectId))) return emptyConnection();
    const rows = await this.store.rollups({
      organizationId,
      projectId: filter.projectId,
      from: filter.from,
      to: filter.to,
      product: filter.product,
      dimensions,
      granularity,
      after: this.rollupPosition(after, dimensions, granularity),
      limit: first + 1,
    });
    return keysetConnection(rows, first, (row) => encodeCursor(['rollup', ...row.position]));
  }

  /**
   * The organization's rated lines in [from, to) for an export, page after
   * page in the order they were rated; each page is read only when the
   * consumer asks for it. Access is checked before the first read.
   */
  async *exportLines(access: Access, organizationId: string, range: { from?: Date | null; to?: Date | null }): AsyncGenerator<UsageLineView[]> {
    const valid = parseInput(z.object({ organizationId: uuid, from: z.date().nullish(), to: z.date().nullish() }), { organizationId, ...range });
    checkRange(valid.from, valid.to, '');
    access.require(BILLING_READ, { organizationId });
    let afterId: bigint | null = null;
    for (;;) {
      const page = await this.store.lines({ organizationId, from: valid.from, to: valid.to, afterId, limit: EXPORT_PAGE_SIZE });
      if (page.length > 0) yield page;
      if (page.length < EXPORT_PAGE_SIZE) return;
      afterId = page.at(-1)!.id;
    }
  }

  /** A rollup cursor holds one value of each grouped column's type: one of another grouping is refused. */
  private rollupPosition(after: string[] | null, dimensions: readonly RollupDimension[], granularity: RollupGranularity | null): string[] | null {
    if (after === null) return null;
    const columns = rollupColumns(dimensions, granularity);
    const fits = after.length === columns.length && columns.every((column, index) => POSITION[column.type].safeParse(after[index]).success);
    if (!fits) throw new AppError('BAD_REQUEST_INVALID_INPUT', 'The cursor is not one this list returned', { details: { field: 'after' } });
    return after;
  }

  /**
   * Checks the read: on the project when the list is narrowed to one billing
   * knows in this organization, else on the organization. False for an id
   * that cannot be an organization's (nothing to read).
   */
  private async readable(access: Access, organizationId: string, projectId: string | null | undefined): Promise<boolean> {
    if (!uuid.safeParse(organizationId).success) return false;
    access.require(BILLING_READ, await this.resourceOf(organizationId, projectId ?? null));
    return true;
  }

  private async resourceOf(organizationId: string, projectId: string | null): Promise<AuthzResource> {
    if (projectId === null) return { organizationId };
    const project = await this.hierarchy.findProject(this.pool, projectId);
    if (!project || project.organizationId !== organizationId) return { organizationId };
    return { organizationId, departmentId: project.departmentId, projectId };
  }
}
