import type { Actor } from '@aifactory/contracts';
import { bigintOf } from '../domain/money.js';
import type { Db, Tx } from './transactions.js';

/** A month's compaction state (usage_compactions). */
export interface UsageCompactionRecord {
  /** The month's first day, `YYYY-MM-01`. */
  period: string;
  auditReviewedAt: Date | null;
  auditReviewedBy: Actor | null;
  compactedAt: Date | null;
  eventsRemoved: bigint;
}

interface CompactionRow {
  period: string;
  audit_reviewed_at: Date | null;
  audit_reviewed_by: Actor | null;
  compacted_at: Date | null;
  events_removed: string;
}

const COLUMNS = `to_char(period, 'YYYY-MM-DD') AS period, audit_reviewed_at, audit_reviewed_by, compacted_at, events_removed::text`;

const recordOf = (row: CompactionRow): UsageCompactionRecord => ({
  period: row.period,
  auditReviewedAt: row.audit_reviewed_at,
  auditReviewedBy: row.audit_reviewed_by,
  compactedAt: row.compacted_at,
  eventsRemoved: bigintOf(row.events_removed),
});

/** A UTC month as a half-open span of usage time. */
export interface Month {
  period: string;
  from: Date;
  to: Date;
}

/**
 * Raw-usage compaction's storage: the month's gates (audit review, rating,
 * reconciliation) and the deletion of its raw rows. Deletes only raw usage:
 * usage_events (user ids and envelopes live there) and usage_conflicts.
 */
export class UsageCompactionStore {
  async find(db: Db, period: string): Promise<UsageCompactionRecord | null> {
    const { rows } = await db.query<CompactionRow>(`SELECT ${COLUMNS} FROM usage_compactions WHERE period = $1::date`, [period]);
    return rows[0] ? recordOf(rows[0]) : null;
  }

  /** The month's row, created on first use and locked for the rest of the transaction. */
  async lock(tx: Tx, period: string): Promise<UsageCompactionRecord> {
    await tx.query('INSERT INTO usage_compactions (period) VALUES ($1::date) ON CONFLICT (period) DO NOTHING', [period]);
    const { rows } = await tx.query<CompactionRow>(`SELECT ${COLUMNS} FROM usage_compactions WHERE period = $1::date FOR UPDATE`, [period]);
    return recordOf(rows[0]!);
  }

  async recordReview(tx: Tx, period: string, at: Date, by: Actor): Promise<UsageCompactionRecord> {
    const { rows } = await tx.query<CompactionRow>(
      `UPDATE usage_compactions SET audit_reviewed_at = $2, audit_reviewed_by = $3::jsonb WHERE period = $1::date RETURNING ${COLUMNS}`,
      [period, at, JSON.stringify(by)],
    );
    return recordOf(rows[0]!);
  }

  /** Organizations with raw usage (accepted or rejected) in the month: each one's dispute window must have passed. */
  async organizationsWithUsage(db: Db, month: Month): Promise<string[]> {
    const { rows } = await db.query<{ organization_id: string }>(
      `SELECT DISTINCT organization_id FROM usage_events
       WHERE organization_id IS NOT NULL AND COALESCE(occurred_at, received_at) >= $1 AND COALESCE(occurred_at, received_at) < $2`,
      [month.from, month.to],
    );
    return rows.map((row) => row.organization_id);
  }

  async unratedEvents(db: Db, month: Month): Promise<number> {
    const { rows } = await db.query<{ unrated: number }>(
      `SELECT count(*)::int AS unrated FROM usage_events e
       WHERE e.status = 'accepted' AND e.occurred_at >= $1 AND e.occurred_at < $2
         AND NOT EXISTS (SELECT 1 FROM usage_ratings r WHERE r.event_id = e.event_id)`,
      [month.from, month.to],
    );
    return rows[0]!.unrated;
  }

  /** Reconciliation windows overlapping the month that drift. */
  async driftingWindows(db: Db, month: Month): Promise<number> {
    const { rows } = await db.query<{ windows: number }>(
      'SELECT count(*)::int AS windows FROM usage_reconciliations WHERE drift AND window_start < $2 AND window_end > $1',
      [month.from, month.to],
    );
    return rows[0]!.windows;
  }

  /**
   * Deletes the month's raw usage: events by the time they happened (or,
   * for a rejected one that never said, when it arrived) and conflicts by
   * when they arrived. Only rejected and rated events: one accepted after
   * the gates were read (ingestion takes no lock of the month) is left to be
   * rated. Ratings stay: keyed by event id and free of personal data, they
   * keep an event that came again from ever being rated twice.
   */
  async deleteRawUsage(tx: Tx, month: Month): Promise<{ events: bigint; conflicts: bigint }> {
    const events = await tx.query(
      `DELETE FROM usage_events e
       WHERE COALESCE(e.occurred_at, e.received_at) >= $1 AND COALESCE(e.occurred_at, e.received_at) < $2
         AND (e.status = 'rejected' OR EXISTS (SELECT 1 FROM usage_ratings r WHERE r.event_id = e.event_id))`,
      [month.from, month.to],
    );
    const conflicts = await tx.query('DELETE FROM usage_conflicts WHERE received_at >= $1 AND received_at < $2', [month.from, month.to]);
    return { events: BigInt(events.rowCount ?? 0), conflicts: BigInt(conflicts.rowCount ?? 0) };
  }

  async markCompacted(tx: Tx, period: string, at: Date, eventsRemoved: bigint): Promise<UsageCompactionRecord> {
    const { rows } = await tx.query<CompactionRow>(
      `UPDATE usage_compactions SET compacted_at = $2, events_removed = $3 WHERE period = $1::date RETURNING ${COLUMNS}`,
      [period, at, eventsRemoved.toString()],
    );
    return recordOf(rows[0]!);
  }
}
