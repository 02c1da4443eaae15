/**
 * Usage rows written straight into billing's tables, as ingestion and rating
 * would leave them, so reconciliation, compaction and the usage reads are
 * tested on exactly the state they must judge (a missing rating, a missing
 * step, a summary that counts more) without running the pipeline.
 */
import { randomUUID } from 'node:crypto';
import type { Queryable } from '@aifactory/events';
import { EXACT_UNITS_PER_MINOR } from '../src/domain/rating-amounts.js';

export interface UsageScopeIds {
  organizationId: string;
  departmentId: string;
  projectId: string;
  currency?: string;
}

export async function insertBatch(db: Queryable, receivedAt: Date = new Date()): Promise<string> {
  const id = randomUUID();
  await db.query('INSERT INTO usage_batches (id, accepted, received_at) VALUES ($1, 0, $2)', [id, receivedAt]);
  return id;
}

export interface UsageEventSpec {
  occurredAt: Date;
  product?: string;
  unit?: string;
  kind?: 'recorded' | 'opened' | 'closed';
  quantity?: bigint;
  /** Rejected events carry their reason. */
  rejectionReason?: string;
  batchId?: string;
  eventId?: string;
  usageId?: string;
  actor?: { type: string; id: string };
  receivedAt?: Date;
  unitPrice?: string;
  basePerUnit?: number;
  priceBookId?: string;
}

/** An accepted usage event (or a rejected one, with `rejectionReason`); returns its id. */
export async function insertUsageEvent(db: Queryable, scope: UsageScopeIds, spec: UsageEventSpec): Promise<string> {
  const eventId = spec.eventId ?? randomUUID();
  const product = spec.product ?? 'tokenfactory';
  const kind = spec.kind ?? 'recorded';
  const rejected = spec.rejectionReason !== undefined;
  const batchId = spec.batchId ?? (await insertBatch(db, spec.receivedAt));
  await db.query(
    `INSERT INTO usage_events (event_id, fingerprint, event_type, product, kind, status, rejection_reason, envelope, organization_id, department_id,
       project_id, actor_type, actor_id, usage_id, resource_type, resource_id, unit_id, unit_version, quantity, occurred_at, opened_at, currency,
       price_book_id, price_book_version, unit_price, base_per_unit, window_seconds, low_balance_threshold, correlation_id, batch_id, published_at,
       received_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, 'model', 'llama', $15, 1, $16, $17, $18, $19, $20, 1, $21, $22, $23, 1000,
       $24, $25, $17, $26)`,
    [
      eventId,
      `fingerprint-${eventId}`,
      `${product}.usage.${kind}`,
      product,
      kind,
      rejected ? 'rejected' : 'accepted',
      spec.rejectionReason ?? null,
      rejected ? JSON.stringify({ id: eventId, type: `${product}.usage.${kind}`, projectId: scope.projectId }) : null,
      scope.organizationId,
      scope.departmentId,
      scope.projectId,
      spec.actor?.type ?? 'user',
      spec.actor?.id ?? 'user-1',
      spec.usageId ?? randomUUID(),
      spec.unit ?? 'token_output',
      (spec.quantity ?? 1n).toString(),
      spec.occurredAt,
      kind === 'recorded' ? null : spec.occurredAt,
      scope.currency ?? 'USD',
      spec.priceBookId ?? randomUUID(),
      spec.unitPrice ?? '0.5',
      spec.basePerUnit ?? 1,
      kind === 'opened' ? 3600 : null,
      `corr-${eventId}`,
      batchId,
      spec.receivedAt ?? new Date(),
    ],
  );
  return eventId;
}

/** A remainder-chain step that posted nothing (so no ledger posting is needed); returns its id. */
export async function insertChainStep(db: Queryable, scope: UsageScopeIds, options: { period?: string; exactUnits?: bigint } = {}): Promise<string> {
  const id = `usage:${scope.organizationId}:${scope.projectId}:${options.period ?? '2025-01-01'}:${randomUUID()}`;
  const exactUnits = options.exactUnits ?? 0n;
  await db.query(
    `INSERT INTO usage_postings (id, organization_id, project_id, currency, period, step, exact_units, posted, delta, lines)
     VALUES ($1, $2, $3, $4, $5, (SELECT COALESCE(max(step), 0) + 1 FROM usage_postings WHERE organization_id = $2 AND project_id = $3 AND period = $5),
       $6, $7, 0, 1)`,
    [id, scope.organizationId, scope.projectId, scope.currency ?? 'USD', options.period ?? '2025-01-01', exactUnits.toString(), (exactUnits / EXACT_UNITS_PER_MINOR).toString()],
  );
  return id;
}

/** Marks the event rated, into `postingId` (null: nothing to post, as for an opening). */
export async function insertRating(db: Queryable, eventId: string, postingId: string | null): Promise<void> {
  await db.query(
    `INSERT INTO usage_ratings (event_id, batch_id, organization_id, usage_posting_id)
     SELECT event_id, batch_id, organization_id, $2 FROM usage_events WHERE event_id = $1`,
    [eventId, postingId],
  );
}

/** An accepted event, rated into a step of its own: a clean event. */
export async function insertRatedEvent(db: Queryable, scope: UsageScopeIds, spec: UsageEventSpec): Promise<string> {
  const eventId = await insertUsageEvent(db, scope, spec);
  await insertRating(db, eventId, await insertChainStep(db, scope));
  return eventId;
}

export interface SummarySpec {
  product?: string;
  organizationId: string;
  unit?: string;
  windowStart: Date;
  windowEnd: Date;
  eventCount: number;
  quantity: bigint;
  receivedAt?: Date;
}

export async function insertSummary(db: Queryable, spec: SummarySpec): Promise<void> {
  await db.query(
    `INSERT INTO usage_window_summaries (product, organization_id, unit_id, window_start, window_end, event_count, quantity, recount, event_id, received_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, 1, $8, $9)`,
    [
      spec.product ?? 'tokenfactory',
      spec.organizationId,
      spec.unit ?? 'token_output',
      spec.windowStart,
      spec.windowEnd,
      spec.eventCount,
      spec.quantity.toString(),
      randomUUID(),
      spec.receivedAt ?? new Date(),
    ],
  );
}

/** An id that came again with other content. */
export async function insertConflict(db: Queryable, scope: UsageScopeIds, eventId: string, receivedAt: Date): Promise<void> {
  await db.query(
    `INSERT INTO usage_conflicts (event_id, fingerprint, organization_id, envelope, received_at) VALUES ($1, $2, $3, $4, $5)`,
    [eventId, `other-${randomUUID()}`, scope.organizationId, JSON.stringify({ id: eventId, type: 'tokenfactory.usage.recorded', projectId: scope.projectId }), receivedAt],
  );
}

export const HOUR = 3_600_000;

/** `at` plus `hours` hours (fractions allowed). */
export function hoursAfter(at: Date, hours: number): Date {
  return new Date(at.getTime() + hours * HOUR);
}

export interface LineSpec {
  postingId: string;
  occurredAt: Date;
  product?: string;
  unit?: string;
  kind?: 'point' | 'window' | 'close_adjustment';
  quantity?: bigint;
  exactUnits?: bigint;
  resourceId?: string;
  apiKeyId?: string | null;
  /** Writes this many lines at once (ids and keys numbered), for long exports. */
  count?: number;
}

/** Rated usage lines (one unless `count`) in an existing remainder-chain step. */
export async function insertLines(db: Queryable, scope: UsageScopeIds, spec: LineSpec): Promise<void> {
  await db.query(
    `INSERT INTO usage_lines (line_key, kind, event_id, usage_id, organization_id, department_id, project_id, api_key_id, product, resource_type,
       resource_id, unit_id, unit_version, quantity, currency, price_book_id, price_book_version, unit_price, exact_units, period, occurred_at,
       usage_posting_id)
     SELECT $1 || ':' || n, $2, gen_random_uuid(), gen_random_uuid(), $3, $4, $5, $6, $7, 'model', $8, $9, 1, $10, $11, gen_random_uuid(), 1, 0.5, $12,
            date_trunc('month', $13::timestamptz AT TIME ZONE 'UTC')::date, $13, $14
     FROM generate_series(1, $15::int) AS n`,
    [
      `event:${randomUUID()}`,
      spec.kind ?? 'point',
      scope.organizationId,
      scope.departmentId,
      scope.projectId,
      spec.apiKeyId ?? null,
      spec.product ?? 'tokenfactory',
      spec.resourceId ?? 'llama',
      spec.unit ?? 'token_output',
      (spec.quantity ?? 1n).toString(),
      scope.currency ?? 'USD',
      (spec.exactUnits ?? EXACT_UNITS_PER_MINOR / 2n).toString(),
      spec.occurredAt,
      spec.postingId,
      spec.count ?? 1,
    ],
  );
}

export interface RollupSpec {
  hour: Date;
  product?: string;
  unit?: string;
  apiKeyId?: string;
  currency?: string;
  lines: bigint;
  quantity: bigint;
  exactUnits: bigint;
}

export async function insertRollup(db: Queryable, scope: UsageScopeIds, spec: RollupSpec): Promise<void> {
  await db.query(
    `INSERT INTO usage_rollups (hour, organization_id, department_id, project_id, api_key_id, product, resource_type, resource_id, unit_id, unit_version,
       price_book_version, currency, lines, quantity, exact_units)
     VALUES ($1, $2, $3, $4, $5, $6, 'model', 'llama', $7, 1, 1, $8, $9, $10, $11)`,
    [
      spec.hour,
      scope.organizationId,
      scope.departmentId,
      scope.projectId,
      spec.apiKeyId ?? '',
      spec.product ?? 'tokenfactory',
      spec.unit ?? 'token_output',
      spec.currency ?? scope.currency ?? 'USD',
      spec.lines.toString(),
      spec.quantity.toString(),
      spec.exactUnits.toString(),
    ],
  );
}
