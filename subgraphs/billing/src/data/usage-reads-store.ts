import type pg from 'pg';
import { bigintOf } from '../domain/money.js';
import type { UsageEventRow } from './usage-ingest-store.js';
import type { RatedLine } from './usage-rating-store.js';
import { RECONCILIATION_COLUMNS, storedWindowOf, type ReconciliationRow, type StoredWindow } from './usage-reconciliation-store.js';

/**
 * An ingested usage event, accepted or rejected, with when it was rated
 * (null while it is not): the usage_events row as ingestion wrote it (one
 * shape for the writer and the reads), less what only ingestion and rating
 * use (the fingerprint, the kept envelope, the key and the rating snapshot).
 */
export interface UsageEventView
  extends Omit<UsageEventRow, 'fingerprint' | 'apiKeyId' | 'basePerUnit' | 'windowSeconds' | 'lowBalanceThreshold' | 'envelope' | 'publishedAt'> {
  publishedAt: Date | null;
  receivedAt: Date;
  ratedAt: Date | null;
}

/** A remainder-chain step a usage line went into. */
export interface UsagePostingView {
  id: string;
  step: number;
  period: string;
  /** The chain's exact running total after this step (exact units), and the whole minor units posted for it so far. */
  exactUnits: bigint;
  posted: bigint;
  /** What this step posted: floor(exact) - posted before; negative gives back. */
  delta: bigint;
  ledgerPostingId: string | null;
  createdAt: Date;
}

/**
 * A rated usage line with its step: the line as rating wrote it (one shape
 * for the writer and the reads, so a column added to usage_lines is added
 * once), with its id and when it was rated.
 */
export interface UsageLineView extends RatedLine {
  id: bigint;
  ratedAt: Date;
  posting: UsagePostingView;
}

/** A usage event billing refused (`rejected`, with its reason) or an id that came again with other content (`conflict`). */
export interface RejectedUsageView {
  source: 'rejected' | 'conflict';
  eventId: string;
  fingerprint: string;
  reason: string;
  detail: string | null;
  product: string | null;
  eventType: string | null;
  receivedAt: Date;
  envelope: unknown;
}

/** Dimensions a rollup read groups by, each one or more usage_rollups columns. */
export const ROLLUP_DIMENSIONS = {
  project: [{ column: 'project_id', type: 'uuid' }],
  department: [{ column: 'department_id', type: 'uuid' }],
  api_key: [{ column: 'api_key_id', type: 'text' }],
  product: [{ column: 'product', type: 'text' }],
  resource_type: [{ column: 'resource_type', type: 'text' }],
  resource: [
    { column: 'resource_type', type: 'text' },
    { column: 'resource_id', type: 'text' },
  ],
  unit: [{ column: 'unit_id', type: 'text' }],
  unit_version: [
    { column: 'unit_id', type: 'text' },
    { column: 'unit_version', type: 'int' },
  ],
  price_book_version: [{ column: 'price_book_version', type: 'int' }],
} as const;
export type RollupDimension = keyof typeof ROLLUP_DIMENSIONS;
export type RollupGranularity = 'hour' | 'day' | 'month';

/** A group of usage rollups: the grouped columns (absent when not grouped by), its currency and sums. */
export interface UsageRollupView {
  /** The bucket's start, with a granularity; null for the whole range. */
  bucket: Date | null;
  projectId?: string;
  departmentId?: string;
  apiKeyId?: string;
  product?: string;
  resourceType?: string;
  resourceId?: string;
  unitId?: string;
  unitVersion?: number;
  priceBookVersion?: number;
  currency: string;
  lines: bigint;
  quantity: bigint;
  exactUnits: bigint;
  /** The group's position: its grouped values as text, in column order (the keyset cursor). */
  position: string[];
}

interface Scope {
  organizationId: string;
  projectId?: string | null;
  from?: Date | null;
  to?: Date | null;
  limit: number;
}

export interface UsageEventQuery extends Scope {
  product?: string | null;
  unitId?: string | null;
  status?: 'accepted' | 'rejected' | null;
  after?: { occurredAt: Date; eventId: string } | null;
}

export interface UsageLineQuery extends Scope {
  product?: string | null;
  unitId?: string | null;
  afterId?: bigint | null;
}

export interface RejectedUsageQuery extends Scope {
  product?: string | null;
  reason?: string | null;
  after?: { receivedAt: Date; eventId: string; fingerprint: string } | null;
}

export interface ReconciliationQuery extends Scope {
  driftOnly: boolean;
  after?: { windowStart: Date; product: string; unitId: string } | null;
}

export interface RollupQuery extends Scope {
  product?: string | null;
  dimensions: readonly RollupDimension[];
  granularity: RollupGranularity | null;
  after?: readonly string[] | null;
}

/** Conditions numbered as they are added; a filter left out costs nothing. */
class Conditions {
  readonly values: unknown[] = [];
  private readonly parts: string[] = [];

  add(sql: (placeholder: string) => string, value: unknown): void {
    if (value === null || value === undefined) return;
    this.parts.push(sql(this.placeholder(value)));
  }

  placeholder(value: unknown): string {
    this.values.push(value);
    return `$${this.values.length}`;
  }

  /** A condition whose values were placed already. */
  require(sql: string): void {
    this.parts.push(sql);
  }

  get where(): string {
    return this.parts.join(' AND ');
  }
}

interface EventRow {
  event_id: string;
  event_type: string;
  product: string;
  kind: UsageEventView['kind'];
  status: UsageEventView['status'];
  rejection_reason: string | null;
  rejection_detail: string | null;
  organization_id: string | null;
  department_id: string | null;
  project_id: string | null;
  actor_type: string | null;
  actor_id: string | null;
  usage_id: string | null;
  resource_type: string | null;
  resource_id: string | null;
  unit_id: string | null;
  unit_version: number | null;
  quantity: string | null;
  occurred_at: Date | null;
  opened_at: Date | null;
  currency: string | null;
  price_book_id: string | null;
  price_book_version: number | null;
  unit_price: string | null;
  correlation_id: string | null;
  published_at: Date | null;
  received_at: Date;
  rated_at: Date | null;
}

const eventOf = (row: EventRow): UsageEventView => ({
  eventId: row.event_id,
  eventType: row.event_type,
  product: row.product,
  kind: row.kind,
  status: row.status,
  rejectionReason: row.rejection_reason,
  rejectionDetail: row.rejection_detail,
  organizationId: row.organization_id,
  departmentId: row.department_id,
  projectId: row.project_id,
  actorType: row.actor_type,
  actorId: row.actor_id,
  usageId: row.usage_id,
  resourceType: row.resource_type,
  resourceId: row.resource_id,
  unitId: row.unit_id,
  unitVersion: row.unit_version,
  quantity: row.quantity === null ? null : bigintOf(row.quantity),
  occurredAt: row.occurred_at,
  openedAt: row.opened_at,
  currency: row.currency?.trim() ?? null,
  priceBookId: row.price_book_id,
  priceBookVersion: row.price_book_version,
  unitPrice: row.unit_price,
  correlationId: row.correlation_id,
  publishedAt: row.published_at,
  receivedAt: row.received_at,
  ratedAt: row.rated_at,
});

interface LineRow {
  id: string;
  line_key: string;
  kind: UsageLineView['kind'];
  event_id: string;
  usage_id: string;
  window_index: number | null;
  window_start: Date | null;
  window_end: Date | null;
  organization_id: string;
  department_id: string;
  project_id: string;
  api_key_id: string | null;
  product: string;
  resource_type: string;
  resource_id: string;
  unit_id: string;
  unit_version: number;
  quantity: string;
  currency: string;
  price_book_id: string;
  price_book_version: number;
  unit_price: string;
  exact_units: string;
  period: string;
  occurred_at: Date;
  rated_at: Date;
  usage_posting_id: string;
  posting_step: number;
  posting_period: string;
  posting_exact_units: string;
  posting_posted: string;
  posting_delta: string;
  posting_ledger_posting_id: string | null;
  posting_created_at: Date;
}

const lineOf = (row: LineRow): UsageLineView => ({
  id: bigintOf(row.id),
  lineKey: row.line_key,
  kind: row.kind,
  eventId: row.event_id,
  usageId: row.usage_id,
  windowIndex: row.window_index,
  windowStart: row.window_start,
  windowEnd: row.window_end,
  organizationId: row.organization_id,
  departmentId: row.department_id,
  projectId: row.project_id,
  apiKeyId: row.api_key_id,
  product: row.product,
  resourceType: row.resource_type,
  resourceId: row.resource_id,
  unitId: row.unit_id,
  unitVersion: row.unit_version,
  quantity: bigintOf(row.quantity),
  currency: row.currency.trim(),
  priceBookId: row.price_book_id,
  priceBookVersion: row.price_book_version,
  unitPrice: row.unit_price,
  exactUnits: bigintOf(row.exact_units),
  period: row.period,
  occurredAt: row.occurred_at,
  ratedAt: row.rated_at,
  posting: {
    id: row.usage_posting_id,
    step: row.posting_step,
    period: row.posting_period,
    exactUnits: bigintOf(row.posting_exact_units),
    posted: bigintOf(row.posting_posted),
    delta: bigintOf(row.posting_delta),
    ledgerPostingId: row.posting_ledger_posting_id,
    createdAt: row.posting_created_at,
  },
});

const LINE_SELECT = `SELECT l.id::text, l.line_key, l.kind, l.event_id, l.usage_id, l.window_index, l.window_start, l.window_end, l.organization_id,
    l.department_id, l.project_id, l.api_key_id, l.product, l.resource_type, l.resource_id, l.unit_id, l.unit_version, l.quantity::text,
    l.currency, l.price_book_id, l.price_book_version, l.unit_price::text, l.exact_units::text, to_char(l.period, 'YYYY-MM-DD') AS period,
    l.occurred_at, l.rated_at, l.usage_posting_id,
    p.step AS posting_step, to_char(p.period, 'YYYY-MM-DD') AS posting_period, p.exact_units::text AS posting_exact_units,
    p.posted::text AS posting_posted, p.delta::text AS posting_delta, p.ledger_posting_id AS posting_ledger_posting_id,
    p.created_at AS posting_created_at
  FROM usage_lines l JOIN usage_postings p ON p.id = l.usage_posting_id`;

interface RejectedRow {
  source: RejectedUsageView['source'];
  event_id: string;
  fingerprint: string;
  reason: string;
  detail: string | null;
  product: string | null;
  event_type: string | null;
  received_at: Date;
  envelope: unknown;
}

const GRANULARITY_SQL: Record<RollupGranularity, string> = {
  hour: `hour`,
  day: `date_trunc('day', hour, 'UTC')`,
  month: `date_trunc('month', hour, 'UTC')`,
};

const ROLLUP_FIELDS: Record<string, keyof UsageRollupView> = {
  project_id: 'projectId',
  department_id: 'departmentId',
  api_key_id: 'apiKeyId',
  product: 'product',
  resource_type: 'resourceType',
  resource_id: 'resourceId',
  unit_id: 'unitId',
  unit_version: 'unitVersion',
  price_book_version: 'priceBookVersion',
};

/**
 * Reads of an organization's usage: raw events, rated lines with their
 * remainder-chain steps, refusals and conflicts, reconciliation windows and
 * rollups, each a keyset list in a stable order. Read-only.
 */
export class UsageReadsStore {
  constructor(private readonly pool: pg.Pool) {}

  /**
   * Events in (occurred_at, event_id) order, on the (organization_id,
   * occurred_at, event_id) index. A refused event that never said when it
   * happened has no place in that order: it is listed with the refusals only.
   */
  async events(query: UsageEventQuery): Promise<UsageEventView[]> {
    const conditions = new Conditions();
    conditions.add((p) => `e.organization_id = ${p}::uuid`, query.organizationId);
    conditions.add((p) => `e.project_id = ${p}::uuid`, query.projectId);
    conditions.add((p) => `e.occurred_at >= ${p}::timestamptz`, query.from);
    conditions.add((p) => `e.occurred_at < ${p}::timestamptz`, query.to);
    conditions.add((p) => `e.product = ${p}`, query.product);
    conditions.add((p) => `e.unit_id = ${p}`, query.unitId);
    conditions.add((p) => `e.status = ${p}`, query.status);
    if (query.after) {
      const at = conditions.placeholder(query.after.occurredAt);
      const id = conditions.placeholder(query.after.eventId);
      conditions.require(`(e.occurred_at, e.event_id) > (${at}::timestamptz, ${id}::uuid)`);
    }
    const limit = conditions.placeholder(query.limit);
    const { rows } = await this.pool.query<EventRow>(
      `SELECT e.event_id, e.event_type, e.product, e.kind, e.status, e.rejection_reason, e.rejection_detail, e.organization_id, e.department_id,
              e.project_id, e.actor_type, e.actor_id, e.usage_id, e.resource_type, e.resource_id, e.unit_id, e.unit_version, e.quantity::text,
              e.occurred_at, e.opened_at, e.currency, e.price_book_id, e.price_book_version, e.unit_price::text, e.correlation_id,
              e.published_at, e.received_at, r.rated_at
       FROM usage_events e LEFT JOIN usage_ratings r ON r.event_id = e.event_id
       WHERE ${conditions.where} AND e.occurred_at IS NOT NULL
       ORDER BY e.occurred_at, e.event_id LIMIT ${limit}`,
      conditions.values,
    );
    return rows.map(eventOf);
  }

  /** Lines in id order (the order they were rated), on the (organization_id, id) index; the time range is on occurred_at. */
  async lines(query: UsageLineQuery): Promise<UsageLineView[]> {
    const conditions = new Conditions();
    conditions.add((p) => `l.organization_id = ${p}::uuid`, query.organizationId);
    conditions.add((p) => `l.project_id = ${p}::uuid`, query.projectId);
    conditions.add((p) => `l.occurred_at >= ${p}::timestamptz`, query.from);
    conditions.add((p) => `l.occurred_at < ${p}::timestamptz`, query.to);
    conditions.add((p) => `l.product = ${p}`, query.product);
    conditions.add((p) => `l.unit_id = ${p}`, query.unitId);
    conditions.add((p) => `l.id > ${p}::int8`, query.afterId?.toString());
    const limit = conditions.placeholder(query.limit);
    const { rows } = await this.pool.query<LineRow>(`${LINE_SELECT} WHERE ${conditions.where} ORDER BY l.id LIMIT ${limit}`, conditions.values);
    return rows.map(lineOf);
  }

  /**
   * Rejected events and conflicts together, in (received_at, event_id,
   * fingerprint) order: a conflict shares its event id with the event it
   * contradicts, never its fingerprint.
   */
  async rejected(query: RejectedUsageQuery): Promise<RejectedUsageView[]> {
    const conditions = new Conditions();
    conditions.add((p) => `u.organization_id = ${p}::uuid`, query.organizationId);
    conditions.add((p) => `u.received_at >= ${p}::timestamptz`, query.from);
    conditions.add((p) => `u.received_at < ${p}::timestamptz`, query.to);
    conditions.add((p) => `u.product = ${p}`, query.product);
    conditions.add((p) => `u.reason = ${p}`, query.reason);
    conditions.add((p) => `u.project_id = ${p}`, query.projectId);
    if (query.after) {
      const at = conditions.placeholder(query.after.receivedAt);
      const id = conditions.placeholder(query.after.eventId);
      const fingerprint = conditions.placeholder(query.after.fingerprint);
      conditions.require(`(u.received_at, u.event_id, u.fingerprint) > (${at}::timestamptz, ${id}::uuid, ${fingerprint})`);
    }
    const limit = conditions.placeholder(query.limit);
    const { rows } = await this.pool.query<RejectedRow>(
      `SELECT u.source, u.event_id, u.fingerprint, u.reason, u.detail, u.product, u.event_type, u.received_at, u.envelope FROM (
         SELECT 'rejected' AS source, event_id, fingerprint, rejection_reason AS reason, rejection_detail AS detail, product, event_type,
                received_at, envelope, organization_id, project_id::text
         FROM usage_events WHERE status = 'rejected'
         UNION ALL
         SELECT 'conflict', event_id, fingerprint, 'conflict', NULL, split_part(envelope->>'type', '.', 1), envelope->>'type',
                received_at, envelope, organization_id, envelope->>'projectId'
         FROM usage_conflicts
       ) u
       WHERE ${conditions.where}
       ORDER BY u.received_at, u.event_id, u.fingerprint LIMIT ${limit}`,
      conditions.values,
    );
    return rows.map((row) => ({
      source: row.source,
      eventId: row.event_id,
      fingerprint: row.fingerprint,
      reason: row.reason,
      detail: row.detail,
      product: row.product,
      eventType: row.event_type,
      receivedAt: row.received_at,
      envelope: row.envelope,
    }));
  }

  /** Windows in (window_start, product, unit_id) order; the range is on window_start. */
  async reconciliation(query: ReconciliationQuery): Promise<StoredWindow[]> {
    const conditions = new Conditions();
    conditions.add((p) => `organization_id = ${p}::uuid`, query.organizationId);
    conditions.add((p) => `window_start >= ${p}::timestamptz`, query.from);
    conditions.add((p) => `window_start < ${p}::timestamptz`, query.to);
    if (query.driftOnly) conditions.require('drift');
    if (query.after) {
      const at = conditions.placeholder(query.after.windowStart);
      const product = conditions.placeholder(query.after.product);
      const unit = conditions.placeholder(query.after.unitId);
      conditions.require(`(window_start, product, unit_id) > (${at}::timestamptz, ${product}, ${unit})`);
    }
    const limit = conditions.placeholder(query.limit);
    const { rows } = await this.pool.query<ReconciliationRow>(
      `SELECT ${RECONCILIATION_COLUMNS} FROM usage_reconciliations WHERE ${conditions.where}
       ORDER BY window_start, product, unit_id LIMIT ${limit}`,
      conditions.values,
    );
    return rows.map(storedWindowOf);
  }

  /**
   * Sums of usage_rollups (never raw usage) per group: the bucket of the
   * granularity, the dimensions asked for, and always the currency (amounts
   * of two currencies never add up). Groups come in the order of their
   * values, so a page continues after the last group's values.
   */
  async rollups(query: RollupQuery): Promise<UsageRollupView[]> {
    const columns = rollupColumns(query.dimensions, query.granularity);
    const conditions = new Conditions();
    conditions.add((p) => `organization_id = ${p}::uuid`, query.organizationId);
    conditions.add((p) => `project_id = ${p}::uuid`, query.projectId);
    conditions.add((p) => `hour >= ${p}::timestamptz`, query.from);
    conditions.add((p) => `hour < ${p}::timestamptz`, query.to);
    conditions.add((p) => `product = ${p}`, query.product);
    const groupColumns = columns.map((c) => `${c.expression} AS ${c.column}`).join(', ');
    const names = columns.map((c) => c.column).join(', ');
    let after = '';
    if (query.after) {
      const values = columns.map((c, index) => `${conditions.placeholder(query.after![index])}::${c.type}`);
      after = `WHERE (${names}) > (${values.join(', ')})`;
    }
    const limit = conditions.placeholder(query.limit);
    const { rows } = await this.pool.query<Record<string, unknown>>(
      `SELECT * FROM (
         SELECT ${groupColumns}, sum(lines)::text AS lines, sum(quantity)::text AS quantity, sum(exact_units)::text AS exact_units
         FROM usage_rollups WHERE ${conditions.where}
         GROUP BY ${names}
       ) g ${after}
       ORDER BY ${names} LIMIT ${limit}`,
      conditions.values,
    );
    return rows.map((row) => {
      const view: UsageRollupView = {
        bucket: (row.bucket as Date | undefined) ?? null,
        currency: String(row.currency).trim(),
        lines: bigintOf(row.lines as string),
        quantity: bigintOf(row.quantity as string),
        exactUnits: bigintOf(row.exact_units as string),
        position: columns.map((c) => positionOf(row[c.column])),
      };
      for (const { column } of columns) {
        const field = ROLLUP_FIELDS[column];
        if (field !== undefined) Object.assign(view, { [field]: row[column] });
      }
      return view;
    });
  }
}

/** A column a rollup read groups by, with its SQL type (a cursor's value is cast back to it) and the expression it is read as. */
export interface RollupColumn {
  column: string;
  type: 'timestamptz' | 'uuid' | 'text' | 'int';
  expression: string;
}

/** The columns a rollup read groups and orders by: the bucket (with a granularity), the dimensions' columns once each, the currency. */
export function rollupColumns(dimensions: readonly RollupDimension[], granularity: RollupGranularity | null): RollupColumn[] {
  const columns: RollupColumn[] = [];
  if (granularity !== null) columns.push({ column: 'bucket', type: 'timestamptz', expression: GRANULARITY_SQL[granularity] });
  for (const [dimension, dimensionColumns] of Object.entries(ROLLUP_DIMENSIONS) as Array<[RollupDimension, readonly Omit<RollupColumn, 'expression'>[]]>) {
    if (!dimensions.includes(dimension)) continue;
    for (const { column, type } of dimensionColumns) {
      if (!columns.some((c) => c.column === column)) columns.push({ column, type, expression: column });
    }
  }
  columns.push({ column: 'currency', type: 'text', expression: 'currency' });
  return columns;
}

/** A grouped value as the cursor carries it: text that casts back to the column's type. */
function positionOf(value: unknown): string {
  return value instanceof Date ? value.toISOString() : String(value);
}
