import type pg from 'pg';
import { bigintOf } from '../domain/money.js';
import type { Db } from './transactions.js';

/** A reconciliation window: a product's window summary, or an hour of usage no summary covers. */
export interface WindowKey {
  product: string;
  organizationId: string;
  unitId: string;
  windowStart: Date;
}

/** What a window holds: the product's own count (null without a summary) beside billing's. */
export interface WindowCounts extends WindowKey {
  windowEnd: Date;
  reportedCount: number | null;
  reportedQuantity: bigint | null;
  /** Accepted usage events of the window, and their quantity in base units. */
  ingestedCount: number;
  ingestedQuantity: bigint;
  /** Of those, the ones rated, and the rated ones whose remainder-chain step exists. */
  ratedCount: number;
  postedCount: number;
}

/** A window's counts as stored, with the verdict. */
export interface StoredWindow extends WindowCounts {
  drift: boolean;
  driftReasons: string[];
  checkedAt: Date;
}

/** A stored window, and whether it drifted before this count replaced the last one (null: never counted). */
export interface SavedWindow extends StoredWindow {
  driftedBefore: boolean | null;
}

/** Keys counted per statement: bounds the statement's arrays, not the round. */
const COUNT_CHUNK = 500;

/**
 * Which window an accepted event `e` belongs to: the product's summary that
 * covers its time, else the UTC hour it happened in. Summaries of one
 * product, organization and unit do not overlap, so the latest one starting
 * at or before the event is the only one that can cover it (one index probe).
 */
const PRIOR_SUMMARY = `LEFT JOIN LATERAL (
    SELECT s.window_start, s.window_end FROM usage_window_summaries s
    WHERE s.product = e.product AND s.organization_id = e.organization_id AND s.unit_id = e.unit_id AND s.window_start <= e.occurred_at
    ORDER BY s.window_start DESC LIMIT 1
  ) prior ON true`;
const EVENT_WINDOW_START = `CASE WHEN prior.window_end > e.occurred_at THEN prior.window_start ELSE date_trunc('hour', e.occurred_at, 'UTC') END`;
const EVENT_WINDOW_END = `CASE WHEN prior.window_end > e.occurred_at THEN prior.window_end ELSE date_trunc('hour', e.occurred_at, 'UTC') + interval '1 hour' END`;

/** Windows overlapping a month whose raw usage was compacted: their events are gone on purpose, so they are never counted again. */
const NOT_COMPACTED = `NOT EXISTS (
    SELECT 1 FROM usage_compactions c
    WHERE c.compacted_at IS NOT NULL
      AND c.period::timestamp AT TIME ZONE 'UTC' < w.window_end AND (c.period + interval '1 month') AT TIME ZONE 'UTC' > w.window_start
  )`;

interface KeyRow {
  product: string;
  organization_id: string;
  unit_id: string;
  window_start: Date;
}

interface CountsRow extends KeyRow {
  window_end: Date;
  reported_count: number | null;
  reported_quantity: string | null;
  ingested_count: number;
  ingested_quantity: string;
  rated_count: number;
  posted_count: number;
}

interface StoredRow extends CountsRow {
  drift: boolean;
  drift_reasons: string[];
  checked_at: Date;
}

const keyOf = (row: KeyRow): WindowKey => ({
  product: row.product,
  organizationId: row.organization_id,
  unitId: row.unit_id,
  windowStart: row.window_start,
});

const countsOf = (row: CountsRow): WindowCounts => ({
  ...keyOf(row),
  windowEnd: row.window_end,
  reportedCount: row.reported_count,
  reportedQuantity: row.reported_quantity === null ? null : bigintOf(row.reported_quantity),
  ingestedCount: row.ingested_count,
  ingestedQuantity: bigintOf(row.ingested_quantity),
  ratedCount: row.rated_count,
  postedCount: row.posted_count,
});

export const storedWindowOf = (row: StoredRow): StoredWindow => ({
  ...countsOf(row),
  drift: row.drift,
  driftReasons: row.drift_reasons,
  checkedAt: row.checked_at,
});

export const RECONCILIATION_COLUMNS = `product, organization_id, unit_id, window_start, window_end, reported_count, reported_quantity::text,
  ingested_count, ingested_quantity::text, rated_count, posted_count, drift, drift_reasons, checked_at`;
export type ReconciliationRow = StoredRow;

/**
 * Reconciliation's storage: which windows to count, their counts from the
 * raw usage, ratings and remainder-chain steps, and the last verdict per
 * window (usage_reconciliations). Reads what ingestion and rating wrote;
 * writes only usage_reconciliations.
 */
export class UsageReconciliationStore {
  constructor(private readonly pool: pg.Pool) {}

  /** Every window overlapping [from, to) that ended by `edge`: summaries, and the windows of the span's accepted usage. */
  async windowsOverlapping(from: Date, to: Date, edge: Date): Promise<WindowKey[]> {
    const { rows } = await this.pool.query<KeyRow>(
      `WITH candidates AS (
         SELECT product, organization_id, unit_id, window_start, window_end FROM usage_window_summaries
         WHERE window_start < $2 AND window_end > $1
         UNION
         SELECT e.product, e.organization_id, e.unit_id, ${EVENT_WINDOW_START}, ${EVENT_WINDOW_END}
         FROM usage_events e ${PRIOR_SUMMARY}
         WHERE e.status = 'accepted' AND e.occurred_at >= date_trunc('hour', $1::timestamptz, 'UTC') AND e.occurred_at < $2
       )
       SELECT DISTINCT w.product, w.organization_id, w.unit_id, w.window_start FROM candidates w
       WHERE w.window_end <= $3 AND w.window_start < $2 AND w.window_end > $1 AND ${NOT_COMPACTED}`,
      [from, to, edge],
    );
    return rows.map(keyOf);
  }

  /**
   * The windows whose verdict may have changed since the last round judged
   * the windows ended by `previousEdge`: windows that ended since then (by
   * `edge`), summaries received since then (a recount), windows of usage
   * ingested since then (late usage lands in old windows), and every window
   * that drifts (rating or a recount may have closed it). A clean window
   * changes only through new usage or a new summary, so nothing else needs
   * counting again.
   */
  async windowsChanged(previousEdge: Date, edge: Date): Promise<WindowKey[]> {
    const crossed = crossedHours(previousEdge, edge);
    const { rows } = await this.pool.query<KeyRow>(
      `WITH candidates AS (
         SELECT product, organization_id, unit_id, window_start, window_end FROM usage_window_summaries
         WHERE received_at >= $1 OR (window_end > $1 AND window_end <= $2)
         UNION
         SELECT e.product, e.organization_id, e.unit_id, ${EVENT_WINDOW_START}, ${EVENT_WINDOW_END}
         FROM usage_batches b JOIN usage_events e ON e.batch_id = b.id ${PRIOR_SUMMARY}
         WHERE b.received_at >= $1 AND e.status = 'accepted'
         UNION
         SELECT e.product, e.organization_id, e.unit_id, ${EVENT_WINDOW_START}, ${EVENT_WINDOW_END}
         FROM usage_events e ${PRIOR_SUMMARY}
         WHERE e.status = 'accepted' AND e.occurred_at >= $3 AND e.occurred_at < $4
         UNION
         SELECT product, organization_id, unit_id, window_start, window_end FROM usage_reconciliations WHERE drift
       )
       SELECT DISTINCT w.product, w.organization_id, w.unit_id, w.window_start FROM candidates w
       WHERE w.window_end <= $2 AND ${NOT_COMPACTED}`,
      // Hours that ended since the last round: only their usage is read for them (none when no hour ended).
      [previousEdge, edge, crossed?.from ?? edge, crossed?.to ?? edge],
    );
    return rows.map(keyOf);
  }

  /** Counts each window from the raw usage: reported (its summary), ingested, rated and posted. */
  async count(keys: readonly WindowKey[]): Promise<WindowCounts[]> {
    const counted: WindowCounts[] = [];
    for (let start = 0; start < keys.length; start += COUNT_CHUNK) {
      const chunk = keys.slice(start, start + COUNT_CHUNK);
      const { rows } = await this.pool.query<CountsRow>(
        `WITH keys AS (
           SELECT DISTINCT * FROM unnest($1::text[], $2::uuid[], $3::text[], $4::timestamptz[]) AS k(product, organization_id, unit_id, window_start)
         ), windows AS (
           SELECT k.product, k.organization_id, k.unit_id, k.window_start,
                  COALESCE(s.window_end, k.window_start + interval '1 hour') AS window_end,
                  s.event_count AS reported_count, s.quantity AS reported_quantity,
                  -- A summary starting on the hour also takes that hour's usage no summary covers.
                  GREATEST(COALESCE(s.window_end, k.window_start), k.window_start + interval '1 hour') AS scan_end
           FROM keys k
           LEFT JOIN usage_window_summaries s
             ON s.product = k.product AND s.organization_id = k.organization_id AND s.unit_id = k.unit_id AND s.window_start = k.window_start
         )
         SELECT w.product, w.organization_id, w.unit_id, w.window_start, w.window_end, w.reported_count, w.reported_quantity::text,
                count(a.event_id)::int AS ingested_count,
                COALESCE(sum(a.quantity), 0)::text AS ingested_quantity,
                count(a.event_id) FILTER (WHERE a.rated)::int AS rated_count,
                count(a.event_id) FILTER (WHERE a.posted)::int AS posted_count
         FROM windows w
         LEFT JOIN LATERAL (
           SELECT e.event_id, e.quantity, r.event_id IS NOT NULL AS rated,
                  -- An opening (or a close that changed nothing) is rated without a step: nothing to post.
                  r.event_id IS NOT NULL AND (r.usage_posting_id IS NULL OR EXISTS (SELECT 1 FROM usage_postings p WHERE p.id = r.usage_posting_id)) AS posted
           FROM usage_events e
           LEFT JOIN usage_ratings r ON r.event_id = e.event_id
           ${PRIOR_SUMMARY}
           WHERE e.organization_id = w.organization_id AND e.occurred_at >= w.window_start AND e.occurred_at < w.scan_end
             AND e.product = w.product AND e.unit_id = w.unit_id AND e.status = 'accepted'
             AND ${EVENT_WINDOW_START} = w.window_start
         ) a ON true
         GROUP BY w.product, w.organization_id, w.unit_id, w.window_start, w.window_end, w.reported_count, w.reported_quantity`,
        [chunk.map((k) => k.product), chunk.map((k) => k.organizationId), chunk.map((k) => k.unitId), chunk.map((k) => k.windowStart)],
      );
      counted.push(...rows.map(countsOf));
    }
    return counted;
  }

  /**
   * Stores each window's verdict, unless a count that started later is
   * already stored (two reconcilers at once: the newer count stands), and
   * returns what was stored with whether the window drifted before.
   */
  async save(windows: ReadonlyArray<WindowCounts & { driftReasons: readonly string[] }>, checkedAt: Date): Promise<SavedWindow[]> {
    const saved: SavedWindow[] = [];
    for (let start = 0; start < windows.length; start += COUNT_CHUNK) {
      const chunk = windows.slice(start, start + COUNT_CHUNK);
      const { rows } = await this.pool.query<StoredRow & { drifted_before: boolean | null }>(
        `WITH incoming AS (
           SELECT * FROM unnest($1::text[], $2::uuid[], $3::text[], $4::timestamptz[], $5::timestamptz[], $6::int[], $7::numeric[],
                                $8::int[], $9::numeric[], $10::int[], $11::int[], $12::text[])
             AS i(product, organization_id, unit_id, window_start, window_end, reported_count, reported_quantity,
                  ingested_count, ingested_quantity, rated_count, posted_count, reasons)
         ), previous AS (
           SELECT r.product, r.organization_id, r.unit_id, r.window_start, r.drift
           FROM usage_reconciliations r JOIN incoming i USING (product, organization_id, unit_id, window_start)
         ), saved AS (
           INSERT INTO usage_reconciliations AS r (product, organization_id, unit_id, window_start, window_end, reported_count, reported_quantity,
             ingested_count, ingested_quantity, rated_count, posted_count, drift, drift_reasons, checked_at)
           SELECT product, organization_id, unit_id, window_start, window_end, reported_count, reported_quantity,
                  ingested_count, ingested_quantity, rated_count, posted_count, reasons <> '', COALESCE(string_to_array(NULLIF(reasons, ''), ','), '{}'), $13
           FROM incoming
           ON CONFLICT (product, organization_id, unit_id, window_start) DO UPDATE
           SET window_end = EXCLUDED.window_end, reported_count = EXCLUDED.reported_count, reported_quantity = EXCLUDED.reported_quantity,
               ingested_count = EXCLUDED.ingested_count, ingested_quantity = EXCLUDED.ingested_quantity, rated_count = EXCLUDED.rated_count,
               posted_count = EXCLUDED.posted_count, drift = EXCLUDED.drift, drift_reasons = EXCLUDED.drift_reasons,
               checked_at = EXCLUDED.checked_at
           WHERE r.checked_at <= EXCLUDED.checked_at
           RETURNING ${RECONCILIATION_COLUMNS}
         )
         SELECT s.*, p.drift AS drifted_before FROM saved s
         LEFT JOIN previous p USING (product, organization_id, unit_id, window_start)`,
        [
          chunk.map((w) => w.product),
          chunk.map((w) => w.organizationId),
          chunk.map((w) => w.unitId),
          chunk.map((w) => w.windowStart),
          chunk.map((w) => w.windowEnd),
          chunk.map((w) => w.reportedCount),
          chunk.map((w) => w.reportedQuantity?.toString() ?? null),
          chunk.map((w) => w.ingestedCount),
          chunk.map((w) => w.ingestedQuantity.toString()),
          chunk.map((w) => w.ratedCount),
          chunk.map((w) => w.postedCount),
          chunk.map((w) => w.driftReasons.join(',')),
          checkedAt,
        ],
      );
      saved.push(...rows.map((row) => ({ ...storedWindowOf(row), driftedBefore: row.drifted_before })));
    }
    return saved;
  }

  /** Windows that drift now, across every organization. */
  async driftingWindows(db: Db = this.pool): Promise<number> {
    const { rows } = await db.query<{ windows: number }>('SELECT count(*)::int AS windows FROM usage_reconciliations WHERE drift');
    return rows[0]!.windows;
  }
}

const HOUR_MS = 3_600_000;

/** The usage times whose UTC hour ended in (previousEdge, edge]; undefined when no hour did. */
function crossedHours(previousEdge: Date, edge: Date): { from: Date; to: Date } | undefined {
  const firstEnd = Math.floor(previousEdge.getTime() / HOUR_MS) * HOUR_MS + HOUR_MS;
  const lastEnd = Math.floor(edge.getTime() / HOUR_MS) * HOUR_MS;
  return firstEnd > lastEnd ? undefined : { from: new Date(firstEnd - HOUR_MS), to: new Date(lastEnd) };
}
