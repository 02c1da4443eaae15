import { recordDeadLetters, type NewDeadLetter } from '@aifactory/event-consumers';
import type { Tx } from './transactions.js';

/** One version of a usage unit, as ingestion checks usage against it. */
export interface IngestUnit {
  basePerUnit: number;
  ratingCategory: 'interval' | 'point';
  lifecycle: 'active' | 'deprecated' | 'retired';
}

export interface IngestProject {
  organizationId: string;
  departmentId: string;
}

/** One price of a book: for one version of its unit (price_book_prices holds one per unit and resource). */
export interface IngestPrice {
  /** Exact decimal text. */
  unitPrice: string;
  unitVersion: number;
}

/** A price book of one currency, with the prices it sets for the units a batch uses. */
export interface IngestPriceBook {
  id: string;
  version: number;
  currency: string;
  effectiveFromMs: number;
  /** By `unit|resourceType|resourceId`. */
  prices: Map<string, IngestPrice>;
}

/** What a batch of usage is checked against, read once per batch. */
export interface IngestReferenceData {
  units: Map<string, IngestUnit>;
  /**
   * The currency each organization is billed in, by id: its funds row's,
   * which every ledger posting of it must match (organizations.billing_currency
   * may change later; the funds row never does). An organization without one
   * is not known to billing yet.
   */
  currencies: Map<string, string>;
  projects: Map<string, IngestProject>;
}

/** A usage_events row; null where the event did not say (or, rejected, did not parse). */
export interface UsageEventRow {
  eventId: string;
  fingerprint: string;
  eventType: string;
  product: string;
  kind: 'recorded' | 'opened' | 'closed';
  status: 'accepted' | 'rejected';
  rejectionReason: string | null;
  rejectionDetail: string | null;
  organizationId: string | null;
  departmentId: string | null;
  projectId: string | null;
  actorType: string | null;
  actorId: string | null;
  apiKeyId: string | null;
  usageId: string | null;
  resourceType: string | null;
  resourceId: string | null;
  unitId: string | null;
  unitVersion: number | null;
  /** Base units (point events) or base units per second (intervals). */
  quantity: bigint | null;
  occurredAt: Date | null;
  openedAt: Date | null;
  currency: string | null;
  priceBookId: string | null;
  priceBookVersion: number | null;
  /** Exact decimal minor units per unit, as stored. */
  unitPrice: string | null;
  basePerUnit: number | null;
  windowSeconds: number | null;
  lowBalanceThreshold: bigint | null;
  correlationId: string | null;
  /** The envelope as received: kept for rejected events only. */
  envelope: unknown;
  publishedAt: Date;
}

export interface UsageConflictRow {
  eventId: string;
  fingerprint: string;
  organizationId: string | null;
  envelope: unknown;
}

export interface WindowSummaryRow {
  product: string;
  organizationId: string;
  unitId: string;
  windowStart: Date;
  windowEnd: Date;
  eventCount: number;
  quantity: string;
  recount: number;
  eventId: string;
}

/** The span of instants a batch prices in one currency. */
export interface PricingSpan {
  currency: string;
  first: Date;
  last: Date;
}

const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/;
const nullableText = (value: bigint | null) => (value === null ? null : value.toString());

/** A row as json_to_recordset reads it: column names, and int64 values as text (JSON numbers are doubles). */
function recordOf(row: UsageEventRow): Record<string, unknown> {
  return {
    event_id: row.eventId,
    fingerprint: row.fingerprint,
    event_type: row.eventType,
    product: row.product,
    kind: row.kind,
    status: row.status,
    rejection_reason: row.rejectionReason,
    rejection_detail: row.rejectionDetail,
    organization_id: row.organizationId,
    department_id: row.departmentId,
    project_id: row.projectId,
    actor_type: row.actorType,
    actor_id: row.actorId,
    api_key_id: row.apiKeyId,
    usage_id: row.usageId,
    resource_type: row.resourceType,
    resource_id: row.resourceId,
    unit_id: row.unitId,
    unit_version: row.unitVersion,
    quantity: nullableText(row.quantity),
    occurred_at: row.occurredAt,
    opened_at: row.openedAt,
    currency: row.currency,
    price_book_id: row.priceBookId,
    price_book_version: row.priceBookVersion,
    unit_price: row.unitPrice,
    base_per_unit: row.basePerUnit,
    window_seconds: row.windowSeconds,
    low_balance_threshold: nullableText(row.lowBalanceThreshold),
    correlation_id: row.correlationId,
    envelope: row.envelope,
    published_at: row.publishedAt,
  };
}

/**
 * Usage ingestion's SQL. Every statement takes a whole batch as arrays (one
 * round trip for a thousand events) and is named, so each connection plans
 * it once. Writes run in the caller's transaction.
 */
export class UsageIngestStore {
  /** `schema` holds the consumer tables (`dead_letters`), as @aifactory/event-consumers lays them out. */
  constructor(private readonly schema: string) {
    if (!SCHEMA_NAME.test(schema)) throw new RangeError(`invalid schema name ${schema}`);
  }

  /** Units (all versions: the registry is small), and the organizations (their funds) and projects the batch names. */
  async referenceData(tx: Tx, organizationIds: readonly string[], projectIds: readonly string[]): Promise<IngestReferenceData> {
    const units = await tx.query<{ id: string; version: number; base_per_unit: number; rating_category: IngestUnit['ratingCategory']; lifecycle: IngestUnit['lifecycle'] }>({
      name: 'usage_ingest_units',
      text: 'SELECT id, version, base_per_unit, rating_category, lifecycle FROM usage_units',
    });
    const funds = await tx.query<{ organization_id: string; currency: string }>({
      name: 'usage_ingest_funds',
      text: 'SELECT organization_id, currency FROM organization_funds WHERE organization_id = ANY($1::uuid[])',
      values: [organizationIds],
    });
    const projects = await tx.query<{ id: string; organization_id: string; department_id: string }>({
      name: 'usage_ingest_projects',
      text: 'SELECT id, organization_id, department_id FROM projects WHERE id = ANY($1::uuid[])',
      values: [projectIds],
    });
    return {
      units: new Map(
        units.rows.map((row) => [unitKey(row.id, row.version), { basePerUnit: row.base_per_unit, ratingCategory: row.rating_category, lifecycle: row.lifecycle }]),
      ),
      currencies: new Map(funds.rows.map((row) => [row.organization_id, row.currency.trim()])),
      projects: new Map(projects.rows.map((row) => [row.id, { organizationId: row.organization_id, departmentId: row.department_id }])),
    };
  }

  /**
   * The price books that can be in force somewhere in each span (the one in
   * force at its first instant and every later one starting by its last),
   * with their prices for `unitIds`. A book that prices none of them is still
   * returned: while in force it leaves those units unpriced rather than
   * letting an older book price them.
   */
  async priceBooks(tx: Tx, spans: readonly PricingSpan[], unitIds: readonly string[]): Promise<IngestPriceBook[]> {
    if (spans.length === 0) return [];
    const { rows } = await tx.query<{
      id: string;
      version: number;
      currency: string;
      effective_from: Date;
      unit_id: string | null;
      unit_version: number | null;
      resource_type: string | null;
      resource_id: string | null;
      unit_price: string | null;
    }>({
      name: 'usage_ingest_price_books',
      text: `WITH span AS (
         SELECT * FROM unnest($1::bpchar[], $2::timestamptz[], $3::timestamptz[]) AS s(currency, first_at, last_at)
       ), book AS (
         SELECT b.id, b.version, b.currency, b.effective_from
           FROM span s JOIN price_books b ON b.currency = s.currency
          WHERE b.effective_from <= s.last_at
            AND b.effective_from >= COALESCE(
              (SELECT max(o.effective_from) FROM price_books o WHERE o.currency = s.currency AND o.effective_from <= s.first_at),
              '-infinity'::timestamptz)
       )
       SELECT k.id, k.version, k.currency, k.effective_from, p.unit_id, p.unit_version, p.resource_type, p.resource_id, p.unit_price::text AS unit_price
         FROM book k LEFT JOIN price_book_prices p ON p.price_book_id = k.id AND p.unit_id = ANY($4::text[])`,
      values: [spans.map((s) => s.currency), spans.map((s) => s.first), spans.map((s) => s.last), unitIds],
    });
    const books = new Map<string, IngestPriceBook>();
    for (const row of rows) {
      let book = books.get(row.id);
      if (!book) {
        book = { id: row.id, version: row.version, currency: row.currency.trim(), effectiveFromMs: row.effective_from.getTime(), prices: new Map() };
        books.set(row.id, book);
      }
      if (row.unit_id !== null) {
        book.prices.set(priceKey(row.unit_id, row.resource_type!, row.resource_id!), { unitPrice: row.unit_price!, unitVersion: row.unit_version! });
      }
    }
    return [...books.values()];
  }

  /**
   * Inserts the events whose ids are new and returns those ids; an id already
   * stored is left as it is. The rows travel as one JSON array: serialized
   * natively in one call, where thirty-odd parameter arrays would be
   * escaped element by element in JavaScript, the costliest part of a batch.
   */
  async insertEvents(tx: Tx, batchId: string, rows: readonly UsageEventRow[]): Promise<Set<string>> {
    if (rows.length === 0) return new Set();
    const result = await tx.query<{ event_id: string }>({
      name: 'usage_ingest_insert_events',
      text: `INSERT INTO usage_events (event_id, fingerprint, event_type, product, kind, status, rejection_reason, rejection_detail,
         organization_id, department_id, project_id, actor_type, actor_id, api_key_id, usage_id, resource_type, resource_id, unit_id, unit_version,
         quantity, occurred_at, opened_at, currency, price_book_id, price_book_version, unit_price, base_per_unit, window_seconds,
         low_balance_threshold, correlation_id, envelope, published_at, batch_id)
       SELECT r.*, $2::uuid FROM json_to_recordset($1::json) AS r(event_id uuid, fingerprint text, event_type text, product text, kind text,
         status text, rejection_reason text, rejection_detail text, organization_id uuid, department_id uuid, project_id uuid, actor_type text,
         actor_id text, api_key_id text, usage_id uuid, resource_type text, resource_id text, unit_id text, unit_version int, quantity bigint,
         occurred_at timestamptz, opened_at timestamptz, currency bpchar, price_book_id uuid, price_book_version int, unit_price numeric,
         base_per_unit int, window_seconds int, low_balance_threshold bigint, correlation_id text, envelope jsonb, published_at timestamptz)
       ON CONFLICT (event_id) DO NOTHING
       RETURNING event_id`,
      values: [JSON.stringify(rows.map(recordOf)), batchId],
    });
    return new Set(result.rows.map((row) => row.event_id));
  }

  /** The stored fingerprint of each id already ingested. */
  async fingerprints(tx: Tx, eventIds: readonly string[]): Promise<Map<string, string>> {
    if (eventIds.length === 0) return new Map();
    const { rows } = await tx.query<{ event_id: string; fingerprint: string }>({
      name: 'usage_ingest_fingerprints',
      text: 'SELECT event_id, fingerprint FROM usage_events WHERE event_id = ANY($1::uuid[])',
      values: [eventIds],
    });
    return new Map(rows.map((row) => [row.event_id, row.fingerprint]));
  }

  /**
   * Of these intervals, those whose every stored opening was rejected: their
   * closings can never close anything (an opening sent again under a new id
   * and accepted opens it after all).
   */
  async rejectedOpenings(tx: Tx, usageIds: readonly string[]): Promise<Set<string>> {
    if (usageIds.length === 0) return new Set();
    const { rows } = await tx.query<{ usage_id: string }>({
      name: 'usage_ingest_rejected_openings',
      text: `SELECT usage_id FROM usage_events WHERE usage_id = ANY($1::uuid[]) AND kind = 'opened'
       GROUP BY usage_id HAVING bool_and(status = 'rejected')`,
      values: [usageIds],
    });
    return new Set(rows.map((row) => row.usage_id));
  }

  async insertConflicts(tx: Tx, conflicts: readonly UsageConflictRow[]): Promise<void> {
    if (conflicts.length === 0) return;
    await tx.query({
      name: 'usage_ingest_insert_conflicts',
      text: `INSERT INTO usage_conflicts (event_id, fingerprint, organization_id, envelope)
       SELECT * FROM unnest($1::uuid[], $2::text[], $3::uuid[], $4::jsonb[])
       ON CONFLICT DO NOTHING`,
      values: [
        conflicts.map((c) => c.eventId),
        conflicts.map((c) => c.fingerprint),
        conflicts.map((c) => c.organizationId),
        conflicts.map((c) => JSON.stringify(c.envelope)),
      ],
    });
  }

  async insertBatch(tx: Tx, batchId: string, accepted: number): Promise<void> {
    await tx.query({ name: 'usage_ingest_insert_batch', text: 'INSERT INTO usage_batches (id, accepted) VALUES ($1, $2)', values: [batchId, accepted] });
  }

  /** Stores each window's count; a recount replaces a lower one, never the other way round. Keys must be unique within the call. */
  async upsertWindowSummaries(tx: Tx, summaries: readonly WindowSummaryRow[]): Promise<void> {
    if (summaries.length === 0) return;
    await tx.query({
      name: 'usage_ingest_upsert_summaries',
      text: `INSERT INTO usage_window_summaries AS w (product, organization_id, unit_id, window_start, window_end, event_count, quantity, recount, event_id)
       SELECT * FROM unnest($1::text[], $2::uuid[], $3::text[], $4::timestamptz[], $5::timestamptz[], $6::int[], $7::numeric[], $8::int[], $9::uuid[])
       ON CONFLICT (product, organization_id, unit_id, window_start) DO UPDATE
         SET window_end = EXCLUDED.window_end, event_count = EXCLUDED.event_count, quantity = EXCLUDED.quantity,
             recount = EXCLUDED.recount, event_id = EXCLUDED.event_id, received_at = CURRENT_TIMESTAMP
         WHERE w.recount < EXCLUDED.recount`,
      values: [
        summaries.map((s) => s.product),
        summaries.map((s) => s.organizationId),
        summaries.map((s) => s.unitId),
        summaries.map((s) => s.windowStart),
        summaries.map((s) => s.windowEnd),
        summaries.map((s) => s.eventCount),
        summaries.map((s) => s.quantity),
        summaries.map((s) => s.recount),
        summaries.map((s) => s.eventId),
      ],
    });
  }

  /**
   * Messages that carry no usable event id (not JSON, not an envelope, not a
   * usage contract) go where every consumer's undecodable events go: its
   * `dead_letters` rows, written by @aifactory/event-consumers' own insert so
   * the table and shape stay the ones it lists, counts and replays. A letter
   * for the same id replaces the earlier one.
   */
  async recordDeadLetters(tx: Tx, consumer: string, batch: readonly NewDeadLetter[]): Promise<void> {
    if (batch.length === 0) return;
    // One row per id in the statement (an upsert may not touch a row twice), the last letter winning, in key order.
    const letters = [...new Map(batch.map((letter) => [letter.eventId, letter])).values()].sort((a, b) =>
      a.eventId < b.eventId ? -1 : a.eventId > b.eventId ? 1 : 0,
    );
    await recordDeadLetters(tx, this.schema, consumer, letters);
  }
}

export function unitKey(id: string, version: number): string {
  return `${id}@${version}`;
}

export function priceKey(unitId: string, resourceType: string, resourceId: string): string {
  return `${unitId}|${resourceType}|${resourceId}`;
}
