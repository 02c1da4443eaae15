import { outboxChannel, outboxTable, type Queryable } from './outbox-table.js';

export interface OutboxRetention {
  /** Published rows older than this (by published_at) are deleted. */
  olderThanMs: number;
  /** Rows per DELETE, so a large backlog never holds long locks. */
  batchSize?: number;
}

/**
 * Deletes published events past their retention; pending and failed rows are
 * never touched. Returns how many rows went.
 */
export async function pruneOutbox(db: Queryable, schema: string, retention: OutboxRetention): Promise<number> {
  const table = outboxTable(schema);
  const batchSize = retention.batchSize ?? 5_000;
  let deleted = 0;
  for (;;) {
    const { rowCount } = await db.query(
      `DELETE FROM ${table}
        WHERE id IN (SELECT id FROM ${table}
                      WHERE status = 'published' AND published_at < now() - $1 * interval '1 millisecond'
                      LIMIT $2)`,
      [retention.olderThanMs, batchSize],
    );
    deleted += rowCount ?? 0;
    if ((rowCount ?? 0) < batchSize) return deleted;
  }
}

export interface ReplayFilter {
  /** Only this event; by default every failed event of the schema. */
  id?: string;
}

/**
 * Puts failed events back in line (attempts 0, due now) and wakes the
 * schema's relay. Run once the cause is fixed, e.g. the missing stream exists.
 * Returns the ids requeued.
 */
export async function replayFailedEvents(db: Queryable, schema: string, filter: ReplayFilter = {}): Promise<string[]> {
  const { rows } = await db.query<{ id: string }>(
    `UPDATE ${outboxTable(schema)}
        SET status = 'pending', attempts = 0, next_attempt_at = NULL, last_error = NULL
      WHERE status = 'failed' AND ($1::uuid IS NULL OR id = $1::uuid)
      RETURNING id`,
    [filter.id ?? null],
  );
  if (rows.length > 0) await db.query(`SELECT pg_notify('${outboxChannel(schema)}', '')`);
  return rows.map((row) => row.id);
}
