import { bigintOf } from '../domain/money.js';
import type { Db, Tx } from './transactions.js';

export type UsageEventKind = 'recorded' | 'opened' | 'closed';
export type UsageLineKind = 'point' | 'window' | 'close_adjustment';

/** An accepted usage event with what ingestion decided for it: the price and policy of its time. */
export interface RatableEvent {
  eventId: string;
  kind: UsageEventKind;
  batchId: string;
  product: string;
  organizationId: string;
  departmentId: string;
  projectId: string;
  /** The API key the usage was made with, if any (rollups keep usage per key, never per user). */
  apiKeyId: string | null;
  usageId: string;
  resourceType: string;
  resourceId: string;
  unitId: string;
  unitVersion: number;
  /** Point: base units consumed; opened/closed: base units per second. */
  quantity: bigint;
  /** Point: when it happened; opened: openedAt; closed: closedAt. */
  occurredAt: Date;
  openedAt: Date | null;
  currency: string;
  priceBookId: string;
  priceBookVersion: number;
  unitPrice: string;
  basePerUnit: number;
  windowSeconds: number | null;
  lowBalanceThreshold: bigint | null;
}

/** A usage interval's snapshot, taken when its opening was rated. */
export interface IntervalRecord {
  usageId: string;
  product: string;
  organizationId: string;
  departmentId: string;
  projectId: string;
  apiKeyId: string | null;
  resourceType: string;
  resourceId: string;
  unitId: string;
  unitVersion: number;
  quantityPerSecond: bigint;
  openedAt: Date;
  closedAt: Date | null;
  windowSeconds: number;
  currency: string;
  priceBookId: string;
  priceBookVersion: number;
  unitPrice: string;
  basePerUnit: number;
  openedEventId: string;
  closedEventId: string | null;
  /** Windows [0, nextWindow) are billed. */
  nextWindow: number;
}

export type NewInterval = Omit<IntervalRecord, 'closedAt' | 'closedEventId' | 'nextWindow'>;

/** A rated line before its remainder-chain step is known. */
export interface RatedLine {
  lineKey: string;
  kind: UsageLineKind;
  eventId: string;
  usageId: string;
  windowIndex: number | null;
  windowStart: Date | null;
  windowEnd: Date | null;
  organizationId: string;
  departmentId: string;
  projectId: string;
  apiKeyId: string | null;
  product: string;
  resourceType: string;
  resourceId: string;
  unitId: string;
  unitVersion: number;
  quantity: bigint;
  currency: string;
  priceBookId: string;
  priceBookVersion: number;
  unitPrice: string;
  /** The line's exact amount in exact units (1 / (10^12 * 3600) minor unit). */
  exactUnits: bigint;
  /** The month (first day, UTC, `YYYY-MM-01`) whose chain the line is posted in. */
  period: string;
  occurredAt: Date;
}

export interface NewUsageLine extends RatedLine {
  usagePostingId: string;
}

/** Where a remainder chain (organization, project, currency, month) stands: its newest step. */
export interface ChainHead {
  organizationId: string;
  projectId: string;
  currency: string;
  period: string;
  step: number;
  exactUnits: bigint;
  posted: bigint;
}

export interface NewChainStep extends ChainHead {
  id: string;
  delta: bigint;
  lines: number;
  ledgerPostingId: string | null;
}

/** A batch marked rated: every accepted event of it rated, but closings waiting for their opening. */
export interface MarkedBatch {
  batchId: string;
  receivedAt: Date;
  ratedAt: Date;
}

/** A point line: its event's row holds the rest. */
export interface NewPointLine {
  eventId: string;
  exactUnits: bigint;
  period: string;
  usagePostingId: string;
}

/** An event rated, and the chain step its lines went into (none for an opening that billed nothing yet). */
export interface NewRating {
  eventId: string;
  batchId: string;
  organizationId: string;
  usagePostingId: string | null;
}

/** What one rating transaction writes besides the ledger (`UsageRatingStore.writeRating`). */
export interface RatingWrite {
  steps: readonly NewChainStep[];
  points: readonly NewPointLine[];
  /** Window and close-adjustment lines, built whole. */
  lines: readonly NewUsageLine[];
  ratings: readonly NewRating[];
}

interface EventRow {
  event_id: string;
  kind: UsageEventKind;
  batch_id: string;
  product: string;
  organization_id: string;
  department_id: string;
  project_id: string;
  api_key_id: string | null;
  usage_id: string;
  resource_type: string | null;
  resource_id: string | null;
  unit_id: string;
  unit_version: number;
  quantity: string;
  occurred_at: Date;
  opened_at: Date | null;
  currency: string;
  price_book_id: string;
  price_book_version: number;
  unit_price: string;
  base_per_unit: number;
  window_seconds: number | null;
  low_balance_threshold: string | null;
}

interface IntervalRow {
  usage_id: string;
  product: string;
  organization_id: string;
  department_id: string;
  project_id: string;
  api_key_id: string | null;
  resource_type: string;
  resource_id: string;
  unit_id: string;
  unit_version: number;
  quantity_per_second: string;
  opened_at: Date;
  closed_at: Date | null;
  window_seconds: number;
  currency: string;
  price_book_id: string;
  price_book_version: number;
  unit_price: string;
  base_per_unit: number;
  opened_event_id: string;
  closed_event_id: string | null;
  next_window: number;
}

/** Resources are required by the usage contract; a row without one is priced as any resource (`*`), as ingestion did. */
const ANY_RESOURCE = '*';

const EVENT_COLUMNS = `e.event_id, e.kind, e.batch_id, e.product, e.organization_id, e.department_id, e.project_id, e.api_key_id,
  e.usage_id, e.resource_type, e.resource_id, e.unit_id, e.unit_version, e.quantity::text AS quantity, e.occurred_at, e.opened_at,
  e.currency, e.price_book_id, e.price_book_version, e.unit_price::text AS unit_price, e.base_per_unit, e.window_seconds,
  e.low_balance_threshold::text AS low_balance_threshold`;

const INTERVAL_COLUMNS = `usage_id, product, organization_id, department_id, project_id, api_key_id, resource_type, resource_id, unit_id,
  unit_version, quantity_per_second::text AS quantity_per_second, opened_at, closed_at, window_seconds, currency, price_book_id,
  price_book_version, unit_price::text AS unit_price, base_per_unit, opened_event_id, closed_event_id, next_window`;

/** What the rollups sum of a line, as a line insert returns it. */
const ROLLUP_SOURCE = `occurred_at, organization_id, department_id, project_id, api_key_id, product, resource_type, resource_id, unit_id, unit_version,
  price_book_version, currency, quantity, exact_units`;

/** The end of window `next_window`, as SQL: the interval owes a window once this is not after the instant. */
const NEXT_WINDOW_END = `opened_at + ((next_window + 1)::bigint * window_seconds) * interval '1 second'`;

const eventOf = (row: EventRow): RatableEvent => ({
  eventId: row.event_id,
  kind: row.kind,
  batchId: row.batch_id,
  product: row.product,
  organizationId: row.organization_id,
  departmentId: row.department_id,
  projectId: row.project_id,
  apiKeyId: row.api_key_id,
  usageId: row.usage_id,
  resourceType: row.resource_type ?? ANY_RESOURCE,
  resourceId: row.resource_id ?? ANY_RESOURCE,
  unitId: row.unit_id,
  unitVersion: row.unit_version,
  quantity: bigintOf(row.quantity),
  occurredAt: row.occurred_at,
  openedAt: row.opened_at,
  currency: row.currency.trim(),
  priceBookId: row.price_book_id,
  priceBookVersion: row.price_book_version,
  unitPrice: row.unit_price,
  basePerUnit: row.base_per_unit,
  windowSeconds: row.window_seconds,
  lowBalanceThreshold: row.low_balance_threshold === null ? null : bigintOf(row.low_balance_threshold),
});

const intervalOf = (row: IntervalRow): IntervalRecord => ({
  usageId: row.usage_id,
  product: row.product,
  organizationId: row.organization_id,
  departmentId: row.department_id,
  projectId: row.project_id,
  apiKeyId: row.api_key_id,
  resourceType: row.resource_type,
  resourceId: row.resource_id,
  unitId: row.unit_id,
  unitVersion: row.unit_version,
  quantityPerSecond: bigintOf(row.quantity_per_second),
  openedAt: row.opened_at,
  closedAt: row.closed_at,
  windowSeconds: row.window_seconds,
  currency: row.currency.trim(),
  priceBookId: row.price_book_id,
  priceBookVersion: row.price_book_version,
  unitPrice: row.unit_price,
  basePerUnit: row.base_per_unit,
  openedEventId: row.opened_event_id,
  closedEventId: row.closed_event_id,
  nextWindow: row.next_window,
});

const text = (values: readonly bigint[]) => values.map((value) => value.toString());

/**
 * Rating's SQL: claims on accepted usage, interval snapshots, rated lines,
 * remainder-chain steps and hourly rollups. Writes run inside the rating
 * transaction, which holds the funds row locks of the organizations it
 * rates; every statement takes arrays, so a batch costs a fixed number of
 * round trips however many organizations and events it holds.
 *
 * Only statements whose plan cannot go stale are named (prepared once per
 * connection): inserts from arrays and lookups of a few rows in small
 * tables. Reads and updates that join the growing usage tables (usage_ratings,
 * usage_lines, usage_intervals, usage_postings) are unnamed, so Postgres
 * plans them for the tables as they are: a named one falls back to a generic
 * plan chosen while the tables were small, and kept scanning them whole as
 * they grew (most of rating's database time in the usage bench).
 */
export class UsageRatingStore {
  /**
   * The accepted, unrated events of the batch and of up to `newer` batches
   * received after it and not marked rated yet (a backlog to rate along with
   * it), oldest first. The newer batches are taken with row locks held until
   * the transaction ends, skipping those another rater holds, so concurrent
   * raters take along different batches. Read before any funds lock is
   * taken, so a rater that waits for the locks has its events at hand; what
   * another rater rated in the meantime is left out under the locks
   * (`ratedAmong`).
   */
  async unratedUsage(db: Db, batchId: string, newer: number): Promise<RatableEvent[]> {
    const { rows } = await db.query<EventRow>(
      `WITH newer AS (
         SELECT b.id FROM usage_batches b
         WHERE b.rated_at IS NULL AND b.failed_at IS NULL AND b.id <> $1 AND b.received_at >= (SELECT received_at FROM usage_batches WHERE id = $1)
         ORDER BY b.received_at, b.id
         LIMIT $2
         FOR UPDATE SKIP LOCKED
       )
       SELECT ${EVENT_COLUMNS} FROM usage_events e
       WHERE e.batch_id IN (SELECT $1::uuid UNION ALL SELECT id FROM newer)
         AND e.status = 'accepted'
         AND NOT EXISTS (SELECT 1 FROM usage_ratings r WHERE r.event_id = e.event_id)
       ORDER BY e.occurred_at, e.event_id`,
      [batchId, newer],
    );
    return rows.map(eventOf);
  }

  /** The events among `eventIds` that are rated: read under the events' funds locks, it stays true until the transaction ends. */
  async ratedAmong(tx: Tx, eventIds: readonly string[]): Promise<Set<string>> {
    if (eventIds.length === 0) return new Set();
    const { rows } = await tx.query<{ event_id: string }>('SELECT event_id FROM usage_ratings WHERE event_id = ANY($1::uuid[])', [eventIds]);
    return new Set(rows.map((row) => row.event_id));
  }

  /**
   * The organizations' unrated closings of the batches, and of the intervals
   * `openedUsageIds` (a closing that came before its opening waits unrated
   * for it, in whatever batch), oldest first. Only closings whose interval
   * exists are returned: nothing is billed for an interval never opened.
   */
  async closingsToRate(tx: Tx, organizationIds: readonly string[], batchIds: readonly string[], openedUsageIds: readonly string[]): Promise<RatableEvent[]> {
    const { rows } = await tx.query<EventRow>(
      `SELECT ${EVENT_COLUMNS} FROM usage_events e
       WHERE e.organization_id = ANY($1::uuid[]) AND e.status = 'accepted' AND e.kind = 'closed'
         AND (e.batch_id = ANY($2::uuid[]) OR e.usage_id = ANY($3::uuid[]))
         AND EXISTS (SELECT 1 FROM usage_intervals i WHERE i.usage_id = e.usage_id AND i.organization_id = e.organization_id)
         AND NOT EXISTS (SELECT 1 FROM usage_ratings r WHERE r.event_id = e.event_id)
       ORDER BY e.occurred_at, e.event_id`,
      [organizationIds, batchIds, openedUsageIds],
    );
    return rows.map(eventOf);
  }

  /** Snapshots intervals at their opening; an interval already snapshotted (a repeated opening) keeps its first snapshot. */
  async insertIntervals(tx: Tx, intervals: readonly NewInterval[]): Promise<void> {
    if (intervals.length === 0) return;
    await tx.query({
      name: 'usage_rating_insert_intervals',
      text: `INSERT INTO usage_intervals (usage_id, product, organization_id, department_id, project_id, api_key_id, resource_type, resource_id,
               unit_id, unit_version, quantity_per_second, opened_at, window_seconds, currency, price_book_id, price_book_version, unit_price,
               base_per_unit, opened_event_id)
             SELECT * FROM unnest($1::uuid[], $2::text[], $3::uuid[], $4::uuid[], $5::uuid[], $6::text[], $7::text[], $8::text[],
               $9::text[], $10::int[], $11::int8[], $12::timestamptz[], $13::int[], $14::bpchar[], $15::uuid[], $16::int[], $17::numeric[],
               $18::int[], $19::uuid[])
             ORDER BY 1
             ON CONFLICT (usage_id) DO NOTHING`,
      values: [
        intervals.map((i) => i.usageId),
        intervals.map((i) => i.product),
        intervals.map((i) => i.organizationId),
        intervals.map((i) => i.departmentId),
        intervals.map((i) => i.projectId),
        intervals.map((i) => i.apiKeyId),
        intervals.map((i) => i.resourceType),
        intervals.map((i) => i.resourceId),
        intervals.map((i) => i.unitId),
        intervals.map((i) => i.unitVersion),
        text(intervals.map((i) => i.quantityPerSecond)),
        intervals.map((i) => i.openedAt),
        intervals.map((i) => i.windowSeconds),
        intervals.map((i) => i.currency),
        intervals.map((i) => i.priceBookId),
        intervals.map((i) => i.priceBookVersion),
        intervals.map((i) => i.unitPrice),
        intervals.map((i) => i.basePerUnit),
        intervals.map((i) => i.openedEventId),
      ],
    });
  }

  /** The organizations' intervals among `usageIds`. */
  async intervals(tx: Tx, organizationIds: readonly string[], usageIds: readonly string[]): Promise<IntervalRecord[]> {
    if (usageIds.length === 0) return [];
    const { rows } = await tx.query<IntervalRow>(
      `SELECT ${INTERVAL_COLUMNS} FROM usage_intervals WHERE usage_id = ANY($2::uuid[]) AND organization_id = ANY($1::uuid[]) ORDER BY usage_id`,
      [organizationIds, usageIds],
    );
    return rows.map(intervalOf);
  }

  /** Organizations with an open interval that owes a window at `now`, in id order. */
  async organizationsWithDueWindows(db: Db, now: Date): Promise<string[]> {
    const { rows } = await db.query<{ organization_id: string }>(
      `SELECT DISTINCT organization_id FROM usage_intervals WHERE closed_at IS NULL AND ${NEXT_WINDOW_END} <= $1 ORDER BY organization_id`,
      [now],
    );
    return rows.map((row) => row.organization_id);
  }

  /** The organization's open intervals that owe a window at `now`. */
  async dueIntervals(tx: Tx, organizationId: string, now: Date): Promise<IntervalRecord[]> {
    const { rows } = await tx.query<IntervalRow>(
      `SELECT ${INTERVAL_COLUMNS} FROM usage_intervals
       WHERE organization_id = $1 AND closed_at IS NULL AND ${NEXT_WINDOW_END} <= $2 ORDER BY usage_id`,
      [organizationId, now],
    );
    return rows.map(intervalOf);
  }

  /** Base units billed so far per window of each interval (window lines and adjustments together). */
  async billedWindows(tx: Tx, usageIds: readonly string[]): Promise<Map<string, Map<number, bigint>>> {
    const billed = new Map<string, Map<number, bigint>>();
    if (usageIds.length === 0) return billed;
    const { rows } = await tx.query<{ usage_id: string; window_index: number; quantity: string }>(
      `SELECT usage_id, window_index, sum(quantity)::text AS quantity FROM usage_lines
       WHERE usage_id = ANY($1::uuid[]) AND window_index IS NOT NULL
       GROUP BY usage_id, window_index`,
      [usageIds],
    );
    for (const row of rows) {
      const windows = billed.get(row.usage_id) ?? new Map<number, bigint>();
      windows.set(row.window_index, bigintOf(row.quantity));
      billed.set(row.usage_id, windows);
    }
    return billed;
  }

  /** Moves intervals' billed-window cursors forward (never back). */
  async advanceWindows(tx: Tx, advances: readonly { usageId: string; nextWindow: number }[]): Promise<void> {
    if (advances.length === 0) return;
    await tx.query(
      `UPDATE usage_intervals i SET next_window = a.next_window
       FROM unnest($1::uuid[], $2::int[]) AS a(usage_id, next_window)
       WHERE i.usage_id = a.usage_id AND i.next_window < a.next_window`,
      [advances.map((a) => a.usageId), advances.map((a) => a.nextWindow)],
    );
  }

  /** Closes intervals once: the first closing's time stands. Returns the usage ids it closed. */
  async closeIntervals(tx: Tx, closes: readonly { usageId: string; closedAt: Date; closedEventId: string; nextWindow: number }[]): Promise<Set<string>> {
    if (closes.length === 0) return new Set();
    const { rows } = await tx.query<{ usage_id: string }>(
      `UPDATE usage_intervals i
       SET closed_at = c.closed_at, closed_event_id = c.closed_event_id, next_window = GREATEST(i.next_window, c.next_window)
       FROM unnest($1::uuid[], $2::timestamptz[], $3::uuid[], $4::int[]) AS c(usage_id, closed_at, closed_event_id, next_window)
       WHERE i.usage_id = c.usage_id AND i.closed_at IS NULL
       RETURNING i.usage_id`,
      [closes.map((c) => c.usageId), closes.map((c) => c.closedAt), closes.map((c) => c.closedEventId), closes.map((c) => c.nextWindow)],
    );
    return new Set(rows.map((row) => row.usage_id));
  }

  /** The line keys among `keys` that are written already. */
  async existingLineKeys(tx: Tx, keys: readonly string[]): Promise<Set<string>> {
    if (keys.length === 0) return new Set();
    const { rows } = await tx.query<{ line_key: string }>('SELECT line_key FROM usage_lines WHERE line_key = ANY($1::text[])', [keys]);
    return new Set(rows.map((row) => row.line_key));
  }

  /** The newest step of each chain named; chains without a step are absent. */
  async chainHeads(tx: Tx, chains: readonly { organizationId: string; projectId: string; currency: string; period: string }[]): Promise<ChainHead[]> {
    if (chains.length === 0) return [];
    const { rows } = await tx.query<{ organization_id: string; project_id: string; currency: string; period: string; step: number; exact_units: string; posted: string }>(
      `SELECT c.organization_id, c.project_id, c.currency, c.period::text AS period, h.step, h.exact_units::text AS exact_units, h.posted::text AS posted
       FROM unnest($1::uuid[], $2::uuid[], $3::bpchar[], $4::date[]) AS c(organization_id, project_id, currency, period)
       CROSS JOIN LATERAL (
         SELECT p.step, p.exact_units, p.posted FROM usage_postings p
         WHERE p.organization_id = c.organization_id AND p.project_id = c.project_id AND p.currency = c.currency AND p.period = c.period
         ORDER BY p.step DESC LIMIT 1
       ) h`,
      [chains.map((c) => c.organizationId), chains.map((c) => c.projectId), chains.map((c) => c.currency), chains.map((c) => c.period)],
    );
    return rows.map((row) => ({
      organizationId: row.organization_id,
      projectId: row.project_id,
      currency: row.currency.trim(),
      period: row.period,
      step: row.step,
      exactUnits: BigInt(row.exact_units),
      posted: bigintOf(row.posted),
    }));
  }

  /**
   * Writes what a rating transaction decided, in one statement: the new
   * remainder-chain steps; the lines, a point line copied from its event's
   * row (only what rating decided travels: the exact amount, the month and
   * the chain step), any other line as built; the lines summed into the
   * hourly rollups (one sum per row, in key order); and the events rated,
   * each with the chain step its lines went into. One statement, not one
   * each, because rating holds its organizations' funds locks meanwhile and
   * is bound by round trips.
   *
   * An event rated already is not rated again, and the call throws, so the
   * transaction rolls back: the funds locks keep another rater away, and
   * this keeps an event from being rated twice should anything get past
   * them. The lines' chain steps are checked at the end of the statement,
   * once the steps are written.
   */
  async writeRating(tx: Tx, rating: RatingWrite): Promise<void> {
    const { steps, points, lines } = rating;
    const ratings = [...rating.ratings].sort((a, b) => (a.eventId < b.eventId ? -1 : a.eventId > b.eventId ? 1 : 0));
    if (steps.length === 0 && points.length === 0 && lines.length === 0 && ratings.length === 0) return;
    // Unnamed: a cached generic plan could read the events by a full scan (see the class comment); OFFSET 0 keeps the
    // planner from hashing the whole usage_events table to join a batch's worth of rows: each is read by its key.
    // The leading comment names what it writes where pg_stat_activity shows the start of a statement only.
    const { rows } = await tx.query<{ points: number; ratings: number }>(
      `/* usage rating: usage_postings, usage_lines, usage_rollups, usage_ratings */
       WITH steps AS (
         INSERT INTO usage_postings (id, organization_id, project_id, currency, period, step, exact_units, posted, delta, lines, ledger_posting_id)
         SELECT * FROM unnest($1::text[], $2::uuid[], $3::uuid[], $4::bpchar[], $5::date[], $6::int[], $7::numeric[], $8::int8[], $9::int8[],
           $10::int[], $11::text[])
       ),
       points AS (
         INSERT INTO usage_lines (line_key, kind, event_id, usage_id, organization_id, department_id, project_id, api_key_id, product, resource_type,
           resource_id, unit_id, unit_version, quantity, currency, price_book_id, price_book_version, unit_price, exact_units, period, occurred_at,
           usage_posting_id)
         SELECT 'event:' || e.event_id, 'point', e.event_id, e.usage_id, e.organization_id, e.department_id, e.project_id, e.api_key_id, e.product,
           COALESCE(e.resource_type, '${ANY_RESOURCE}'), COALESCE(e.resource_id, '${ANY_RESOURCE}'), e.unit_id, e.unit_version, e.quantity, e.currency,
           e.price_book_id, e.price_book_version, e.unit_price, p.exact_units, p.period, e.occurred_at, p.usage_posting_id
         FROM unnest($12::uuid[], $13::numeric[], $14::date[], $15::text[]) WITH ORDINALITY AS p(event_id, exact_units, period, usage_posting_id, ordinal)
         CROSS JOIN LATERAL (SELECT * FROM usage_events WHERE event_id = p.event_id OFFSET 0) e
         ORDER BY p.ordinal
         RETURNING ${ROLLUP_SOURCE}
       ),
       others AS (
         INSERT INTO usage_lines (line_key, kind, event_id, usage_id, window_index, window_start, window_end, organization_id, department_id,
           project_id, api_key_id, product, resource_type, resource_id, unit_id, unit_version, quantity, currency, price_book_id,
           price_book_version, unit_price, exact_units, period, occurred_at, usage_posting_id)
         SELECT * FROM unnest($16::text[], $17::text[], $18::uuid[], $19::uuid[], $20::int[], $21::timestamptz[], $22::timestamptz[], $23::uuid[],
           $24::uuid[], $25::uuid[], $26::text[], $27::text[], $28::text[], $29::text[], $30::text[], $31::int[], $32::int8[], $33::bpchar[],
           $34::uuid[], $35::int[], $36::numeric[], $37::numeric[], $38::date[], $39::timestamptz[], $40::text[])
         RETURNING ${ROLLUP_SOURCE}
       ),
       rollups AS (
         INSERT INTO usage_rollups AS r (hour, organization_id, department_id, project_id, api_key_id, product, resource_type, resource_id,
           unit_id, unit_version, price_book_version, currency, lines, quantity, exact_units)
         SELECT date_trunc('hour', l.occurred_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC', l.organization_id, l.department_id, l.project_id,
           COALESCE(l.api_key_id, ''), l.product, l.resource_type, l.resource_id, l.unit_id, l.unit_version, l.price_book_version, l.currency,
           count(*), sum(l.quantity), sum(l.exact_units)
         FROM (SELECT * FROM points UNION ALL SELECT * FROM others) l
         GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12
         ORDER BY 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12
         ON CONFLICT (hour, organization_id, department_id, project_id, api_key_id, product, resource_type, resource_id, unit_id, unit_version,
           price_book_version, currency)
         DO UPDATE SET lines = r.lines + EXCLUDED.lines, quantity = r.quantity + EXCLUDED.quantity, exact_units = r.exact_units + EXCLUDED.exact_units
       ),
       ratings AS (
         INSERT INTO usage_ratings (event_id, batch_id, organization_id, usage_posting_id)
         SELECT * FROM unnest($41::uuid[], $42::uuid[], $43::uuid[], $44::text[])
         ON CONFLICT (event_id) DO NOTHING
         RETURNING 1
       )
       SELECT (SELECT count(*) FROM points)::int AS points, (SELECT count(*) FROM ratings)::int AS ratings`,
      [
        steps.map((s) => s.id),
        steps.map((s) => s.organizationId),
        steps.map((s) => s.projectId),
        steps.map((s) => s.currency),
        steps.map((s) => s.period),
        steps.map((s) => s.step),
        text(steps.map((s) => s.exactUnits)),
        text(steps.map((s) => s.posted)),
        text(steps.map((s) => s.delta)),
        steps.map((s) => s.lines),
        steps.map((s) => s.ledgerPostingId),
        points.map((l) => l.eventId),
        text(points.map((l) => l.exactUnits)),
        points.map((l) => l.period),
        points.map((l) => l.usagePostingId),
        lines.map((l) => l.lineKey),
        lines.map((l) => l.kind),
        lines.map((l) => l.eventId),
        lines.map((l) => l.usageId),
        lines.map((l) => l.windowIndex),
        lines.map((l) => l.windowStart),
        lines.map((l) => l.windowEnd),
        lines.map((l) => l.organizationId),
        lines.map((l) => l.departmentId),
        lines.map((l) => l.projectId),
        lines.map((l) => l.apiKeyId),
        lines.map((l) => l.product),
        lines.map((l) => l.resourceType),
        lines.map((l) => l.resourceId),
        lines.map((l) => l.unitId),
        lines.map((l) => l.unitVersion),
        text(lines.map((l) => l.quantity)),
        lines.map((l) => l.currency),
        lines.map((l) => l.priceBookId),
        lines.map((l) => l.priceBookVersion),
        lines.map((l) => l.unitPrice),
        text(lines.map((l) => l.exactUnits)),
        lines.map((l) => l.period),
        lines.map((l) => l.occurredAt),
        lines.map((l) => l.usagePostingId),
        ratings.map((r) => r.eventId),
        ratings.map((r) => r.batchId),
        ratings.map((r) => r.organizationId),
        ratings.map((r) => r.usagePostingId),
      ],
    );
    const written = rows[0]!;
    if (written.points !== points.length) throw new Error(`${points.length - written.points} point lines name no usage event`);
    if (written.ratings !== ratings.length) {
      throw new Error(`${ratings.length - written.ratings} of ${ratings.length} usage events were rated by another transaction under the funds locks`);
    }
  }

  /** Marks batches rated once; returns those it marked, with when each was received and rated (one marked before, or unknown, is absent). */
  async markBatchesRated(db: Db, batchIds: readonly string[]): Promise<MarkedBatch[]> {
    const { rows } = await db.query<{ id: string; received_at: Date; rated_at: Date }>(
      'UPDATE usage_batches SET rated_at = CURRENT_TIMESTAMP WHERE id = ANY($1::uuid[]) AND rated_at IS NULL RETURNING id, received_at, rated_at',
      [batchIds],
    );
    return rows.map((row) => ({ batchId: row.id, receivedAt: row.received_at, ratedAt: row.rated_at }));
  }

  /** Batches never marked rated that were received at or before `receivedBefore`, oldest first. */
  /** Its rating job used up its attempts: the sweeper and other jobs leave it to billing:reconcile. */
  async markBatchFailed(db: Db, batchId: string): Promise<void> {
    await db.query('UPDATE usage_batches SET failed_at = now() WHERE id = $1 AND rated_at IS NULL AND failed_at IS NULL', [batchId]);
  }

  async unratedBatches(db: Db, receivedBefore: Date, limit: number): Promise<string[]> {
    const { rows } = await db.query<{ id: string }>({
      name: 'usage_rating_unrated_batches',
      text: 'SELECT id FROM usage_batches WHERE rated_at IS NULL AND failed_at IS NULL AND received_at <= $1 ORDER BY received_at, id LIMIT $2',
      values: [receivedBefore, limit],
    });
    return rows.map((row) => row.id);
  }

  /** Accepted events of batches not rated yet (the partial index keeps this cheap). */
  async unratedEvents(db: Db): Promise<number> {
    const { rows } = await db.query<{ events: number }>({
      name: 'usage_rating_unrated_events',
      text: 'SELECT COALESCE(sum(accepted), 0)::int AS events FROM usage_batches WHERE rated_at IS NULL',
    });
    return rows[0]?.events ?? 0;
  }

  /** Batches holding accepted, unrated events that occurred in [from, to). */
  async batchesWithUnratedEvents(db: Db, from: Date, to: Date): Promise<string[]> {
    const { rows } = await db.query<{ batch_id: string }>(
      `SELECT DISTINCT e.batch_id FROM usage_events e
       WHERE e.status = 'accepted' AND e.occurred_at >= $1 AND e.occurred_at < $2
         AND NOT EXISTS (SELECT 1 FROM usage_ratings r WHERE r.event_id = e.event_id)
       ORDER BY e.batch_id`,
      [from, to],
    );
    return rows.map((row) => row.batch_id);
  }
}
