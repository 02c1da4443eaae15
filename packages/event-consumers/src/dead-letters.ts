import { AppError } from '@aifactory/errors';
import type pg from 'pg';
import { quoteSchema } from './consumer-tables.js';
import { applyEvents, inTransaction, readEvent, type EventApplication, type Transaction } from './event-application.js';

/**
 * Why an event was given up on. The decoder may add reasons of its own
 * (`invalid_payload`, ...); these are the helper's.
 */
export const DEAD_LETTER_REASONS = {
  /** Not JSON, or not an event envelope. */
  invalidEnvelope: 'invalid_envelope',
  /** The consumer has no kind for the event type. */
  unknownType: 'unknown_type',
  /** The handler (or its transaction) failed on the last delivery. */
  handlerFailed: 'handler_failed',
  /** A sequenced event whose predecessor never arrived within the deliveries. */
  versionGap: 'version_gap',
} as const;

export interface NewDeadLetter {
  eventId: string;
  subject: string;
  /** The envelope as received (the raw body as a JSON string when it was not JSON). */
  envelope: unknown;
  reason: string;
  detail: string | null;
  deliveries: number;
}

export interface DeadLetter extends NewDeadLetter {
  deadAt: Date;
}

/** Stores dead letters in `tx`; an event dead again replaces its earlier letter. */
export async function recordDeadLetters(
  tx: Transaction,
  schema: string,
  consumer: string,
  letters: readonly NewDeadLetter[],
): Promise<void> {
  if (letters.length === 0) return;
  const s = quoteSchema(schema);
  await tx.query(
    `INSERT INTO ${s}.dead_letters (consumer, event_id, subject, envelope, reason, detail, deliveries)
     SELECT $1, * FROM unnest($2::text[], $3::text[], $4::jsonb[], $5::text[], $6::text[], $7::int[])
     ON CONFLICT (consumer, event_id) DO UPDATE
       SET subject = excluded.subject, envelope = excluded.envelope, reason = excluded.reason,
           detail = excluded.detail, deliveries = excluded.deliveries, dead_at = now()`,
    [
      consumer,
      letters.map((l) => l.eventId),
      letters.map((l) => l.subject),
      letters.map((l) => JSON.stringify(l.envelope)),
      letters.map((l) => l.reason),
      letters.map((l) => l.detail),
      letters.map((l) => l.deliveries),
    ],
  );
}

/** The consumer's dead letters, oldest first. */
export async function listDeadLetters(
  pool: pg.Pool,
  schema: string,
  consumer: string,
  options: { limit?: number } = {},
): Promise<DeadLetter[]> {
  const s = quoteSchema(schema);
  const { rows } = await pool.query<{
    event_id: string;
    subject: string;
    envelope: unknown;
    reason: string;
    detail: string | null;
    deliveries: number;
    dead_at: Date;
  }>(
    `SELECT event_id, subject, envelope, reason, detail, deliveries, dead_at
       FROM ${s}.dead_letters WHERE consumer = $1
      ORDER BY dead_at, event_id
      LIMIT $2`,
    [consumer, options.limit ?? 100],
  );
  return rows.map((row) => ({
    eventId: row.event_id,
    subject: row.subject,
    envelope: row.envelope,
    reason: row.reason,
    detail: row.detail,
    deliveries: row.deliveries,
    deadAt: row.dead_at,
  }));
}

export async function countDeadLetters(pool: pg.Pool, schema: string, consumer: string): Promise<number> {
  const { rows } = await pool.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM ${quoteSchema(schema)}.dead_letters WHERE consumer = $1`,
    [consumer],
  );
  return rows[0]?.n ?? 0;
}

export type ReplayResult =
  /** Settled: applied, dropped by the version rule, or found already processed; the letter is deleted. */
  | { outcome: 'applied' | 'skipped' | 'duplicate' }
  /** Still cannot be applied (undecodable, or its predecessor is still missing); the letter stays. */
  | { outcome: 'kept'; reason: string };

/**
 * Runs the stored envelope through the consumer again, in one transaction
 * with the same idempotency and version rules as a delivery, and deletes the
 * letter in that transaction once settled. A handler that still throws rolls
 * back and the error propagates; the letter stays.
 */
export async function replayDeadLetter<P>(application: EventApplication<P>, eventId: string): Promise<ReplayResult> {
  const s = quoteSchema(application.schema);
  return inTransaction(application.pool, async (tx) => {
    const { rows } = await tx.query<{ subject: string; envelope: unknown }>(
      `SELECT subject, envelope FROM ${s}.dead_letters WHERE consumer = $1 AND event_id = $2 FOR UPDATE`,
      [application.consumer, eventId],
    );
    const letter = rows[0];
    if (!letter) {
      throw new AppError('NOT_FOUND', 'No such dead letter', { details: { consumer: application.consumer, eventId } });
    }
    const body = typeof letter.envelope === 'string' ? letter.envelope : JSON.stringify(letter.envelope);
    const read = readEvent(application, letter.subject, body, eventId);
    if (!read.ok) return { outcome: 'kept', reason: read.reason };
    const [outcome] = await applyEvents(tx, application, [read.event]);
    switch (outcome) {
      case 'gap':
        return { outcome: 'kept', reason: DEAD_LETTER_REASONS.versionGap };
      case 'duplicate':
        // applyEvents deletes the letters of events it settles now; this one was settled before.
        await tx.query(`DELETE FROM ${s}.dead_letters WHERE consumer = $1 AND event_id = $2`, [application.consumer, eventId]);
        return { outcome };
      case 'applied':
      case 'skipped':
        return { outcome };
      case undefined:
        throw new AppError('INTERNAL_ERROR', 'Internal error', { details: { reason: 'no outcome for a replayed event' } });
      default: {
        const unknown: never = outcome;
        throw new AppError('INTERNAL_ERROR', 'Internal error', { details: { outcome: unknown } });
      }
    }
  });
}
